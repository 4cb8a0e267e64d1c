"""Every config file and variant builds; pipelines reference earlier stages."""

import importlib
import json
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from mmgenre_jax.pipelines import definition

REPO = pathlib.Path(__file__).resolve().parent.parent
# config file -> the arguments it accepts (None: no argument).
VARIANTS = {
    'default': [None],
    'test': [None],
    'mumu_audio': [None, 'low-3x3-logistic', 'high-4x96-cosine',
                   'low-4x70-logistic', 'timbre-logistic'],
    'mumu_text': [None, 'logistic', 'cosine'],
    'mumu_image': [None, 'logistic', 'logistic-18', 'cosine-tiny',
                   'logistic-sgd', 'logistic-101-sgd', 'cosine-tiny-sgd'],
    'mumu_fusion': [None, 'audio+text-logistic', 'text+image-cosine'],
    'msdi_audio': [None],
    'msdi_visual': [None, '18', 'tiny', 'sgd', '101-sgd'],
    'msdi_alignment': [None],
    'msdi_fusion': [None, 'audio+mm_audio', 'mm_visual'],
    'mumu_cosine': [None, 'cpu'],
    'mumu_logistic': [None, 'cpu'],
    'msdi': [None, 'cpu'],
    'catalog_cosine': [None, 'cpu'],
    'catalog_logistic': [None, 'cpu'],
}
PIPELINES = ('mumu_cosine', 'mumu_logistic', 'msdi', 'catalog_cosine',
             'catalog_logistic')
# Helpers, not experiments.
NOT_EXPERIMENTS = {'__init__', 'pipeline_common'}
# Frameworks no config may load: --config and `mmgenre` subcommands that only
# read configs stay fast, and configs hold data, not networks.
FRAMEWORKS = ('jax', 'tensorflow', 'flax', 'orbax', 'clu')


def _get(name, arg):
  module = importlib.import_module(f'configs.{name}')
  return module.get_config(arg) if arg is not None else module.get_config()


def test_every_config_file_is_listed():
  files = {p.stem for p in (REPO / 'configs').glob('*.py')}
  assert files - NOT_EXPERIMENTS == set(VARIANTS)


@pytest.mark.parametrize('name,arg', [(n, a) for n, args in VARIANTS.items()
                                      for a in args])
def test_config_builds(name, arg):
  config = _get(name, arg)
  assert isinstance(config, ml_collections.ConfigDict)
  if name not in PIPELINES:
    assert config.model.name
    assert config.data.dataset in ('mumu', 'msdi')


@pytest.mark.parametrize('name', ['mumu_image', 'msdi_fusion', 'mumu_cosine'])
def test_bad_argument_names_the_choices(name):
  with pytest.raises(ValueError, match='argument'):
    _get(name, 'nonsense')


@pytest.mark.parametrize('name,arg', [(n, a) for n in PIPELINES
                                      for a in (None, 'cpu')])
def test_pipeline_stages_reference_earlier_stages(name, arg):
  config = _get(name, arg)
  definition.validate(config)
  seen = set()
  for stage_name in config.stage_order:
    stage = config.stages[stage_name]
    assert set(stage.inputs.values()) <= seen, stage_name
    seen.add(stage_name)
    # The stage string rebuilds exactly the stage config.
    ref = definition.config_string(stage)
    assert ref.startswith(stage.config_file)
  assert config.final in seen
  assert config.config_ref == f'configs/{name}.py' + (':cpu' if arg else '')


def test_pipeline_input_dims_follow_the_input_networks():
  config = _get('mumu_cosine', 'cpu')
  fused = config.stages.audio_text_image.config.model.input_dims
  # LOW-4x96 flatten 4 x 64, text 256 hidden units, tiny ResNet 64.
  assert fused.to_dict() == {'audio': 256, 'text': 256, 'image': 64}
  paper = _get('mumu_cosine', None).stages.audio_text_image.config
  assert paper.model.input_dims.to_dict() == {
      'audio': 4096, 'text': 2048, 'image': 2048}
  assert paper.model.target == 'cosine'
  msdi = _get('msdi', None)
  assert len([s for s in msdi.stage_order if s.startswith('audio_s')]) == 3
  assert msdi.stages.align_s1.inputs.to_dict() == {'audio': 'audio_s1',
                                                   'image': 'image_s1'}


@pytest.mark.parametrize('name,arg', [('mumu_image', None),
                                      ('mumu_image', 'logistic-18'),
                                      ('msdi_visual', None)])
def test_image_configs_default_to_the_papers_text(name, arg):
  # Sec 6.2 / 7.3.3: Adam, lr 1e-4, mini-batches of 50, 90 epochs; Sec 3.2:
  # weight decay on all weights and biases, crop and photometric
  # augmentation, ImageNet weights (so no from-scratch default).
  from configs import default as default_lib  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.models import specs  # pylint: disable=g-import-not-at-top
  config = _get(name, arg)
  train = config.train
  assert (train.optimizer, train.learning_rate, train.batch_size,
          train.num_epochs) == ('adam', 1e-4, 50, 90)
  assert train.weight_decay == default_lib.IMAGE_WEIGHT_DECAY > 0
  assert train.lr_decay_epochs == 0 and train.patience >= train.num_epochs
  assert config.model.pretrained == '' and config.model.from_scratch is False
  assert config.data.image_augment.to_dict() == specs.IMAGE_AUGMENT
  assert config.model.depth == (18 if arg else 101)


@pytest.mark.parametrize('name,arg', [('mumu_image', 'logistic-sgd'),
                                      ('msdi_visual', '101-sgd')])
def test_image_sgd_variant_is_the_authors_code(name, arg):
  config = _get(name, arg)
  train = config.train
  assert (train.optimizer, train.learning_rate, train.momentum,
          train.batch_size, train.num_epochs, train.lr_decay_epochs,
          train.lr_decay_factor) == ('sgd', 1e-4, 0.9, 50, 90, 30, 0.1)
  assert train.weight_decay == 1e-4 and config.model.depth == 101


def test_cpu_image_stages_start_from_scratch_explicitly():
  for name in PIPELINES:
    config = _get(name, 'cpu')
    for stage_name in config.stage_order:
      stage = config.stages[stage_name].config
      if stage.model.name == 'resnet':
        assert stage.model.from_scratch is True, (name, stage_name)
        assert stage.model.pretrained == ''


@pytest.mark.parametrize('arg', [None, 'cpu'])
def test_logistic_fusions_fuse_the_cosine_fusions_vectors(arg):
  """Sec 7.4: one set of vectors (AUDIO COSINE, TEXT COSINE, IMAGE
  LOGISTIC), fused under both output configurations."""
  config = _get('mumu_cosine', arg)
  logistic = [n for n in config.stage_order if n.endswith('_logistic')]
  assert logistic == ['audio_text_logistic', 'audio_image_logistic',
                      'text_image_logistic', 'audio_text_image_logistic']
  for name in logistic:
    twin = config.stages[name[:-len('_logistic')]]
    stage = config.stages[name]
    assert stage.config.model.target == 'logistic'
    assert twin.config.model.target == 'cosine'
    assert stage.inputs.to_dict() == twin.inputs.to_dict()
    assert (stage.config.model.input_dims.to_dict() ==
            twin.config.model.input_dims.to_dict())
  assert config.stages.audio.config.model.target == 'cosine'
  assert config.stages.text.config.model.target == 'cosine'
  assert config.stages.image.config.model.target == 'logistic'
  assert config.final == 'audio_text_image'


@pytest.mark.parametrize('arg', [None, 'cpu'])
def test_the_two_mumu_pipelines_train_no_network_twice(arg):
  cosine, logistic = _get('mumu_cosine', arg), _get('mumu_logistic', arg)
  assert list(logistic.stage_order) == ['audio', 'text', 'audio_album']
  assert logistic.final == 'audio_album'
  strings = [{definition.config_string(c.stages[n]) for n in c.stage_order}
             for c in (cosine, logistic)]
  assert not strings[0] & strings[1]
  assert {logistic.stages[n].config.model.target
          for n in logistic.stage_order} == {'logistic'}


def test_validate_rejects_a_later_input():
  config = _get('mumu_cosine', 'cpu')
  config.stage_order = ('audio_text',) + tuple(
      s for s in config.stage_order if s != 'audio_text')
  with pytest.raises(ValueError, match='not an earlier stage'):
    definition.validate(config)


_IMPORT_EVERY_CONFIG = """
import importlib, json, pathlib, sys
for path in sorted(pathlib.Path('configs').glob('*.py')):
  module = importlib.import_module('configs.' + path.stem)
  if hasattr(module, 'get_config'):
    module.get_config()
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""


def test_configs_import_no_framework():
  # A fresh interpreter: this test process has loaded JAX already.
  result = subprocess.run([sys.executable, '-c', _IMPORT_EVERY_CONFIG],
                          cwd=REPO, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stderr
  loaded = set(json.loads(result.stdout.splitlines()[-1]))
  assert 'configs' in loaded and 'ml_collections' in loaded
  assert not loaded & set(FRAMEWORKS), sorted(loaded & set(FRAMEWORKS))


def test_text_stage_is_vsm_sem_on_enriched_shards(tmp_path):
  stage = _get('mumu_text', 'cosine')
  stage.data.shard_dir = str(tmp_path)
  assert definition.describe_stage(stage)['settings'] == 'vsm'
  (tmp_path / 'manifest.json').write_text(
      json.dumps({'args': {'enrichment': 'enrichment.tsv'}}))
  assert definition.describe_stage(stage) == {
      'dataset': 'mumu', 'modality': 'text', 'target': 'cosine',
      'settings': 'vsm+sem', 'seed': 0}

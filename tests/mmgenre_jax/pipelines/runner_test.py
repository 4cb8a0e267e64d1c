"""mmgenre_jax.pipelines: a tiny 2-stage pipeline (audio CNN -> fusion).

The MuMu pipelines' AUDIO row in small (Sec 7.3.1): the track CNN, then the
Sec 4 network on its album-averaged vectors (configs/mumu_fusion.py:audio-
cosine), both COSINE on the pipeline's one set of label factors. The audio
shards are the tiny ones of tests/conftest.py (fixture shard_dir); each stage
trains 1 epoch of tiny batches.
"""

import datetime
import json
import logging

import numpy as np
import pytest

from input_pipeline import fileio
from mmgenre_jax.data import label_matrix
from mmgenre_jax.data import representations
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax.train import loop as train_loop
from mmgenre_jax.pipelines import runner
from mmgenre_jax.pipelines import definition

# Few labels in the tiny corpus: d must not exceed the number of labels.
TINY = {'data.factor_dim': 4, 'train.batch_size': 4, 'train.num_epochs': 1,
        'eval.batch_size': 4}


def _config(shard_dir):
  config = definition.pipeline_config(
      'tiny', 'tests/mmgenre_jax/pipelines/runner_test.py', dataset='mumu',
      shard_dir=str(shard_dir))
  definition.add_stage(config, 'audio', config_file='configs/mumu_audio.py',
                       config_arg='low-4x70-cosine', overrides=TINY,
                       row=definition.own_head_row('audio'))
  definition.add_stage(config, 'fused', config_file='configs/mumu_fusion.py',
                 config_arg='audio-cosine', overrides=TINY,
                 inputs={'audio': 'audio'}, row={'settings': 'low-4x70'})
  definition.link_input_dims(config)
  return config


@pytest.fixture(scope='module')
def finished(shard_dir, tmp_path_factory):
  """A pipeline workdir after one complete run."""
  workdir = tmp_path_factory.mktemp('pipeline')
  result = runner.run_pipeline(_config(shard_dir), workdir)
  return workdir, result


def _count_training(monkeypatch):
  calls = []
  original = train_loop.train_and_evaluate

  def counting(config, workdir):
    calls.append(str(workdir))
    return original(config, workdir)

  monkeypatch.setattr(train_loop, 'train_and_evaluate', counting)
  return calls


def test_runs_every_stage_in_order(finished):
  workdir, result = finished
  assert [s['name'] for s in result['stages']] == ['audio', 'fused']
  assert [s['status'] for s in result['stages']] == ['done', 'done']
  assert result['final'] == 'fused' and result['dataset'] == 'mumu'
  fused = result['stages'][1]
  assert fused['kind'] == 'fusion' and fused['inputs'] == {'audio': 'audio'}
  assert fused['outputs'] == ['fusion']
  assert fused['config'].startswith('configs/mumu_fusion.py:audio-cosine ')
  assert f'--config.data.inputs.audio={workdir / "audio"}' in fused['config']
  assert fused['row']['modality'] == 'audio'
  assert result['stages'][0]['row']['modality'] == 'audio_head'
  for stage, name in (('audio', 'audio'), ('fused', 'fusion')):
    for split in representations.SPLITS:
      assert (workdir / stage / 'representations' / name /
              f'{split}.npz').exists()
    assert runner.is_complete(workdir / stage, (name,))
  assert json.loads((workdir / 'pipeline.json').read_text()) == result
  rows = json.loads((workdir / 'results.json').read_text())
  assert [(r['modality'], r['settings']) for r in rows] == [
      ('audio_head', 'low-4x70'), ('audio', 'low-4x70')]
  metrics = json.loads((workdir / 'audio' / 'test_metrics.json').read_text())
  assert rows[0]['roc_auc'] == metrics['roc_auc']
  # The CNN's own scores are what they are: album means of track scores.
  assert metrics['aggregation'] == 'album_mean_of_track_scores'
  fused_metrics = json.loads(
      (workdir / 'fused' / 'test_metrics.json').read_text())
  assert fused_metrics['aggregation'] == 'items'
  assert rows[1]['roc_auc'] == fused_metrics['roc_auc']
  report = (workdir / 'report.md').read_text()
  # Every file of the pipeline (records, report, figures, representations,
  # checkpoints) keeps the user's umask, as shards do (prepare_test.py).
  modes = {p.relative_to(workdir).as_posix(): p.stat().st_mode & 0o777
           for p in workdir.rglob('*') if p.is_file()}
  assert {'results.json', 'pipeline.json', 'audio/config.json',
          'fused/representations/fusion/test.npz'} <= set(modes)
  assert any(name.startswith('figures/') for name in modes)
  assert {n: m for n, m in modes.items() if m != fileio.FILE_MODE} == {}
  table6, heads = report.split("own output layers")
  assert '| AUDIO | COSINE | LOW-4x70 |' in table6
  assert '| mumu | AUDIO | COSINE | LOW-4x70 |' in heads


def test_album_audio_stage_reads_album_averages(finished, shard_dir):
  """The AUDIO row's network trains on one averaged vector per album."""
  workdir, _ = finished
  for split in representations.SPLITS:
    with np.load(workdir / 'audio' / 'representations' / 'audio' /
                 f'{split}.npz') as npz:
      ids = [str(i) for i in npz['ids']]
      vectors = npz['representation']
    albums, _ = label_matrix.read_album_labels(shard_dir, 'audio', [split])
    assert sorted(ids) == sorted(albums)
    assert vectors.shape[0] == len(albums)
    with np.load(workdir / 'fused' / 'representations' / 'fusion' /
                 f'{split}.npz') as npz:
      assert sorted(str(i) for i in npz['ids']) == sorted(albums)


def test_one_set_of_label_factors_per_pipeline(finished, shard_dir):
  """Every COSINE stage regresses W/label_factors: the train + val albums
  of the shards, factorised once."""
  workdir, result = finished
  shared = workdir / 'label_factors'
  expected = np.load(shared / 'label_factors.npy')
  items, matrix = label_matrix.read_album_labels(shard_dir, 'audio',
                                                 ppmi_svd.FACTORIZE_SPLITS)
  np.testing.assert_allclose(
      expected, ppmi_svd.factorize(matrix, TINY['data.factor_dim'])
      .label_factors, rtol=1e-5, atol=1e-6)
  assert (shared / 'items.tsv').read_text().split() == items
  for stage in result['stages']:
    np.testing.assert_array_equal(
        np.load(workdir / stage['name'] / 'label_factors.npy'), expected)
    assert (f'--config.data.label_factors={shared}' in stage['config'])


def test_given_label_factors_are_checked(finished, shard_dir, tmp_path):
  """Factors of other labels or another d are refused, naming the file."""
  from mmgenre_jax import errors  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.train import label_factors
  from mmgenre_jax.train import setup  # pylint: disable=g-import-not-at-top
  from mmgenre_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  workdir, _ = finished
  config = runner.resolve_stage_config(_config(shard_dir), 'audio', workdir)
  bad = tmp_path / 'bad'
  names = workdir_lib.read_lines(workdir / 'label_factors' / 'labels.tsv')
  workdir_lib.write_factors(bad, np.ones((len(names), 4)), np.ones((1, 4)),
                            names[::-1], ['a'])
  config.data.label_factors = str(bad)
  facts, source = setup.read_facts(config)
  with pytest.raises(errors.ConfigError, match='first difference at row 0'):
    label_factors.compute(config, facts, tmp_path / 'stage', source)
  workdir_lib.write_factors(bad, np.ones((len(names), 3)), np.ones((1, 3)),
                            names, ['a'])
  with pytest.raises(errors.ConfigError, match='d = 3'):
    label_factors.compute(config, facts, tmp_path / 'stage', source)


def test_rerun_skips_complete_stages(finished, shard_dir, monkeypatch):
  workdir, _ = finished
  calls = _count_training(monkeypatch)
  result = runner.run_pipeline(_config(shard_dir), workdir)
  assert calls == []
  assert [s['status'] for s in result['stages']] == ['skipped', 'skipped']


def test_a_stage_complete_in_another_pipeline_is_copied(finished, shard_dir,
                                                        monkeypatch,
                                                        tmp_path):
  first, _ = finished
  config = _config(shard_dir)
  # The same label factors, so the audio stage's config string is the same;
  # the fusion stage reads W2/audio, a different string: trained.
  config.data.label_factors = str(first / 'label_factors')
  config.reuse_stages_from = f'{tmp_path / "absent"},{first}'
  calls = _count_training(monkeypatch)
  second = tmp_path / 'W2'
  result = runner.run_pipeline(config, second, report=False)
  assert calls == [str(second / 'fused')]
  audio = result['stages'][0]
  assert audio['status'] == 'done' and audio['copied_from'] == str(
      first / 'audio')
  assert 'copied_from' not in result['stages'][1]
  for split in representations.SPLITS:
    path = ('representations', 'audio', f'{split}.npz')
    assert (second / 'audio').joinpath(*path).read_bytes() == (
        (first / 'audio').joinpath(*path).read_bytes())
  assert not (second / 'audio' / 'training.lock').exists()
  assert sorted(p.name for p in second.iterdir() if p.name.startswith('.')
                ) == []  # no partial copy left


def test_stages_at_once_give_the_same_results(finished, shard_dir, tmp_path,
                                              capfd):
  """Two independent stages in two stage processes at once, then the
  fusion: each stage's numbers are those of the one-at-a-time run of
  `finished` (in this process)."""
  first, _ = finished
  config = _config(shard_dir)
  definition.add_stage(config, 'audio_s1', config_file='configs/mumu_audio.py',
                       config_arg='low-4x70-cosine',
                       overrides={**TINY, 'train.seed': 1},
                       row=definition.own_head_row('audio'))
  config.stage_order = ('audio', 'audio_s1', 'fused')
  config.concurrent_stages = 2
  second = tmp_path / 'W2'
  result = runner.run_pipeline(config, second, report=False)
  stages = {s['name']: s for s in result['stages']}
  assert [s['status'] for s in result['stages']] == ['done'] * 3
  # audio and audio_s1 started together; fused after audio ended.
  when = {name: datetime.datetime.fromisoformat(s['started']).timestamp()
          for name, s in stages.items()}
  assert abs(when['audio_s1'] - when['audio']) <= 1
  assert when['audio_s1'] < when['audio'] + stages['audio']['seconds'] - 1
  assert when['fused'] >= when['audio'] + stages['audio']['seconds'] - 1
  # The stage processes' log lines say whose they are.
  logged = capfd.readouterr().err
  assert "] [tiny audio_s1] config.data.num_labels=250 differs" in logged
  for stage, name in (('audio', 'audio'), ('fused', 'fusion')):
    for split in representations.SPLITS:
      path = ('representations', name, f'{split}.npz')
      with np.load(first / stage / '/'.join(path)) as one_at_a_time, \
          np.load(second / stage / '/'.join(path)) as at_once:
        np.testing.assert_array_equal(one_at_a_time['ids'], at_once['ids'])
        np.testing.assert_array_equal(one_at_a_time['representation'],
                                      at_once['representation'])
    metrics = [json.loads((w / stage / 'test_metrics.json').read_text())
               for w in (first, second)]
    for one in metrics:
      del one['epoch_s']  # wall time, the one number that may differ
    assert metrics[0] == metrics[1]
  assert runner.is_complete(second / 'audio_s1', ('audio',))


def test_concurrent_stages_is_checked(shard_dir):
  config = _config(shard_dir)
  config.concurrent_stages = -1
  with pytest.raises(ValueError, match='concurrent_stages=-1'):
    runner.stage_concurrency(config)
  config.concurrent_stages = 3
  assert runner.stage_concurrency(config) == 3


def test_interrupted_stage_resumes(finished, shard_dir, monkeypatch, caplog):
  workdir, _ = finished
  step = json.loads((workdir / 'fused' / 'training_done.json').read_text())
  # As if the run was stopped after the last checkpoint of the fusion stage,
  # before its done marker and its representations.
  (workdir / 'fused' / 'training_done.json').unlink()
  (workdir / 'fused' / 'representations' / 'fusion' / 'val.npz').unlink()
  calls = _count_training(monkeypatch)
  with caplog.at_level(logging.INFO):
    result = runner.run_pipeline(_config(shard_dir), workdir)
  assert calls == [str(workdir / 'fused')]
  assert 'Resumed from step' in caplog.text
  assert [s['status'] for s in result['stages']] == ['skipped', 'done']
  assert json.loads(
      (workdir / 'fused' / 'training_done.json').read_text()) == step
  assert runner.is_complete(workdir / 'fused', ('fusion',))


def test_extraction_only_when_training_is_done(finished, shard_dir,
                                               monkeypatch):
  workdir, _ = finished
  (workdir / 'audio' / 'representations' / 'audio' / 'test.npz').unlink()
  calls = _count_training(monkeypatch)
  result = runner.run_pipeline(_config(shard_dir), workdir, report=False)
  assert calls == []
  assert [s['status'] for s in result['stages']] == ['done', 'skipped']
  assert runner.is_complete(workdir / 'audio', ('audio',))


@pytest.mark.parametrize('arg', [None, 'cpu'])
@pytest.mark.parametrize('name,target', [('mumu_cosine', 'cosine'),
                                         ('mumu_logistic', 'logistic')])
def test_mumu_audio_row_is_the_album_network(name, target, arg):
  """Sec 7.3.1: AUDIO = the Sec 4 network on album-averaged CNN vectors."""
  # pylint: disable-next=g-import-not-at-top
  from configs import pipeline_common
  config = pipeline_common.mumu_pipeline(
      name, arg or '', audio_arg=('low-4x96' if arg else 'high-4x70') +
      f'-{target}', target=target, fusion_targets=(target,))
  album = config.stages[pipeline_common.ALBUM_AUDIO_STAGE]
  assert definition.config_string(album).startswith(
      f'configs/mumu_fusion.py:audio-{target}')
  assert album.inputs.to_dict() == {'audio': 'audio'}
  assert album.row.settings == ('low-4x96' if arg else 'high-4x70')
  # Table 6's Params / Time of the AUDIO row are the CNN's.
  assert album.row.features_stage == 'audio'
  assert definition.describe_stage(album.config)['modality'] == 'audio'
  assert config.stages.audio.row.modality == 'audio_head'
  # The fusions still read the CNN's vectors.
  assert config.stages.audio_text_image.inputs.audio == 'audio'
  # COSINE: every stage but the LOGISTIC image network shares the factors.
  expected = ([n for n in config.stage_order if n != 'image']
              if target == 'cosine' else [])
  assert definition.cosine_stages(config) == expected


@pytest.mark.parametrize('arg', [None, 'cpu'])
def test_msdi_cnn_rows_go_through_the_sec4_network(arg):
  """Table 2's CNN_AUDIO / CNN_VISUAL: one-input Sec 4 stages (Sec 6.2)."""
  # pylint: disable-next=g-import-not-at-top
  from configs import msdi
  config = msdi.get_config(arg)
  for seed in msdi.SEEDS:
    for modality in ('audio', 'image'):
      stage = config.stages[f'{modality}_mlp_s{seed}']
      assert definition.config_string(stage).split()[0] == (
          f'configs/msdi_fusion.py:{modality}')
      assert stage.inputs.to_dict() == {modality: f'{modality}_s{seed}'}
      assert config.stages[f'{modality}_s{seed}'].row.modality == (
          f'{modality}_head')


def test_cosine_stages_must_share_d(shard_dir):
  config = _config(shard_dir)
  config.stages.fused.config.data.factor_dim = 3
  with pytest.raises(ValueError, match='different d'):
    definition.validate(config)

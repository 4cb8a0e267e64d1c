"""Multi-stage experiments: networks, alignment and fusion run in order.

  python main.py --config=configs/mumu_cosine.py --workdir=runs/mumu_cosine
  python main.py --config=configs/msdi.py:cpu --workdir=runs/msdi \
      --config.data.shard_dir=runs/data/msdi_shards

A pipeline config (built with `pipeline_config` and `add_stage` by the
pipeline files configs/mumu_cosine.py, mumu_logistic.py, msdi.py) lists its
stages in `config.stage_order`; `config.stages.<name>` holds, per stage:

  kind         'network' (trains on shards), 'alignment' or 'fusion' (train on
               representations extracted by earlier stages)
  config_file  the single-experiment config file, e.g. configs/mumu_audio.py
  config_arg   its argument, e.g. 'high-4x70-cosine'
  config       the stage's full experiment config (any field can be
               overridden: --config.stages.audio.config.train.num_epochs=3)
  inputs       representation name -> earlier stage producing it
  outputs      the representations the stage writes (docs/workdirs.md §1)

`run_pipeline(config, workdir)` runs every stage in workdir/<stage>/ (train,
then extract the train/val/test representations), skips a stage that is
already complete and lets an interrupted one resume from its latest
checkpoint, writes workdir/pipeline.json (docs/workdirs.md §3) after each
stage and ends with the report (mmgenre_jax/report.py). workdir may be a
local directory or a gs://bucket/... URL (docs/tpu_pod.md §4).
"""

import copy
import importlib
import json
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from absl import logging
from etils import epath
import ml_collections
import numpy as np

from input_pipeline import fileio
from mmgenre_jax import representations
from mmgenre_jax.models import fusion as fusion_lib

PIPELINE_FILE = 'pipeline.json'
KINDS = ('network', 'alignment', 'fusion')
# Splits whose representations each stage extracts (the later stages train on
# train, stop early on val and are tested on test).
SPLITS = representations.SPLITS
# Written by train.py in each stage workdir (train.DONE_FILE,
# train.TEST_METRICS_FILE; docs/workdirs.md §1). Not imported from train.py
# so that building a pipeline config does not load TensorFlow.
DONE_FILE = 'training_done.json'
TEST_METRICS_FILE = 'test_metrics.json'
# Representations of the two towers of an alignment stage (Sec 3.4).
ALIGNMENT_OUTPUTS = ('mm_audio', 'mm_visual')
# The alignment stage reads the audio and visual representations under these
# config.data.inputs names.
ALIGNMENT_INPUTS = ('audio', 'image')
# config.model.name of a network stage -> the representation it produces.
NETWORK_OUTPUTS = {'audio_cnn': 'audio', 'msdi_audio_cnn': 'audio',
                   'timbre_mlp': 'audio', 'text_mlp': 'text',
                   'resnet': 'image'}


# ---------------------------------------------------------------- configs


def is_pipeline(config: ml_collections.ConfigDict) -> bool:
  """Whether `config` is a pipeline config (main.py dispatches on this)."""
  return 'stage_order' in config and 'stages' in config


def pipeline_config(name: str, config_ref: str, *, dataset: str,
                    shard_dir: str, final: str = ''
                    ) -> ml_collections.ConfigDict:
  """An empty pipeline config; fill it with add_stage().

  Args:
    name: the pipeline, e.g. 'mumu_cosine' (its workdir is runs/<name>/).
    config_ref: the --config value that builds it, e.g.
      'configs/mumu_cosine.py:cpu'.
    dataset: 'mumu' or 'msdi'.
    shard_dir: prepared shards every network stage reads (overridable with
      --config.data.shard_dir).
    final: the stage whose result is the pipeline's answer (default: the
      last stage added).
  """
  config = ml_collections.ConfigDict()
  config.name = name
  config.config_ref = config_ref
  config.data = ml_collections.ConfigDict()
  config.data.dataset = dataset
  config.data.shard_dir = shard_dir
  config.final = final
  config.stage_order = ()
  config.stages = ml_collections.ConfigDict()
  return config


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any]) -> None:
  """Sets dotted fields ('train.num_epochs': 3) of `config` in place."""
  for key, value in overrides.items():
    *parents, field = key.split('.')
    node = config
    for parent in parents:
      if parent not in node:
        raise KeyError(f'Override {key}={value!r}: config has no section '
                       f'{parent!r} (fields: {sorted(node.keys())}).')
      node = node[parent]
    if isinstance(value, Mapping):
      value = ml_collections.ConfigDict(dict(value))
    if field in node and isinstance(node[field], ml_collections.ConfigDict):
      # Replacing a whole section (input_dims): drop the old fields.
      del node[field]
    node[field] = value


def load_experiment_config(config_file: str, config_arg: Optional[str]
                           ) -> ml_collections.ConfigDict:
  """get_config(config_arg) of configs/<file>.py, as --config would call it."""
  module_name = config_file[:-len('.py')].replace('/', '.')
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError(f'Stage config file {config_file!r} cannot be imported '
                     f'as {module_name} ({e}); use a configs/*.py path '
                     'relative to the repository root.') from e
  return module.get_config(config_arg) if config_arg else module.get_config()


def add_stage(config: ml_collections.ConfigDict, name: str, *,
              config_file: str, config_arg: Optional[str] = None,
              overrides: Optional[Mapping[str, Any]] = None,
              inputs: Optional[Mapping[str, str]] = None,
              row: Optional[Mapping[str, Any]] = None) -> None:
  """Appends a stage built from a single-experiment config file.

  Args:
    config: a pipeline_config(), changed in place.
    name: the stage (and its sub-workdir), unique in the pipeline.
    config_file: e.g. 'configs/mumu_audio.py'.
    config_arg: its argument, e.g. 'high-4x70-cosine' (None: the default).
    overrides: dotted fields set after get_config(), e.g.
      {'train.num_epochs': 3}.
    inputs: representation name -> earlier stage (fusion, alignment).
    row: report labels of the stage (e.g. {'settings': 'cnn'}) overriding
      those derived from its config (describe_stage).
  """
  if name in config.stages:
    raise ValueError(f'Pipeline {config.name}: stage {name!r} added twice.')
  if not name.isidentifier():
    raise ValueError(f'Pipeline {config.name}: stage name {name!r} must be a '
                     'Python identifier (it is a config field).')
  stage_config = load_experiment_config(config_file, config_arg)
  apply_overrides(stage_config, overrides or {})
  model_name = stage_config.model.name
  kind = model_name if model_name in ('fusion', 'alignment') else 'network'
  inputs = dict(inputs or {})
  for stage_name in inputs.values():
    if stage_name not in config.stages:
      raise ValueError(
          f'Pipeline {config.name}: stage {name!r} reads from {stage_name!r}, '
          f'which is not an earlier stage ({list(config.stage_order)}).')
  stage = ml_collections.ConfigDict()
  stage.kind = kind
  stage.config_file = config_file
  stage.config_arg = config_arg or ''
  stage.config = stage_config
  stage.inputs = ml_collections.ConfigDict(inputs)
  stage.outputs = stage_outputs(stage_config)
  stage.row = ml_collections.ConfigDict(dict(row or {}))
  config.stages[name] = stage
  config.stage_order = tuple(config.stage_order) + (name,)


def stage_outputs(stage_config: ml_collections.ConfigDict) -> tuple:
  """Representation names a stage writes (docs/workdirs.md §1)."""
  name = stage_config.model.name
  if name == 'fusion':
    return ('fusion',)
  if name == 'alignment':
    return ALIGNMENT_OUTPUTS
  if name not in NETWORK_OUTPUTS:
    raise ValueError(f'config.model.name={name!r} is not a pipeline stage '
                     f'network; use one of {sorted(NETWORK_OUTPUTS)}, '
                     'alignment or fusion.')
  return (NETWORK_OUTPUTS[name],)


def representation_size(stage_config: ml_collections.ConfigDict) -> int:
  """R of the representation a network stage produces (fusion input dims)."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.models import alignment
  from mmgenre_jax.models import audio
  from mmgenre_jax.models import text
  # pylint: enable=g-import-not-at-top
  model = stage_config.model
  if model.name == 'audio_cnn':
    return audio.representation_size(f'{model.width}-{model.kernels}')
  if model.name == 'msdi_audio_cnn':
    return audio.representation_size('msdi')
  if model.name in ('text_mlp', 'timbre_mlp'):
    default = (text.TEXT_HIDDEN_UNITS if model.name == 'text_mlp'
               else text.TIMBRE_HIDDEN_UNITS)
    hidden = model.get('hidden_units') or default
    return int(hidden[-1]) if hidden else int(model.input_dim)
  if model.name == 'resnet':
    image = importlib.import_module('mmgenre_jax.models.image')
    spec = image.get_spec(model.depth)
    expansion = 4 if spec.block_cls is image.BottleneckBlock else 1
    return spec.num_filters * 2 ** (len(spec.stage_sizes) - 1) * expansion
  if model.name == 'alignment':
    return int(model.get('embed_dim') or alignment.EMBED_DIM)
  raise ValueError(f'No representation size for config.model.name='
                   f'{model.name!r}.')


def link_input_dims(config: ml_collections.ConfigDict) -> None:
  """Sets each fusion / alignment stage's input sizes from its input stages.

  Call after the stages are added (and overridden): a CPU variant with a LOW
  audio CNN or a small ResNet feeds smaller vectors than the paper's.
  """
  for name in config.stage_order:
    stage = config.stages[name]
    sizes = {}
    for rep, source in stage.inputs.items():
      sizes[rep] = representation_size(config.stages[source].config)
    if stage.kind == 'fusion':
      apply_overrides(stage.config, {'model.input_dims': sizes})
    elif stage.kind == 'alignment':
      apply_overrides(stage.config, {
          'model.audio_dim': sizes[ALIGNMENT_INPUTS[0]],
          'model.visual_dim': sizes[ALIGNMENT_INPUTS[1]]})


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks stage names, kinds and that inputs come from earlier stages."""
  seen = {}
  if not config.stage_order:
    raise ValueError(f'Pipeline {config.get("name")!r} has no stages.')
  for name in config.stage_order:
    if name not in config.stages:
      raise ValueError(f'config.stage_order names {name!r} but config.stages '
                       f'has no such stage ({sorted(config.stages.keys())}).')
    stage = config.stages[name]
    if stage.kind not in KINDS:
      raise ValueError(f'Stage {name}: kind {stage.kind!r} not in {KINDS}.')
    for rep, source in stage.inputs.items():
      if source not in seen:
        raise ValueError(
            f'Stage {name} reads {rep!r} from {source!r}, which is not an '
            f'earlier stage of config.stage_order {list(config.stage_order)}.')
      if rep not in seen[source]:
        raise ValueError(
            f'Stage {name} reads {rep!r} from stage {source!r}, which writes '
            f'only {list(seen[source])}.')
    if stage.kind != 'network' and not stage.inputs:
      raise ValueError(f'Stage {name} ({stage.kind}) needs config.stages.'
                       f'{name}.inputs.')
    seen[name] = tuple(stage.outputs)
  final = config.get('final') or config.stage_order[-1]
  if final not in seen:
    raise ValueError(f'config.final={final!r} is not a stage.')


# ------------------------------------------------------- --config strings


def _flatten(config: ml_collections.ConfigDict, prefix: str = '',
             seen: Optional[Dict[int, str]] = None) -> Dict[str, Any]:
  """'section.field' -> value; a field linked to an earlier one is left out.

  A linked field (model.num_outputs = data.factor_dim, set_target) follows
  its source, so a flag for it would be redundant.
  """
  seen = {} if seen is None else seen
  flat = {}
  # pylint: disable-next=protected-access
  fields = config._fields
  for key in config.keys():
    path = f'{prefix}{key}'
    raw = fields.get(key)
    if isinstance(raw, ml_collections.FieldReference):
      if id(raw) in seen:
        continue
      seen[id(raw)] = path
    value = config[key]
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(_flatten(value, path + '.', seen))
    else:
      flat[path] = value
  return flat


def _flag_value(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return '"(' + ''.join(f'{_flag_value(v)},' for v in value) + ')"'
  if isinstance(value, str):
    return value if value and ' ' not in value else json.dumps(value)
  return str(value)


def config_string(stage: ml_collections.ConfigDict,
                  config: Optional[ml_collections.ConfigDict] = None) -> str:
  """The --config value (plus --config.* flags) that rebuilds a stage config.

  Every field that differs from `get_config(config_arg)` of the stage's file
  becomes a --config.<field>=<value> flag, so the string stays true after
  command-line overrides of the pipeline.

  Args:
    stage: config.stages.<name>.
    config: the stage config to describe (default stage.config).
  """
  config = stage.config if config is None else config
  base = _flatten(load_experiment_config(stage.config_file,
                                         stage.config_arg or None))
  flags = []
  for key, value in _flatten(config).items():
    if key not in base or base[key] != value:
      flags.append(f'--config.{key}={_flag_value(value)}')
  ref = stage.config_file + (f':{stage.config_arg}' if stage.config_arg
                             else '')
  return ' '.join([ref] + flags)


# ------------------------------------------------------------ description


def _enriched(shard_dir: str) -> bool:
  try:
    manifest = json.loads(
        (epath.Path(shard_dir) / 'manifest.json').read_text())
  except (OSError, ValueError):
    return False
  return bool((manifest.get('args') or {}).get('enrichment'))


def describe_stage(stage_config: ml_collections.ConfigDict
                   ) -> Dict[str, Any]:
  """The report labels of a stage: dataset, modality, target, settings, seed.

  modality names are joined with '+' in fusion_lib.MODALITY_ORDER; settings
  follow the paper's tables (Table 6 'high-4x70', 'vsm+sem', 'resnet-101',
  'mlp'; Table 2 'cnn' for the MSD-I networks, 'mlp' for the fusions).
  """
  model = stage_config.model
  dataset = stage_config.data.dataset
  if model.name == 'fusion':
    modality = '+'.join(fusion_lib.ordered_modalities(model.modalities))
    settings = 'mlp'
  elif model.name == 'alignment':
    modality = '+'.join(ALIGNMENT_OUTPUTS)
    settings = 'alignment'
  else:
    modality = NETWORK_OUTPUTS[model.name]
    if model.name == 'audio_cnn':
      settings = f'{model.width}-{model.kernels}'
    elif model.name == 'timbre_mlp':
      settings = 'timbre-mlp'
    elif model.name == 'text_mlp':
      # VSM+SEM: the shards were prepared with --enrichment (Sec 7.3.2).
      settings = ('vsm+sem' if _enriched(stage_config.data.shard_dir)
                  else 'vsm')
    elif model.name == 'resnet':
      settings = f'resnet-{model.depth}'
    else:
      settings = 'cnn'
  return {'dataset': dataset, 'modality': modality,
          'target': stage_config.model.target, 'settings': settings,
          'seed': int(stage_config.train.seed)}


# -------------------------------------------------------------- workdirs

# S/representations/<name>/<split>.npz (docs/workdirs.md §1).
_rep_path = representations.representation_path


def missing_representations(stage_dir, outputs: Sequence[str]) -> List[str]:
  return [f'{name}/{split}' for name in outputs for split in SPLITS
          if not _rep_path(stage_dir, name, split).exists()]


def is_complete(stage_dir, outputs: Sequence[str]) -> bool:
  """Training done and every representation of every split extracted."""
  stage_dir = epath.Path(stage_dir)
  return ((stage_dir / DONE_FILE).exists() and
          (stage_dir / TEST_METRICS_FILE).exists() and
          not missing_representations(stage_dir, outputs))


def resolve_stage_config(config: ml_collections.ConfigDict, name: str,
                         workdir) -> ml_collections.ConfigDict:
  """A stage's config as it runs: shards and input workdirs filled in.

  Args:
    config: the pipeline config.
    name: the stage.
    workdir: the pipeline workdir W.

  Returns:
    An unlocked copy of config.stages[name].config with data.shard_dir =
    config.data.shard_dir (when set) and data.inputs = {representation:
    W/<input stage>}; fusion / alignment input sizes are read from the
    extracted training representations when they exist.
  """
  stage = config.stages[name]
  stage_config = copy.deepcopy(stage.config)
  stage_config.unlock()
  if config.data.get('shard_dir'):
    stage_config.data.shard_dir = config.data.shard_dir
  if stage.kind == 'network':
    return stage_config
  workdir = epath.Path(workdir)
  inputs = {rep: str(workdir / source) for rep, source in
            stage.inputs.items()}
  if 'inputs' in stage_config.data:
    del stage_config.data['inputs']
  stage_config.data.inputs = ml_collections.ConfigDict(inputs)
  sizes = {}
  for rep, source_dir in inputs.items():
    path = _rep_path(source_dir, rep, 'train')
    if path.exists():
      with path.open('rb') as f, np.load(f) as npz:
        sizes[rep] = int(npz['representation'].shape[-1])
  if stage.kind == 'fusion' and len(sizes) == len(inputs):
    apply_overrides(stage_config, {'model.input_dims': sizes})
  elif stage.kind == 'alignment' and len(sizes) == len(inputs):
    apply_overrides(stage_config, {
        'model.audio_dim': sizes[ALIGNMENT_INPUTS[0]],
        'model.visual_dim': sizes[ALIGNMENT_INPUTS[1]]})
  return stage_config


def _write_json(path: epath.Path, value: Any) -> None:
  fileio.write_json_atomic(path, value, indent=2)


def _stage_record(config, name: str, stage_config, status: str,
                  seconds: Optional[float], workdir) -> Dict[str, Any]:
  stage = config.stages[name]
  row = describe_stage(stage_config)
  row.update(stage.row.to_dict())
  return {'name': name, 'workdir': str(epath.Path(workdir) / name),
          'config': config_string(stage, stage_config),
          'kind': stage.kind, 'inputs': stage.inputs.to_dict(),
          'outputs': list(stage.outputs), 'status': status,
          'seconds': None if seconds is None else round(seconds, 1),
          'row': row}


def _pipeline_record(config, records: Sequence[Mapping[str, Any]]
                     ) -> Dict[str, Any]:
  return {'name': config.name, 'config': config.config_ref,
          'dataset': config.data.dataset,
          'final': config.get('final') or config.stage_order[-1],
          'stages': list(records)}


def _is_chief() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() == 0


def run_stage(stage_config: ml_collections.ConfigDict, stage_dir,
              outputs: Sequence[str]) -> None:
  """Trains (or resumes) one stage, then extracts its representations."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax import evaluate
  from mmgenre_jax import train
  # pylint: enable=g-import-not-at-top
  stage_dir = epath.Path(stage_dir)
  if not ((stage_dir / DONE_FILE).exists() and
          (stage_dir / TEST_METRICS_FILE).exists()):
    train.train_and_evaluate(stage_config, stage_dir)
  splits = [split for split in SPLITS
            if any(not _rep_path(stage_dir, name, split).exists()
                   for name in outputs)]
  if splits:
    evaluate.extract_all(stage_config, stage_dir, splits=splits)
  missing = missing_representations(stage_dir, outputs)
  if missing and _is_chief():
    raise FileNotFoundError(
        f'{stage_dir}: extraction did not write representations {missing} '
        f'(expected {_rep_path(stage_dir, "<name>", "<split>")}).')


def run_pipeline(config: ml_collections.ConfigDict, workdir,
                 *, report: bool = True) -> Dict[str, Any]:
  """Runs the stages of a pipeline config in order (module docstring).

  Args:
    config: a pipeline config (configs/mumu_cosine.py, ...).
    workdir: the pipeline workdir W; stage <s> runs in W/<s>.
    report: write W/report.md and W/results.json at the end.

  Returns:
    The content of W/pipeline.json.
  """
  validate(config)
  workdir = epath.Path(workdir)
  chief = _is_chief()
  if chief:
    workdir.mkdir(parents=True, exist_ok=True)
  records = {}
  order = list(config.stage_order)

  def save(current: Optional[str] = None):
    if not chief:
      return
    listed = []
    for name in order:
      if name in records:
        listed.append(records[name])
      else:
        stage_config = resolve_stage_config(config, name, workdir)
        listed.append(_stage_record(
            config, name, stage_config,
            'running' if name == current else 'pending', None, workdir))
    _write_json(workdir / PIPELINE_FILE, _pipeline_record(config, listed))

  for index, name in enumerate(order):
    stage = config.stages[name]
    stage_dir = workdir / name
    stage_config = resolve_stage_config(config, name, workdir)
    prefix = f'[{config.name} {index + 1}/{len(order)}] {name}'
    if is_complete(stage_dir, stage.outputs):
      logging.info('%s: complete in %s, skipped.', prefix, stage_dir)
      print(f'{prefix}: complete, skipped', flush=True)
      records[name] = _stage_record(config, name, stage_config, 'skipped',
                                    None, workdir)
      continue
    print(f'{prefix}: {stage.kind} {config_string(stage, stage_config)}',
          flush=True)
    save(current=name)
    start = time.time()
    run_stage(stage_config, stage_dir, stage.outputs)
    seconds = time.time() - start
    records[name] = _stage_record(config, name, stage_config, 'done',
                                  seconds, workdir)
    metrics = _read_json(stage_dir / TEST_METRICS_FILE) or {}
    shown = {k: round(v, 4) for k, v in metrics.items()
             if k in ('roc_auc', 'macro_f1', 'adiv@1') and
             isinstance(v, (int, float))}
    print(f'{prefix}: done in {seconds:.0f} s {shown}', flush=True)
  save()
  result = _read_json(workdir / PIPELINE_FILE)
  if report and chief:
    # pylint: disable-next=g-import-not-at-top
    from mmgenre_jax import report as report_lib
    report_lib.write_report(workdir)
  return result


def _read_json(path: epath.Path) -> Optional[Dict[str, Any]]:
  try:
    return json.loads(epath.Path(path).read_text())
  except (OSError, ValueError):
    return None

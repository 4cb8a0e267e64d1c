"""Building a pipeline config: stages, overrides, input sizes, descriptions.

What the pipeline files (configs/mumu_cosine.py, mumu_logistic.py, msdi.py)
import; the layout of a pipeline config is in the package docstring
(mmgenre_jax/pipelines/__init__.py). Every per-network fact (which
representations a stage writes, their sizes, its report label) comes from
the model registry (mmgenre_jax/models/registry.py).

Light on purpose: ml_collections, the registry, specs and the workdir / shard
layout only, so that `--config=configs/mumu_cosine.py` loads neither JAX nor
TensorFlow; running the stages is mmgenre_jax/pipelines/runner.py.

  config = definition.pipeline_config('tiny', 'configs/x.py',
                                      dataset='mumu',
                                      shard_dir='runs/data/mumu_shards')
  definition.add_stage(config, 'audio',
                       config_file='configs/mumu_audio.py')
  definition.add_stage(config, 'fused',
                       config_file='configs/mumu_fusion.py',
                       config_arg='audio-cosine', inputs={'audio': 'audio'})
  definition.link_input_dims(config)
"""

import copy
import importlib
import json
from typing import Any, Dict, List, Mapping, Optional

import ml_collections

from input_pipeline import layout
from mmgenre_jax import errors
from mmgenre_jax.models import registry
from mmgenre_jax.models import specs

KINDS = ('network', 'alignment', 'fusion')
# Row modality suffix of a network whose own output layer is not a row of the
# paper's tables (own_head_row): the MuMu track CNN's album mean of scores,
# the MSD-I CNNs' softmax heads. The report lists these rows apart.
OWN_HEAD_SUFFIX = '_head'


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
  # Label factors of every COSINE stage; '' = W/label_factors (runner).
  config.data.label_factors = ''
  config.final = final
  # Comma-separated pipeline workdirs whose complete stages of the same
  # name and the same config string are copied instead of trained again
  # (runner.reusable_stage; e.g. the LOGISTIC image stage both MuMu
  # pipelines train).
  config.reuse_stages_from = ''
  # Stages run at once when their inputs are done (runner.stage_concurrency;
  # 0: one per core, up to 4). Results do not depend on it, only the time.
  config.concurrent_stages = 0
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


def stage_kind(stage_config: ml_collections.ConfigDict) -> str:
  """A stage's kind (KINDS): 'network', 'alignment' or 'fusion'.

  'network' trains on shards; a stage that reads earlier stages'
  representations takes its registry kind.
  """
  net = registry.network(stage_config.model)
  return net.kind if net.reads_representations else 'network'


def reads_representations(stage: ml_collections.ConfigDict) -> bool:
  """Whether a stage (config.stages.<name>) trains on earlier stages'
  representations rather than on shards."""
  return registry.network(stage.config.model).reads_representations


def recorded_reads_shards(record: Mapping[str, Any]) -> bool:
  """Whether a pipeline.json stage entry is a network trained on shards."""
  return record['kind'] not in {n.kind for n in registry.NETWORKS.values()
                                if n.reads_representations}


def recorded_scores_labels(record: Mapping[str, Any]) -> bool:
  """Whether a pipeline.json stage entry has label scores (a results.json
  row): every stage but the alignment space."""
  return not any(n.kind == record['kind'] and not n.predicts_labels
                 for n in registry.NETWORKS.values())


def stage_outputs(stage_config: ml_collections.ConfigDict) -> tuple:
  """Representation names a stage writes (docs/workdirs.md §1)."""
  model = stage_config.model
  return tuple(registry.network(model).representations(model))


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
  inputs = dict(inputs or {})
  for stage_name in inputs.values():
    if stage_name not in config.stages:
      raise ValueError(
          f'Pipeline {config.name}: stage {name!r} reads from {stage_name!r}, '
          f'which is not an earlier stage ({list(config.stage_order)}).')
  stage = ml_collections.ConfigDict()
  stage.kind = stage_kind(stage_config)
  stage.config_file = config_file
  stage.config_arg = config_arg or ''
  stage.config = stage_config
  stage.inputs = ml_collections.ConfigDict(inputs)
  stage.outputs = stage_outputs(stage_config)
  stage.row = ml_collections.ConfigDict(dict(row or {}))
  config.stages[name] = stage
  config.stage_order = tuple(config.stage_order) + (name,)


def link_input_dims(config: ml_collections.ConfigDict) -> None:
  """Sets each fusion / alignment stage's input sizes from its input stages.

  Call after the stages are added (and overridden): a CPU variant with a LOW
  audio CNN or a small ResNet feeds smaller vectors than the paper's. Which
  config.model fields hold the sizes is registry.input_dim_fields.
  """
  for name in config.stage_order:
    stage = config.stages[name]
    if not reads_representations(stage) or not stage.inputs:
      continue
    sizes = {}
    for rep, source in stage.inputs.items():
      model = config.stages[source].config.model
      sizes[rep] = registry.network(model).representation_size(model)
    apply_overrides(stage.config,
                    registry.input_dim_fields(stage.config, sizes))


def for_shards(config: ml_collections.ConfigDict,
               manifest: Optional[Mapping[str, Any]]
               ) -> ml_collections.ConfigDict:
  """The pipeline adapted to its shards: stages they cannot feed left out,
  d at most the number of labels.

  A network stage whose modality has no records in the shards (a catalog
  without a reviews column, say; manifest `omitted_modalities` says why)
  is dropped, and so is every stage reading a dropped stage's output. When
  the final stage goes, the widest fusion left (most inputs; the last of
  equals) answers instead. The dropped stages and why are in
  `config.dropped_stages` (pipeline.json records them). COSINE stages whose
  data.factor_dim exceeds the shards' label count get d = that count (SVD
  gives at most one factor per label; a small catalog).

  Args:
    config: a pipeline config (left unchanged).
    manifest: the shards' manifest.json, or None (not prepared yet: the
      config is returned as it is, and the missing shards fail as usual).

  Returns:
    The config, or an adapted, unlocked copy.
  """
  if manifest is None:
    return config
  dropped = _stages_without_shards(config, manifest)
  num_labels = len(manifest.get('labels') or ())
  too_wide = [name for name in cosine_stages(config) if name not in dropped
              and int(config.stages[name].config.data.factor_dim) >
              num_labels > 0]
  if not dropped and not too_wide:
    return config
  kept = [name for name in config.stage_order if name not in dropped]
  if not kept:
    raise errors.ConfigError(
        f'Pipeline {config.name}: the shards {config.data.shard_dir} feed '
        'none of its stages ('
        + '; '.join(f'{n}: {why}' for n, why in dropped.items()) + ').')
  adapted = copy.deepcopy(config)
  adapted.unlock()
  for name in too_wide:
    adapted.stages[name].config.data.factor_dim = num_labels
  if not dropped:
    return adapted
  for name in dropped:
    del adapted.stages[name]
  adapted.stage_order = tuple(kept)
  if (config.get('final') or config.stage_order[-1]) in dropped:
    fusions = [n for n in kept
               if registry.network(adapted.stages[n].config.model).fuses]
    adapted.final = (max(reversed(fusions),
                         key=lambda n: len(adapted.stages[n].inputs))
                     if fusions else kept[-1])
  adapted.dropped_stages = dropped
  return adapted


def _stages_without_shards(config: ml_collections.ConfigDict,
                           manifest: Mapping[str, Any]) -> Dict[str, str]:
  """Stage -> why the shards cannot feed it (for_shards)."""
  present = set(manifest.get('modalities') or ())
  omitted = manifest.get('omitted_modalities') or {}
  dropped: Dict[str, str] = {}
  for name in config.stage_order:
    stage = config.stages[name]
    if not reads_representations(stage):
      modality, _ = registry.shard_input(stage.config)
      if modality not in present:
        why = omitted.get(modality, 'not prepared')
        dropped[name] = f'the shards have no {modality!r} records ({why})'
      continue
    lost = sorted(source for source in stage.inputs.values()
                  if source in dropped)
    if lost:
      dropped[name] = f'it reads stage(s) {", ".join(lost)}, left out'
  return dropped


def cosine_stages(config: ml_collections.ConfigDict) -> List[str]:
  """The stages that regress label factors (a COSINE target)."""
  found = []
  for name in config.stage_order:
    target = registry.target(config.stages[name].config.model)
    if target is not None and target.uses_label_factors:
      found.append(name)
  return found


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
    if reads_representations(stage) and not stage.inputs:
      raise ValueError(f'Stage {name} ({stage.kind}) needs config.stages.'
                       f'{name}.inputs.')
    seen[name] = tuple(stage.outputs)
  dims = {name: int(config.stages[name].config.data.factor_dim)
          for name in cosine_stages(config)}
  if len(set(dims.values())) > 1:
    raise ValueError(
        f'Pipeline {config.get("name")!r}: its COSINE stages share one set '
        f'of label factors but ask for different d: {dims}; set their '
        'data.factor_dim alike.')
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


def own_head_row(modality: str) -> Dict[str, str]:
  """The row labels of a network whose own head is not the paper's row.

  The paper reports such a modality through the Sec 4 network trained on the
  network's vectors (MuMu AUDIO, Sec 7.3.1; MSD-I CNN_AUDIO and CNN_VISUAL,
  Sec 6.2), a separate stage; the network's own scores stay in results.json
  as modality '<modality>_head'.
  """
  return {'modality': modality + OWN_HEAD_SUFFIX}


def is_own_head(modality: str) -> bool:
  """Whether a results.json modality is an own_head_row."""
  return modality.endswith(OWN_HEAD_SUFFIX)


def _enriched(shard_dir: str) -> bool:
  """Whether the shards were prepared with --enrichment (their manifest)."""
  manifest = layout.read_manifest(shard_dir) or {}
  return bool((manifest.get('args') or {}).get('enrichment'))


def describe_stage(stage_config: ml_collections.ConfigDict
                   ) -> Dict[str, Any]:
  """The report labels of a stage: dataset, modality, target, settings, seed.

  modality: a fusion's modalities joined with '+' in specs.MODALITY_ORDER,
  else the representations the stage writes ('mm_audio+mm_visual' for
  alignment). settings: the registry's label, after the paper's tables
  (Table 6 'high-4x70', 'vsm', 'resnet-101', 'mlp'; Table 2 'cnn' for the
  MSD-I networks, 'mlp' for the fusions).
  """
  model = stage_config.model
  net = registry.network(model)
  if net.fuses:
    modality = '+'.join(specs.ordered_modalities(model.modalities))
  else:
    modality = '+'.join(net.representations(model))
  settings = net.settings(model)
  if net.shard_input == registry.TEXT_SHARD_INPUT and _enriched(
      stage_config.data.shard_dir):
    # VSM+SEM: the shards were prepared with --enrichment (Sec 7.3.2), a
    # property of the shards, not of the network.
    settings += '+sem'
  return {'dataset': stage_config.data.dataset, 'modality': modality,
          'target': model.target, 'settings': settings,
          'seed': int(stage_config.train.seed)}

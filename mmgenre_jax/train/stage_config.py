"""A stage's config as it trains: data-dependent sizes and COSINE targets.

What every stage needs before its first step (docs/workdirs.md §1-2):
`prepare_config` fills the sizes a shard network reads from the shards'
manifest (labels, tf-idf vocabulary, image size); `prepare_representation_
config` those a fusion / alignment stage reads from the extracted
representations; `compute_label_factors` the PPMI-SVD label factors C_d of the
COSINE target (SPEC §3), written beside the checkpoints; `check_workdir`
that a workdir holds no other experiment.

A mismatch between the config and its data or workdir is an
errors.ConfigError / errors.WorkdirError: main.py prints its one line.
"""

import copy
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from input_pipeline.records import shard_reader
from mmgenre_jax.data import sources as data_sources
from mmgenre_jax import errors
from mmgenre_jax.data import representations
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import registry

# Label format of the shards (manifest 'label_type') each target trains on:
# COSINE and LOGISTIC are multi-label (MuMu, Sec 7), softmax single-label
# (MSD-I, Sec 6).
TARGET_LABEL_TYPES = {'cosine': ('multi_hot', 'index'),
                      'logistic': ('multi_hot',),
                      'softmax': ('index',)}


# The fields of a workdir's config.json that tell one experiment from another:
# resuming or evaluating with another network, target or dataset would mix
# two experiments (or fail deep in orbax on a shape).
WORKDIR_IDENTITY = (('model', 'name'), ('model', 'target'),
                    ('data', 'dataset'))


def _identity(config: Mapping[str, Any]) -> Dict[str, Any]:
  """{'model.name': ..., 'model.target': ..., 'data.dataset': ...}."""
  values = {}
  for section, field in WORKDIR_IDENTITY:
    node = config.get(section) or {}
    values[f'{section}.{field}'] = node.get(field)
  return values


def _describe(identity: Mapping[str, Any]) -> str:
  return ', '.join(f'{key.split(".")[-1]} {value}'
                   for key, value in identity.items())


def check_workdir(config: ml_collections.ConfigDict, workdir) -> None:
  """Checks that `workdir` is empty or holds this experiment.

  Args:
    config: the experiment config about to train, evaluate or extract.
    workdir: its stage workdir S; S/config.json (written when training
      starts) names the network, target and dataset of the run there.

  Raises:
    errors.WorkdirError: S/config.json names another model.name,
      model.target or data.dataset, or S is a pipeline workdir.
  """
  workdir = epath.Path(workdir)
  pipeline_record = workdir_lib.read_pipeline(workdir)
  if pipeline_record is not None:
    raise errors.WorkdirError(
        f'{workdir} is the workdir of pipeline '
        f'{pipeline_record.get("name")!r} ({pipeline_record.get("config")}), '
        'not of one network; pass that pipeline config, or a stage workdir '
        f'{workdir}/<stage>, or pick another --workdir.')
  saved = workdir_lib.read_json(workdir / workdir_lib.CONFIG_JSON)
  if not isinstance(saved, dict):
    return
  old, new = _identity(saved), _identity(config)
  if old != new:
    raise errors.WorkdirError(
        f'{workdir} holds another experiment ({_describe(old)}; this config: '
        f'{_describe(new)}); pick another --workdir (or delete {workdir} '
        'to start over).')


def load_manifest(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """The manifest of the records a shard network reads.

  config.data.source 'shards': the manifest in config.data.shard_dir;
  'tfds': the one the TFDS datasets keep (data_sources.open_data).

  Raises:
    errors.ConfigError: config.data.shard_dir is empty (source 'shards'),
      or the source is unknown.
    input_pipeline.records.shard_reader.ManifestError: no complete prepared shards (no
      built TFDS dataset) there.
  """
  return data_sources.open_data(config).manifest


def _where(config: ml_collections.ConfigDict) -> str:
  """The records a shard network reads, for messages."""
  if config.data.get('source') == 'tfds':
    data_dir = config.data.get('tfds_data_dir') or "TFDS's default data_dir"
    return f'the TFDS {config.data.dataset} datasets in {data_dir}'
  return str(config.data.shard_dir)


def _set_data_field(config, field: str, value: int, source: str) -> None:
  old = config.data.get(field)
  if old != value:
    logging.warning('config.data.%s=%s differs from the prepared data (%s '
                    '= %s); using %s.', field, old, source, value, value)
    config.data[field] = value


def _check_model_field(config, field: str, value: int, what: str) -> None:
  current = config.model.get(field)
  if current is None:
    config.model[field] = value
  elif int(current) != int(value):
    raise errors.ConfigError(
        f'config.model.{field}={current} but the shards in '
        f'{_where(config)} have {what} {value}; set '
        f'--config.model.{field}={value} (or leave it linked to config.data).')


def _check_outputs(config) -> None:
  target = config.model.target
  expected_outputs = (config.data.factor_dim if target == 'cosine'
                      else config.data.num_labels)
  if int(config.model.num_outputs) != int(expected_outputs):
    raise errors.ConfigError(
        f'config.model.num_outputs={config.model.num_outputs} but target '
        f'{target!r} needs {expected_outputs} outputs; keep num_outputs '
        'linked with configs.default.set_target().')


def prepare_config(config: ml_collections.ConfigDict,
                   manifest: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with the data-dependent sizes of the shards filled in.

  The number of labels, the tf-idf vocabulary and the image size are
  properties of the prepared shards (manifest.json), so they are read from
  there; a config value that differs is replaced (with a warning) in
  config.data and is an error in config.model (an explicit, unlinked size).

  Args:
    config: the experiment config (left unchanged; may be locked).
    manifest: load_manifest(config), the manifest of its records.

  Returns:
    The filled-in, unlocked copy.
  """
  config = copy.deepcopy(config)
  config.unlock()
  modality, _ = registry.shard_input(config)
  if modality not in manifest['modalities']:
    raise errors.ConfigError(
        f'{_where(config)} has no {modality!r} shards (it has '
        f'{sorted(manifest["modalities"])}), which config.model.name='
        f'{config.model.name!r} needs; prepare a corpus with {modality}.')
  target = config.model.target
  label_type = manifest['label_type']
  if label_type not in TARGET_LABEL_TYPES[target]:
    raise errors.ConfigError(
        f'config.model.target={target!r} needs {TARGET_LABEL_TYPES[target]} '
        f'labels but {_where(config)} holds {label_type!r} labels '
        f'(dataset {manifest["dataset"]!r}); pick a matching target config.')
  _set_data_field(config, 'num_labels', len(manifest['labels']),
                  'number of labels')
  if modality == 'text':
    _set_data_field(config, 'text_vocab_size', int(manifest['vocab_size']),
                    'vocab_size')
    _check_model_field(config, 'input_dim', int(manifest['vocab_size']),
                       'tf-idf vocabulary size')
  if modality == 'image':
    # The crop C the network sees and the side S of the stored covers it is
    # cropped from (S = C in shards from before stored_image_size).
    crop, stored = shard_reader.image_sizes(manifest)
    _set_data_field(config, 'image_size', crop, 'image_size')
    _check_model_field(config, 'image_size', crop, 'image size')
    config.data.stored_image_size = stored
  _check_outputs(config)
  return config


def _set_model_sizes(config, fields: Mapping[str, Any]) -> None:
  """Applies registry.input_dim_fields, warning where a config value differs."""
  for dotted, value in fields.items():
    field = dotted.split('.', 1)[1]
    current = config.model.get(field)
    if isinstance(value, Mapping):
      if current is not None and dict(current) != dict(value):
        logging.warning('config.model.%s=%s differs from the extracted '
                        'representations %s; using the latter.', field,
                        dict(current), dict(value))
      config.model[field] = ml_collections.ConfigDict(dict(value))
    else:
      if current is not None and int(current) != int(value):
        logging.warning('config.model.%s=%s but the extracted '
                        'representations have %d dimensions; using %d.',
                        field, current, value, value)
      config.model[field] = int(value)


def prepare_representation_config(
    config: ml_collections.ConfigDict,
    joined: representations.Joined) -> ml_collections.ConfigDict:
  """prepare_config for fusion / alignment: sizes from the extracted files.

  Args:
    config: the experiment config (left unchanged; may be locked).
    joined: the joined training split.

  Returns:
    The filled-in, unlocked copy: config.data.num_labels, and
    config.model.input_dims (fusion) or audio_dim / visual_dim (alignment)
    set from the representations.
  """
  config = copy.deepcopy(config)
  config.unlock()
  labels = joined.labels
  if labels.ndim == 2:
    _set_data_field(config, 'num_labels', labels.shape[1],
                    'labels per row of the representations')
  elif joined.label_names is not None:
    _set_data_field(config, 'num_labels', len(joined.label_names),
                    'label names of the representations')
  dims = {n: int(v.shape[1]) for n, v in joined.inputs.items()}
  names = registry.input_names(config)
  missing = [n for n in names if n not in dims]
  if missing:
    raise errors.ConfigError(
        f'config.model.modalities={names} but config.data.inputs has no '
        f'{missing} (it has {sorted(dims)}); add e.g. '
        f'--config.data.inputs.{missing[0]}=<stage workdir>.')
  _set_model_sizes(config, registry.input_dim_fields(
      config, {n: dims[n] for n in names}))
  if config.model.name == 'alignment':
    return config
  target = config.model.target
  label_type = 'multi_hot' if labels.ndim == 2 else 'index'
  if label_type not in TARGET_LABEL_TYPES[target]:
    raise errors.ConfigError(
        f'config.model.target={target!r} needs {TARGET_LABEL_TYPES[target]} '
        f'labels but the inputs {sorted(dims)} hold {label_type!r} labels; '
        'pick a matching target config.')
  _check_outputs(config)
  return config


def _representation_label_matrix(
    config, source: data_sources.RepresentationSource
) -> Tuple[List[str], np.ndarray, List[str]]:
  """(item ids, binary label matrix, label names) of the joined train + val
  rows of a fusion stage."""
  num_labels = int(config.data.num_labels)
  ids, rows, names = [], [], None
  for split in ppmi_svd.FACTORIZE_SPLITS:
    joined = source.split(split)
    labels = joined.labels
    if labels.ndim == 1:
      labels = np.eye(num_labels, dtype=np.float32)[labels.astype(np.int64)]
    ids += joined.ids.tolist()
    rows.append(np.asarray(labels, np.float32))
    names = names or joined.label_names
  names = names or [str(i) for i in range(num_labels)]
  return ids, np.concatenate(rows), names


def shard_label_matrix(data, modalities: Sequence[str]
                       ) -> Tuple[List[str], np.ndarray, List[str]]:
  """(album ids, binary label matrix [A, L], label names) of the train + val
  albums of the records of some modalities (their union, first-seen order).

  `data`: data_sources.open_data's records, or a shard directory.
  """
  data = data_sources.as_data(data)
  names = list(data.manifest['labels'])
  rows: Dict[str, np.ndarray] = {}
  for modality in modalities:
    items, matrix = data_sources.read_album_labels(
        data, modality, ppmi_svd.FACTORIZE_SPLITS)
    for item, row in zip(items, matrix):
      rows.setdefault(item, row)
  matrix = (np.stack(list(rows.values())) if rows
            else np.zeros((0, len(names)), np.float32))
  return list(rows), matrix, names


def factorize_shards(shard_dir, modalities: Sequence[str], dim: int,
                     out_dir) -> None:
  """Writes the PPMI-SVD factors of the shards' train + val albums to out_dir.

  A pipeline's one set of label factors (W/label_factors, the four files of
  workdir.write_factors), computed as `mmgenre factorize` computes them
  from the release files; every COSINE stage then reads it
  (config.data.label_factors).
  """
  items, matrix, names = shard_label_matrix(shard_dir, modalities)
  result = ppmi_svd.factorize(matrix, int(dim))
  if jax.process_index() == 0:
    workdir_lib.write_factors(out_dir, result.label_factors,
                              result.item_factors, names, items)


def _given_factors(config: ml_collections.ConfigDict, names: Sequence[str]
                   ) -> Tuple[np.ndarray, np.ndarray, List[str]]:
  """(C_d, F_d, items) of config.data.label_factors, checked against the
  stage's labels and d."""
  factor_dir = epath.Path(config.data.label_factors)
  if not workdir_lib.factors_complete(factor_dir):
    raise errors.ConfigError(
        f'config.data.label_factors={factor_dir} holds no complete set of '
        f'factor files ({workdir_lib.LABEL_FACTORS_NPY}, '
        f'{workdir_lib.LABELS_TSV}, ...); write them with `mmgenre '
        'factorize`, or set --config.data.label_factors= to factorise this '
        "stage's own train + val items.")
  given = workdir_lib.read_lines(factor_dir / workdir_lib.LABELS_TSV)
  if list(given) != list(names):
    diff = next((i for i, (a, b) in enumerate(zip(given, names)) if a != b),
                min(len(given), len(names)))
    raise errors.ConfigError(
        f'{factor_dir / workdir_lib.LABELS_TSV} lists {len(given)} labels, '
        f'the stage trains on {len(names)}, first difference at row {diff}; '
        'factorise the labels of the same shards (or clear '
        '--config.data.label_factors).')
  label_factors = workdir_lib.load_label_factors(factor_dir)
  if label_factors.shape[1] != int(config.data.factor_dim):
    raise errors.ConfigError(
        f'{factor_dir / workdir_lib.LABEL_FACTORS_NPY} has d = '
        f'{label_factors.shape[1]} factors but config.data.factor_dim = '
        f'{config.data.factor_dim}; set one to the other.')
  with (factor_dir / workdir_lib.ITEM_FACTORS_NPY).open('rb') as f:
    item_factors = np.load(f)
  items = workdir_lib.read_lines(factor_dir / workdir_lib.ITEMS_TSV)
  return label_factors, item_factors, items


def compute_label_factors(config: ml_collections.ConfigDict, workdir,
                          source=None) -> np.ndarray:
  """PPMI-SVD label factors C_d of the COSINE target (SPEC §3).

  With config.data.label_factors (the pipelines: W/label_factors), those
  factors, checked against the stage's labels and d. Otherwise factorised
  from the train + val items: a shard network's albums, a fusion stage's
  joined rows. Either way written to workdir/label_factors.npy, labels.tsv,
  item_factors.npy and items.tsv (workdir.write_factors), which evaluation
  and tagging read back.

  Returns:
    C_d, float32 [L, d].
  """
  reads_representations = registry.network(config.model).reads_representations
  if reads_representations:
    source = source or data_sources.make_source(config)
    items, matrix, names = _representation_label_matrix(config, source)
  else:
    modality, _ = registry.shard_input(config)
    data = (source.data if isinstance(source, data_sources.ShardSource)
            else data_sources.open_data(config))
    names = data.manifest['labels']
  if config.data.get('label_factors'):
    label_factors, item_factors, items = _given_factors(config, names)
    logging.info('COSINE targets: the label factors of %s.',
                 config.data.label_factors)
  else:
    if not reads_representations:
      items, matrix, names = shard_label_matrix(data, [modality])
    result = ppmi_svd.factorize(matrix, int(config.data.factor_dim))
    label_factors, item_factors = result.label_factors, result.item_factors
  if jax.process_index() == 0:
    workdir_lib.write_factors(workdir, label_factors, item_factors, names,
                              items)
  return np.asarray(label_factors, np.float32)


def load_label_factors(config: ml_collections.ConfigDict,
                       workdir) -> Optional[np.ndarray]:
  """C_d saved by training (COSINE), None for the other targets."""
  if config.model.name == 'alignment' or config.model.target != 'cosine':
    return None
  return workdir_lib.load_label_factors(workdir).astype(np.float32)

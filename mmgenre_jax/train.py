"""Trains and evaluates ONE network of the paper on prepared shards.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.data.shard_dir=runs/data/shards

The network's input modality follows config.model.name (MODEL_INPUTS). Each
epoch trains on the training split, evaluates on the validation split and
saves workdir/checkpoints/latest; the epoch with the lowest validation loss is
kept in workdir/checkpoints/best, and training stops early after
config.train.patience epochs without improvement (SPEC §4 [code]). At the end
the best checkpoint is evaluated on the test split (SPEC §5) and the metrics
are written to workdir/test_metrics.json.

A run that is stopped and started again with the same command resumes from
workdir/checkpoints/latest and ends in the same state as an uninterrupted
run: the training order of every epoch is seeded by (seed, epoch), dropout by
(seed, step), and a mid-epoch checkpoint records how many batches of the
epoch were done.

Parallelism: jax.jit over the 1-D 'data' mesh of mmgenre_jax.sharding; the
batch is split over devices, parameters and optimizer state are replicated.
"""

import copy
import functools
import json
import os
import pathlib
import time
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from absl import logging
from clu import metric_writers
from clu import metrics as clu_metrics
from clu import periodic_actions
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tensorflow as tf

from input_pipeline import pipeline
from mmgenre_jax import losses
from mmgenre_jax import metrics
from mmgenre_jax import models
from mmgenre_jax import sharding
from mmgenre_jax import targets

# config.model.name -> (modality of the shards, batch key fed to the network).
MODEL_INPUTS = {
    'audio_cnn': ('audio', 'patch'),
    'msdi_audio_cnn': ('audio', 'patch'),
    'text_mlp': ('text', 'tfidf'),
    'resnet': ('image', 'image'),
}
# Label format of the shards (manifest 'label_type') each target trains on:
# COSINE and LOGISTIC are multi-label (MuMu, Sec 7), softmax single-label
# (MSD-I, Sec 6).
TARGET_LABEL_TYPES = {'cosine': ('multi_hot', 'index'),
                      'logistic': ('multi_hot',),
                      'softmax': ('index',)}
# Files and folders of a workdir.
CHECKPOINT_DIR = 'checkpoints'
LATEST = 'latest'
BEST = 'best'
# Written when training has finished: the follow mode of evaluate.py stops
# once it has seen every checkpoint before this marker.
DONE_FILE = 'training_done.json'
TEST_METRICS_FILE = 'test_metrics.json'
CONFIG_FILE = 'config.json'
# Per-epoch shuffling seed = seed * EPOCH_SEED_STRIDE + epoch (mod 2**31):
# every epoch has its own order, the same in every run with the same seed.
EPOCH_SEED_STRIDE = 1_000_003
# Log training metrics every this many steps when config.train has no
# log_every_steps.
DEFAULT_LOG_EVERY_STEPS = 50


class TrainState(train_state.TrainState):
  """Flax TrainState plus the BatchNorm statistics of ResNet ({} otherwise)."""
  batch_stats: Any = None


def _scalar_metric(name: str):
  """A clu Average of a per-batch scalar output (no per-row mask)."""

  @flax.struct.dataclass
  class _Scalar(clu_metrics.Average):

    @classmethod
    def from_model_output(cls, **model_output):
      return super().from_model_output(jnp.asarray(model_output[name]))

  return _Scalar


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
  """Training loss over real rows, and the l2 norms scenic/big_vision log."""
  loss: clu_metrics.Average.from_output('loss')
  l2_grads: _scalar_metric('l2_grads')
  l2_params: _scalar_metric('l2_params')
  l2_updates: _scalar_metric('l2_updates')


# ---------------------------------------------------------------- config


def input_spec(config: ml_collections.ConfigDict) -> Tuple[str, str]:
  """(modality, batch key) of the network named by config.model.name."""
  name = config.model.name
  if name not in MODEL_INPUTS:
    raise ValueError(
        f'config.model.name={name!r} cannot be trained on its own by '
        f'mmgenre_jax.train; use one of {sorted(MODEL_INPUTS)}.')
  return MODEL_INPUTS[name]


def _set_data_field(config, field: str, value: int, source: str) -> None:
  old = config.data.get(field)
  if old != value:
    logging.warning('config.data.%s=%s differs from the prepared shards (%s '
                    '= %s); using %s.', field, old, source, value, value)
    config.data[field] = value


def _check_model_field(config, field: str, value: int, what: str) -> None:
  current = config.model.get(field)
  if current is None:
    config.model[field] = value
  elif int(current) != int(value):
    raise ValueError(
        f'config.model.{field}={current} but the shards in '
        f'{config.data.shard_dir} have {what} {value}; set '
        f'--config.model.{field}={value} (or leave it linked to config.data).')


def prepare_config(config: ml_collections.ConfigDict,
                   manifest: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with the data-dependent sizes of the shards filled in.

  The number of labels, the tf-idf vocabulary and the image size are
  properties of the prepared shards (manifest.json), so they are read from
  there; a config value that differs is replaced (with a warning) in
  config.data and is an error in config.model (an explicit, unlinked size).

  Args:
    config: the experiment config (left unchanged; may be locked).
    manifest: pipeline.load_manifest(config.data.shard_dir).

  Returns:
    The filled-in, unlocked copy.
  """
  config = copy.deepcopy(config)
  config.unlock()
  modality, _ = input_spec(config)
  if modality not in manifest['modalities']:
    raise ValueError(
        f'{config.data.shard_dir} has no {modality!r} shards (it has '
        f'{sorted(manifest["modalities"])}), which config.model.name='
        f'{config.model.name!r} needs; prepare a corpus with {modality}.')
  target = config.model.target
  label_type = manifest['label_type']
  if label_type not in TARGET_LABEL_TYPES[target]:
    raise ValueError(
        f'config.model.target={target!r} needs {TARGET_LABEL_TYPES[target]} '
        f'labels but {config.data.shard_dir} holds {label_type!r} labels '
        f'(dataset {manifest["dataset"]!r}); pick a matching target config.')
  _set_data_field(config, 'num_labels', len(manifest['labels']),
                  'number of labels')
  if modality == 'text':
    _set_data_field(config, 'text_vocab_size', int(manifest['vocab_size']),
                    'vocab_size')
    _check_model_field(config, 'input_dim', int(manifest['vocab_size']),
                       'tf-idf vocabulary size')
  if modality == 'image':
    _set_data_field(config, 'image_size', int(manifest['image_size']),
                    'image_size')
    _check_model_field(config, 'image_size', int(manifest['image_size']),
                       'image size')
  expected_outputs = (config.data.factor_dim if target == 'cosine'
                      else config.data.num_labels)
  if int(config.model.num_outputs) != int(expected_outputs):
    raise ValueError(
        f'config.model.num_outputs={config.model.num_outputs} but target '
        f'{target!r} needs {expected_outputs} outputs; keep num_outputs '
        'linked with configs.default.set_target().')
  return config


# ---------------------------------------------------------------- targets


def read_album_labels(shard_dir, modality: str,
                      splits: Iterable[str]) -> Tuple[List[str], np.ndarray]:
  """Album ids and labels of some splits, one row per album.

  Only `album_id` and `labels` are parsed (tracks of one album share the
  album's labels, so tracks are deduplicated to albums, SPEC §3).

  Args:
    shard_dir: prepared shards.
    modality: whose shards to read.
    splits: e.g. ('train', 'val').

  Returns:
    album ids (first-seen order) and the binary matrix float32 [A, L].
  """
  manifest = pipeline.load_manifest(shard_dir)
  num_labels = len(manifest['labels'])
  entry = manifest['modalities'][modality]
  spec = {'album_id': tf.io.FixedLenFeature([], tf.string),
          'labels': tf.io.VarLenFeature(tf.int64)}
  rows: Dict[str, np.ndarray] = {}
  for split in splits:
    files = [os.fspath(pathlib.Path(shard_dir) / s['file'])
             for s in entry['shards'][split]]
    ds = tf.data.TFRecordDataset(files).map(
        lambda r: tf.io.parse_single_example(r, spec)).map(
            lambda e: (e['album_id'], tf.sparse.to_dense(e['labels'])))
    for album, ids in ds.as_numpy_iterator():
      album = album.decode('utf-8')
      if album not in rows:
        row = np.zeros(num_labels, np.float32)
        row[ids] = 1.0
        rows[album] = row
  if not rows:
    raise ValueError(f'{shard_dir}: no {modality} records in splits '
                     f'{list(splits)}; the label factors need labelled '
                     'training albums.')
  return list(rows), np.stack(list(rows.values()))


def compute_label_factors(config: ml_collections.ConfigDict,
                          workdir) -> np.ndarray:
  """PPMI-SVD label factors C_d of the train + val albums (SPEC §3).

  Also writes workdir/label_factors.npy, labels.tsv, item_factors.npy and
  items.tsv (targets.write_factors), which evaluation reads back.

  Returns:
    C_d, float32 [L, d].
  """
  modality, _ = input_spec(config)
  manifest = pipeline.load_manifest(config.data.shard_dir)
  albums, matrix = read_album_labels(config.data.shard_dir, modality,
                                     targets.FACTORIZE_SPLITS)
  result = targets.factorize(matrix, int(config.data.factor_dim))
  if jax.process_index() == 0:
    targets.write_factors(workdir, result, manifest['labels'], albums)
  return result.label_factors.astype(np.float32)


def load_label_factors(config: ml_collections.ConfigDict,
                       workdir) -> Optional[np.ndarray]:
  """C_d saved by training (COSINE), None for the other targets."""
  if config.model.target != 'cosine':
    return None
  return targets.load_label_factors(workdir).astype(np.float32)


def item_targets(labels: jax.Array, label_factors: Optional[jax.Array],
                 target: str, num_labels: int) -> jax.Array:
  """What the loss compares the output with.

  Args:
    labels: multi-hot float [B, L] or class ids int [B].
    label_factors: C_d [L, d] (cosine only).
    target: heads.TARGETS.
    num_labels: L.

  Returns:
    cosine: F_d = normalize(M C_d) [B, d]; otherwise `labels` unchanged.
  """
  if target != 'cosine':
    return labels
  if labels.ndim == 1:
    labels = jax.nn.one_hot(labels, num_labels)
  return targets.item_factors(labels, label_factors)


# ------------------------------------------------------------------ state


def create_optimizer(config: ml_collections.ConfigDict
                     ) -> optax.GradientTransformation:
  """The optimizer of config.train (SPEC §4 [code]: Adam, lr 1e-3)."""
  name = config.train.get('optimizer', 'adam')
  lr = float(config.train.learning_rate)
  if name == 'adam':
    return optax.adam(lr)
  if name == 'sgd':
    return optax.sgd(lr, momentum=config.train.get('momentum', 0.9),
                     nesterov=True)
  raise ValueError(f'Unknown config.train.optimizer {name!r}; use adam or '
                   'sgd.')


def create_train_state(config: ml_collections.ConfigDict, model, rng,
                       mesh) -> TrainState:
  """Initialises parameters and optimizer state, already replicated.

  Args:
    config: the prepared config.
    model: models.create_model(config.model).
    rng: PRNG key of the initialisation.
    mesh: sharding.create_mesh().

  Returns:
    A TrainState whose arrays live on every device of the mesh.
  """
  tx = create_optimizer(config)
  inputs = models.dummy_inputs(config.model)

  def init(rng):
    variables = model.init({'params': rng}, *inputs, train=False)
    return TrainState.create(
        apply_fn=model.apply, params=variables['params'], tx=tx,
        batch_stats=variables.get('batch_stats', {}))

  # We jit init so that the arrays are created replicated on the mesh, not
  # on device 0 and then copied.
  return jax.jit(init, out_shardings=sharding.replicated_sharding(mesh))(rng)


def abstract_train_state(config: ml_collections.ConfigDict, model, mesh):
  """Shapes, dtypes and shardings of create_train_state, nothing allocated."""
  return jax.eval_shape(
      lambda: create_train_state(config, model, jax.random.key(0), mesh))


def num_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


# ------------------------------------------------------------------ steps


def _apply(state, params, inputs, *, train: bool, rngs=None):
  """Runs the network; returns (outputs, new batch_stats)."""
  variables = {'params': params}
  if state.batch_stats:
    variables['batch_stats'] = state.batch_stats
    if train:
      outputs, updates = state.apply_fn(variables, inputs, train=True,
                                        rngs=rngs, mutable=['batch_stats'])
      return outputs, updates['batch_stats']
  outputs = state.apply_fn(variables, inputs, train=train, rngs=rngs)
  return outputs, state.batch_stats


def train_step(state: TrainState, batch: Mapping[str, jax.Array],
               label_factors: Optional[jax.Array], rng: jax.Array, *,
               input_key: str, target: str, num_labels: int):
  """One optimisation step on a global batch.

  Args:
    state: the replicated TrainState.
    batch: input [B, ...] under `input_key`, 'labels' ([B, L] or [B]) and
      'mask' [B], sharded over the data axis.
    label_factors: C_d [L, d] (cosine) or None.
    rng: the dropout key of the run; folded with the step, so a resumed run
      draws the same masks.
    input_key: 'patch', 'tfidf' or 'image'.
    target: 'cosine', 'logistic' or 'softmax'.
    num_labels: L.

  Returns:
    (new state, TrainMetrics of this batch).
  """
  dropout_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  item_target = item_targets(batch['labels'], label_factors, target,
                             num_labels)
  loss_per_row = losses.get_loss(target, per_row=True)

  def loss_fn(params):
    outputs, batch_stats = _apply(state, params, batch[input_key], train=True,
                                  rngs={'dropout': dropout_rng})
    per_row = loss_per_row(outputs['output'].astype(jnp.float32),
                           item_target, mask)
    return losses.masked_mean(per_row, mask), (per_row, batch_stats)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, (per_row, batch_stats)), grads = grad_fn(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  updates = jax.tree_util.tree_map(jnp.subtract, new_state.params,
                                   state.params)
  step_metrics = TrainMetrics.single_from_model_output(
      loss=per_row, mask=mask, l2_grads=optax.global_norm(grads),
      l2_params=optax.global_norm(new_state.params),
      l2_updates=optax.global_norm(updates))
  return new_state, step_metrics


def eval_step(state: TrainState, batch: Mapping[str, jax.Array],
              label_factors: Optional[jax.Array], *, input_key: str,
              target: str, num_labels: int) -> Dict[str, jax.Array]:
  """Per-row loss, label scores and representations of a batch.

  Returns:
    loss [B] (0 on padding), scores [B, L] (targets.scores_from_output),
    labels and mask as given, representation [B, R].
  """
  outputs, _ = _apply(state, state.params, batch[input_key], train=False)
  output = outputs['output'].astype(jnp.float32)
  item_target = item_targets(batch['labels'], label_factors, target,
                             num_labels)
  per_row = losses.get_loss(target, per_row=True)(output, item_target,
                                                  batch['mask'])
  labels = batch['labels']
  if target != 'softmax' and labels.ndim == 1:
    # Single-label shards under a multi-label target (COSINE on MSD-I):
    # ranking metrics need the [B, L] label matrix.
    labels = jax.nn.one_hot(labels, num_labels)
  return {'loss': per_row,
          'scores': targets.scores_from_output(output, target, label_factors),
          'labels': labels, 'mask': batch['mask'],
          'representation': outputs['representation']}


class Steps:
  """The jitted train and eval steps of one config on one mesh."""

  def __init__(self, config: ml_collections.ConfigDict, mesh):
    _, input_key = input_spec(config)
    statics = dict(input_key=input_key, target=config.model.target,
                   num_labels=int(config.data.num_labels))
    repl = sharding.replicated_sharding(mesh)
    self.mesh = mesh
    # The state is donated: its buffers are reused for the new state.
    self.train = jax.jit(functools.partial(train_step, **statics),
                         out_shardings=(repl, repl), donate_argnums=(0,))
    # Replicated outputs: every process can read the whole batch's scores
    # (multi-host) and collect whole-split metrics.
    self.eval = jax.jit(functools.partial(eval_step, **statics),
                        out_shardings=repl)


# ------------------------------------------------------------------- data


def _model_batch(batch: Mapping[str, np.ndarray], input_key: str,
                 mesh) -> Dict[str, jax.Array]:
  keep = {k: batch[k] for k in (input_key, 'labels', 'mask')}
  return sharding.to_global_batch(keep, mesh)


def _num_batches(shard_dir, modality: str, split: str,
                 batch_size: int) -> int:
  """Batches per pass, the same on every process (the longest share)."""
  count = jax.process_count()
  sizes = [pipeline.num_examples(shard_dir, modality, split, process_index=i,
                                 process_count=count) for i in range(count)]
  return max(-(-n // batch_size) for n in sizes)


def _padded(batches: Iterator[Dict[str, np.ndarray]],
            num_batches: int) -> Iterator[Dict[str, np.ndarray]]:
  """Exactly num_batches batches; after the data ends, all-padding ones.

  Every process must run the same number of steps; a process whose share of
  the shards is smaller feeds batches with mask 0 (ignored by the losses and
  metrics).
  """
  last = None
  for _ in range(num_batches):
    batch = next(batches, None)
    if batch is None:
      if last is None:
        raise ValueError('A process has no data at all for this split; '
                         'prepare the shards with more files per split.')
      batch = {k: np.zeros_like(v) for k, v in last.items()}
    last = batch
    yield batch


def epoch_seed(seed: int, epoch: int) -> int:
  return (int(seed) * EPOCH_SEED_STRIDE + int(epoch)) % (2**31 - 1)


def train_batches(config, modality: str, batch_size: int, epoch: int,
                  num_batches: int, skip: int = 0):
  """The training batches of one epoch (this process), from batch `skip`."""
  ds = pipeline.make_dataset(
      config.data.shard_dir, modality, 'train', batch_size=batch_size,
      shuffle=True, seed=epoch_seed(config.train.seed, epoch),
      pad_final_batch=True)
  batches = _padded(pipeline.as_numpy_batches(ds), num_batches)
  for index, batch in enumerate(batches):
    if index >= skip:
      yield batch


def evaluate_split(steps: Steps, state: TrainState, config, split: str,
                   label_factors, *,
                   collect_representations: bool = False) -> Dict[str, Any]:
  """Loss and whole-split metrics (SPEC §5) of `state` on a split.

  Args:
    steps: the jitted steps.
    state: the (replicated) state to evaluate.
    config: the prepared config.
    split: 'train', 'val' or 'test'.
    label_factors: C_d on the devices (cosine) or None.
    collect_representations: also return ids, representations and labels
      of the real rows under '_extract'.

  Returns:
    metrics.multilabel_report / singlelabel_report keys plus 'loss'.
  """
  modality, input_key = input_spec(config)
  batch_size = sharding.per_process_batch_size(int(config.eval.batch_size),
                                               steps.mesh)
  ds = pipeline.make_dataset(config.data.shard_dir, modality, split,
                             batch_size=batch_size, pad_final_batch=True)
  num_batches = _num_batches(config.data.shard_dir, modality, split,
                             batch_size)
  single = config.model.target == 'softmax'
  collection = None
  extracted = {'ids': [], 'representation': [], 'labels': []}
  for batch in _padded(pipeline.as_numpy_batches(ds), num_batches):
    out = jax.device_get(steps.eval(
        state, _model_batch(batch, input_key, steps.mesh), label_factors))
    if single:
      update = metrics.SingleLabelEvalMetrics.single_from_model_output(
          loss=out['loss'], scores=out['scores'], label_ids=out['labels'],
          mask=out['mask'])
    else:
      update = metrics.MultiLabelEvalMetrics.single_from_model_output(
          loss=out['loss'], scores=out['scores'], labels=out['labels'],
          mask=out['mask'])
    collection = update if collection is None else collection.merge(update)
    if collect_representations:
      real = np.asarray(batch['mask']) > 0
      ids = batch.get('track_id', batch['album_id'])
      extracted['ids'].append(np.asarray(ids)[real])
      # Replicated outputs hold the global batch; this process's rows are
      # its slice of it.
      start = jax.process_index() * batch_size
      rows = slice(start, start + batch_size)
      extracted['representation'].append(out['representation'][rows][real])
      extracted['labels'].append(np.asarray(batch['labels'])[real])
  if collection is None:
    raise ValueError(f'{config.data.shard_dir}: the {modality} {split} split '
                     'is empty; nothing to evaluate.')
  computed = collection.compute()
  report = dict(computed['report'])
  report['loss'] = float(computed['loss'])
  if collect_representations:
    report['_extract'] = {k: np.concatenate(v) for k, v in extracted.items()}
  return report


# ------------------------------------------------------------ checkpoints


def checkpoint_managers(workdir, *, read_only: bool = False
                        ) -> Tuple[ocp.CheckpointManager,
                                   ocp.CheckpointManager]:
  """(latest, best): one checkpoint each, under workdir/checkpoints/."""
  root = pathlib.Path(workdir).absolute() / CHECKPOINT_DIR

  def manager(name):
    # Both managers may save the same step at once; orbax names its
    # multi-process barriers after the step, so each needs its own prefix.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, create=not read_only, read_only=read_only,
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            barrier_sync_key_prefix=name))
    return ocp.CheckpointManager(root / name, options=options)

  return manager(LATEST), manager(BEST)


def _checkpoint(state: TrainState, meta: Mapping[str, Any]) -> Dict[str, Any]:
  return {'state': flax.serialization.to_state_dict(state),
          'meta': {k: np.asarray(v) for k, v in meta.items()}}


# Training progress saved beside the state; floats are float64 so that a
# restored best loss compares exactly.
_META_DEFAULTS = {'epoch': 0, 'batches_in_epoch': 0,
                  'best_val_loss': np.inf, 'bad_epochs': 0,
                  'best_epoch': -1, 'train_seconds': 0.0, 'timed_batches': 0}


def _meta_target():
  return {k: np.asarray(v, np.float64 if isinstance(v, float) else np.int64)
          for k, v in _META_DEFAULTS.items()}


def restore_checkpoint(manager: ocp.CheckpointManager, step: int,
                       state: Any) -> Tuple[TrainState, Dict[str, Any]]:
  """Restores (state, meta) of `step` into the structure of `state`.

  Args:
    manager: a manager from checkpoint_managers.
    step: the saved step.
    state: a TrainState, concrete or abstract (jax.ShapeDtypeStruct leaves
      with shardings); the restored arrays get its shardings.

  Returns:
    The restored TrainState and its meta dict (python scalars).
  """
  target = {'state': flax.serialization.to_state_dict(state),
            'meta': _meta_target()}
  restored = manager.restore(step, args=ocp.args.StandardRestore(target))
  new_state = flax.serialization.from_state_dict(state, restored['state'])
  meta = {k: np.asarray(v).item() for k, v in restored['meta'].items()}
  return new_state, meta


def write_json(path: pathlib.Path, value: Any) -> None:
  """Writes JSON atomically (temporary file, then rename)."""
  tmp = path.with_name(f'.{path.name}.tmp')
  tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + '\n',
                 encoding='utf-8')
  os.replace(tmp, path)


def _check_finite(values: Mapping[str, Any], where: str) -> None:
  for key, value in values.items():
    if value is not None and np.ndim(value) == 0 and not np.isfinite(value):
      raise RuntimeError(
          f'{key} became {value} ({where}): training diverged; lower '
          '--config.train.learning_rate or check the input features.')


def _prefixed(values: Mapping[str, Any], prefix: str) -> Dict[str, float]:
  return {f'{prefix}/{k}': v for k, v in metrics.flatten_metrics(
      values).items()}


# ------------------------------------------------------------------- main


def setup(config: ml_collections.ConfigDict, workdir):
  """Everything train and evaluate share.

  Returns:
    (prepared config, mesh, model, Steps).
  """
  if not config.data.get('shard_dir'):
    raise ValueError('config.data.shard_dir is empty; set '
                     '--config.data.shard_dir to the --out directory of '
                     '`mmgenre prepare`.')
  manifest = pipeline.load_manifest(config.data.shard_dir)
  config = prepare_config(config, manifest)
  mesh = sharding.create_mesh()
  # Clear errors before anything is compiled.
  sharding.per_process_batch_size(int(config.train.batch_size), mesh)
  sharding.per_process_batch_size(int(config.eval.batch_size), mesh)
  pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
  model = models.create_model(config.model)
  return config, mesh, model, Steps(config, mesh)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Trains one network, keeps the best checkpoint, evaluates it on test.

  Args:
    config: an experiment config (configs/*.py); config.data.shard_dir must
      point to prepared shards.
    workdir: where checkpoints, TensorBoard events, label factors and
      test_metrics.json go. An existing run there is resumed.

  Returns:
    The test metrics (also in workdir/test_metrics.json): roc_auc, pr_auc,
    adiv@1/3/5, precision, recall, macro_f1, ..., loss, epoch_s, num_params,
    step, best_epoch.
  """
  workdir = pathlib.Path(workdir)
  ##############################################################################
  # Set up.
  ##############################################################################
  config, mesh, model, steps = setup(config, workdir)
  modality, input_key = input_spec(config)
  batch_size = sharding.per_process_batch_size(int(config.train.batch_size),
                                               mesh)
  is_chief = jax.process_index() == 0
  done_path = workdir / DONE_FILE
  if is_chief:
    done_path.unlink(missing_ok=True)
    write_json(workdir / CONFIG_FILE, json.loads(config.to_json()))
  writer = metric_writers.create_default_writer(
      os.fspath(workdir), just_logging=not is_chief)

  label_factors = None
  if config.model.target == 'cosine':
    label_factors = jax.device_put(
        compute_label_factors(config, workdir),
        sharding.replicated_sharding(mesh))

  ##############################################################################
  # Create or restore the train state.
  ##############################################################################
  rng = jax.random.key(int(config.train.seed))
  init_rng, dropout_rng = jax.random.split(rng)
  state = create_train_state(config, model, init_rng, mesh)
  params_count = num_params(state.params)
  logging.info('%s: %d parameters', config.model.name, params_count)
  latest_mngr, best_mngr = checkpoint_managers(workdir)
  meta = dict(_META_DEFAULTS)
  if latest_mngr.latest_step() is not None:
    state, meta = restore_checkpoint(latest_mngr, latest_mngr.latest_step(),
                                     state)
    logging.info('Resumed from step %d (epoch %d, batch %d).',
                 int(state.step), meta['epoch'], meta['batches_in_epoch'])

  ##############################################################################
  # Train loop.
  ##############################################################################
  steps_per_epoch = _num_batches(config.data.shard_dir, modality, 'train',
                                 batch_size)
  num_epochs = int(config.train.num_epochs)
  max_steps = config.train.get('max_steps') or None
  total_steps = num_epochs * steps_per_epoch
  if max_steps is not None:
    total_steps = min(total_steps, int(max_steps))
  log_every = int(config.train.get('log_every_steps') or
                  DEFAULT_LOG_EVERY_STEPS)
  patience = int(config.train.patience)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=total_steps, writer=writer)
  step = int(state.step)
  if step == 0:
    writer.write_hparams({k: v for k, v in _flat_config(config).items()})

  def finished(meta, step):
    return (meta['epoch'] >= num_epochs or meta['bad_epochs'] >= patience or
            (max_steps is not None and step >= int(max_steps)))

  with metric_writers.ensure_flushes(writer):
    while not finished(meta, step):
      epoch = meta['epoch']
      epoch_start, start_batches = time.time(), meta['batches_in_epoch']
      train_metrics = None
      for batch in train_batches(config, modality, batch_size, epoch,
                                 steps_per_epoch,
                                 skip=meta['batches_in_epoch']):
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, update = steps.train(
              state, _model_batch(batch, input_key, mesh), label_factors,
              dropout_rng)
        step += 1
        meta['batches_in_epoch'] += 1
        train_metrics = (update if train_metrics is None
                         else train_metrics.merge(update))
        report_progress(step)
        is_epoch_end = meta['batches_in_epoch'] >= steps_per_epoch
        if step % log_every == 0 or is_epoch_end:
          values = jax.device_get(train_metrics.compute())
          _check_finite(values, f'training step {step}')
          writer.write_scalars(step, _prefixed(values, 'train'))
          train_metrics = None
        if max_steps is not None and step >= int(max_steps):
          break
      # Training time only (no evaluation), over resumed parts too.
      meta['train_seconds'] += time.time() - epoch_start
      meta['timed_batches'] += meta['batches_in_epoch'] - start_batches
      if meta['batches_in_epoch'] < steps_per_epoch:
        # Stopped inside the epoch (max_steps): a restart continues here.
        latest_mngr.save(step, args=ocp.args.StandardSave(
            _checkpoint(state, meta)), force=True)
        break

      ##########################################################################
      # Evaluate on validation; early stopping; checkpoints.
      ##########################################################################
      with report_progress.timed('eval'):
        val = evaluate_split(steps, state, config, 'val', label_factors)
      _check_finite({'loss': val['loss']}, f'validation after epoch {epoch}')
      writer.write_scalars(step, _prefixed(val, 'val'))
      meta['epoch'] = epoch + 1
      meta['batches_in_epoch'] = 0
      if val['loss'] < meta['best_val_loss']:
        meta.update(best_val_loss=val['loss'], bad_epochs=0,
                    best_epoch=epoch)
        best_mngr.save(step, args=ocp.args.StandardSave(
            _checkpoint(state, meta)), force=True)
      else:
        meta['bad_epochs'] += 1
      logging.info('epoch %d step %d: val loss %.5f (best %.5f at epoch %d) '
                   '%s', epoch, step, val['loss'], meta['best_val_loss'],
                   meta['best_epoch'], metrics.format_report(val))
      latest_mngr.save(step, args=ocp.args.StandardSave(
          _checkpoint(state, meta)), force=True)
    latest_mngr.wait_until_finished()
    best_mngr.wait_until_finished()

    ############################################################################
    # Test the best checkpoint.
    ############################################################################
    if best_mngr.latest_step() is not None:
      best_state, best_meta = restore_checkpoint(
          best_mngr, best_mngr.latest_step(), state)
    else:
      # No epoch finished (max_steps inside the first epoch): test the
      # current parameters.
      logging.warning('No validated checkpoint yet; testing the parameters '
                      'of step %d.', step)
      best_state, best_meta = state, meta
    report = evaluate_split(steps, best_state, config, 'test', label_factors)
    report.update(
        epoch_s=(meta['train_seconds'] * steps_per_epoch /
                 meta['timed_batches'] if meta['timed_batches'] else None),
        num_params=params_count, step=int(best_state.step),
        best_epoch=int(best_meta['best_epoch']), train_steps=step)
    writer.write_scalars(step, _prefixed(report, 'test'))
  logging.info('test: %s', metrics.format_report(report))
  if is_chief:
    write_json(workdir / TEST_METRICS_FILE, report)
    write_json(done_path, {'step': step})
  latest_mngr.close()
  best_mngr.close()
  return report


def _flat_config(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """Scalar config fields as 'section.field' -> value, for write_hparams."""
  flat = {}
  for section, sub in config.items():
    if isinstance(sub, ml_collections.ConfigDict):
      for key, value in sub.items():
        if isinstance(value, (int, float, str, bool)):
          flat[f'{section}.{key}'] = value
  return flat

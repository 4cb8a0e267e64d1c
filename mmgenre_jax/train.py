"""Trains and evaluates ONE network (one pipeline stage) of the paper.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.data.shard_dir=runs/data/shards

A shard network's input modality follows config.model.name
(data_sources.MODEL_INPUTS); fusion and alignment
(data_sources.REPRESENTATION_MODELS) train on the representations
extracted by earlier stages, named by config.data.inputs (docs/workdirs.md
§2; mmgenre_jax/representations.py joins them). Each
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
import importlib
import json
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from absl import logging
from clu import metric_writers
from clu import metrics as clu_metrics
from clu import periodic_actions
from etils import epath
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from input_pipeline import fileio
from input_pipeline import pipeline
from mmgenre_jax import data_sources
from mmgenre_jax import losses
from mmgenre_jax import metrics
from mmgenre_jax import models
from mmgenre_jax import representations
from mmgenre_jax import sharding
from mmgenre_jax import targets
from mmgenre_jax.models import fusion as fusion_lib

# The alignment towers (Sec 3.4): config.data.inputs must name the audio
# input AUDIO_INPUT; the other one feeds the visual tower. Extraction writes
# the embeddings as these representation names.
AUDIO_INPUT = 'audio'
ALIGNMENT_OUTPUTS = {'audio': 'mm_audio', 'visual': 'mm_visual'}
# Negatives of the alignment validation / test loss come from this fixed key
# (folded with the batch index), so every evaluation of a checkpoint draws
# the same ones.
EVAL_NEGATIVES_SEED = 0
# Metric keys of results.json (README, "Results"); None in an alignment
# report, which has no label scores.
REPORT_KEYS = ('roc_auc', 'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5',
               'precision', 'recall', 'macro_f1')
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
# Log training metrics every this many steps when config.train has no
# log_every_steps.
DEFAULT_LOG_EVERY_STEPS = 50


class TrainState(train_state.TrainState):
  """Flax TrainState plus the BatchNorm statistics of ResNet ({} otherwise)."""
  batch_stats: Any = None


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
  """Training loss over real rows.

  The parameter norm is logged beside it (l2_params) but computed at log
  steps only, outside the train step: global norms inside the step cost as
  much as the step itself for the 25M-parameter text MLP on CPU
  (BENCHMARKS.md), and a norm of the update would keep the old parameters
  alive beside the donated state.
  """
  loss: clu_metrics.Average.from_output('loss')


# ---------------------------------------------------------------- config


def alignment_input_names(config: ml_collections.ConfigDict
                          ) -> Tuple[str, str]:
  """(audio input, visual input) names of an alignment stage."""
  names = list(config.data.get('inputs') or {})
  if len(names) != 2 or AUDIO_INPUT not in names:
    raise ValueError(
        f'config.data.inputs={names} for model alignment: give exactly two '
        f'inputs, {AUDIO_INPUT!r} (the audio tower) and the visual one '
        "(e.g. 'image'), each mapped to the stage workdir that extracted it.")
  return AUDIO_INPUT, next(n for n in names if n != AUDIO_INPUT)


def input_keys(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """Batch keys fed to the network, in its positional-argument order."""
  name = config.model.name
  if name == 'fusion':
    return tuple(data_sources.INPUT_PREFIX + m for m in
                 fusion_lib.ordered_modalities(config.model.modalities))
  if name == 'alignment':
    return tuple(data_sources.INPUT_PREFIX + n
                 for n in alignment_input_names(config))
  return (data_sources.input_spec(config)[1],)


def model_args(batch: Mapping[str, Any], keys: Tuple[str, ...],
               model_name: str) -> Tuple[Any, ...]:
  """The positional arguments of model.apply for a batch."""
  if model_name == 'fusion':
    return ({k[len(data_sources.INPUT_PREFIX):]: batch[k] for k in keys},)
  return tuple(batch[k] for k in keys)


def representation_names(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """Names of the representations a stage extracts (docs/workdirs.md §1)."""
  if config.model.name == 'fusion':
    return ('fusion',)
  if config.model.name == 'alignment':
    return tuple(ALIGNMENT_OUTPUTS.values())
  return (data_sources.input_spec(config)[0],)


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
    raise ValueError(
        f'config.model.{field}={current} but the shards in '
        f'{config.data.shard_dir} have {what} {value}; set '
        f'--config.model.{field}={value} (or leave it linked to config.data).')


def _check_outputs(config) -> None:
  target = config.model.target
  expected_outputs = (config.data.factor_dim if target == 'cosine'
                      else config.data.num_labels)
  if int(config.model.num_outputs) != int(expected_outputs):
    raise ValueError(
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
    manifest: pipeline.load_manifest(config.data.shard_dir).

  Returns:
    The filled-in, unlocked copy.
  """
  config = copy.deepcopy(config)
  config.unlock()
  modality, _ = data_sources.input_spec(config)
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
  _check_outputs(config)
  return config


def _set_model_dim(config, field: str, value: int, what: str) -> None:
  current = config.model.get(field)
  if current is not None and int(current) != int(value):
    logging.warning('config.model.%s=%s but the extracted %s has %d '
                    'dimensions; using %d.', field, current, what, value,
                    value)
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
  if config.model.name == 'alignment':
    audio_name, visual_name = alignment_input_names(config)
    _set_model_dim(config, 'audio_dim', dims[audio_name], audio_name)
    _set_model_dim(config, 'visual_dim', dims[visual_name], visual_name)
    return config
  modalities = fusion_lib.ordered_modalities(config.model.modalities)
  missing = [m for m in modalities if m not in dims]
  if missing:
    raise ValueError(
        f'config.model.modalities={modalities} but config.data.inputs has no '
        f'{missing} (it has {sorted(dims)}); add e.g. '
        f'--config.data.inputs.{missing[0]}=<stage workdir>.')
  old = config.model.get('input_dims')
  new = {m: dims[m] for m in modalities}
  if old is not None and dict(old) != new:
    logging.warning('config.model.input_dims=%s differs from the extracted '
                    'representations %s; using the latter.', dict(old), new)
  config.model.input_dims = ml_collections.ConfigDict(new)
  target = config.model.target
  label_type = 'multi_hot' if labels.ndim == 2 else 'index'
  if label_type not in TARGET_LABEL_TYPES[target]:
    raise ValueError(
        f'config.model.target={target!r} needs {TARGET_LABEL_TYPES[target]} '
        f'labels but the inputs {sorted(dims)} hold {label_type!r} labels; '
        'pick a matching target config.')
  _check_outputs(config)
  return config


# ---------------------------------------------------------------- targets


def _representation_label_matrix(
    config, source: data_sources.RepresentationSource
) -> Tuple[List[str], np.ndarray, List[str]]:
  """(item ids, binary label matrix, label names) of the joined train + val
  rows of a fusion stage."""
  num_labels = int(config.data.num_labels)
  ids, rows, names = [], [], None
  for split in targets.FACTORIZE_SPLITS:
    joined = source.split(split)
    labels = joined.labels
    if labels.ndim == 1:
      labels = np.eye(num_labels, dtype=np.float32)[labels.astype(np.int64)]
    ids += joined.ids.tolist()
    rows.append(np.asarray(labels, np.float32))
    names = names or joined.label_names
  names = names or [str(i) for i in range(num_labels)]
  return ids, np.concatenate(rows), names


def compute_label_factors(config: ml_collections.ConfigDict, workdir,
                          source=None) -> np.ndarray:
  """PPMI-SVD label factors C_d of the train + val items (SPEC §3).

  Shard networks factorise the train + val albums of the shards; fusion
  stages the labels of the joined train + val rows of their inputs. Also
  writes workdir/label_factors.npy, labels.tsv, item_factors.npy and
  items.tsv (targets.write_factors), which evaluation reads back.

  Returns:
    C_d, float32 [L, d].
  """
  if data_sources.is_representation_model(config):
    source = source or data_sources.make_source(config)
    items, matrix, names = _representation_label_matrix(config, source)
  else:
    modality, _ = data_sources.input_spec(config)
    names = pipeline.load_manifest(config.data.shard_dir)['labels']
    items, matrix = data_sources.read_album_labels(
        config.data.shard_dir, modality, targets.FACTORIZE_SPLITS)
  result = targets.factorize(matrix, int(config.data.factor_dim))
  if jax.process_index() == 0:
    targets.write_factors(workdir, result, names, items)
  return result.label_factors.astype(np.float32)


def load_label_factors(config: ml_collections.ConfigDict,
                       workdir) -> Optional[np.ndarray]:
  """C_d saved by training (COSINE), None for the other targets."""
  if config.model.name == 'alignment' or config.model.target != 'cosine':
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


def create_optimizer(config: ml_collections.ConfigDict,
                     steps_per_epoch: int = 1
                     ) -> optax.GradientTransformation:
  """The optimizer of config.train.

  'adam': SPEC §4 [code], Adam with its default parameters. 'sgd': the
  image network's SGD with Nesterov momentum (SPEC §4 [code]). Both add
  config.train.weight_decay * params to the gradient first (as torch's
  `weight_decay`) when it is > 0, and multiply the learning rate by
  config.train.lr_decay_factor every config.train.lr_decay_epochs epochs
  when that is > 0 (a step schedule).

  Args:
    config: the prepared config.
    steps_per_epoch: optimisation steps per epoch (sizes the schedule).
  """
  train_config = config.train
  name = train_config.get('optimizer', 'adam')
  lr = float(train_config.learning_rate)
  decay_epochs = int(train_config.get('lr_decay_epochs') or 0)
  if decay_epochs > 0:
    lr = optax.exponential_decay(
        lr, transition_steps=decay_epochs * max(1, int(steps_per_epoch)),
        decay_rate=float(train_config.get('lr_decay_factor', 0.1)),
        staircase=True)
  if name == 'adam':
    tx = optax.adam(lr)
  elif name == 'sgd':
    tx = optax.sgd(lr, momentum=float(train_config.get('momentum', 0.9)),
                   nesterov=True)
  else:
    raise ValueError(f'Unknown config.train.optimizer {name!r}; use adam or '
                     'sgd.')
  weight_decay = float(train_config.get('weight_decay') or 0.0)
  if weight_decay > 0:
    tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
  return tx


def create_train_state(config: ml_collections.ConfigDict, model, rng,
                       mesh, steps_per_epoch: int = 1) -> TrainState:
  """Initialises parameters and optimizer state, already replicated.

  Args:
    config: the prepared config.
    model: models.create_model(config.model).
    rng: PRNG key of the initialisation.
    mesh: sharding.create_mesh().
    steps_per_epoch: sizes the learning-rate schedule.

  Returns:
    A TrainState whose arrays live on every device of the mesh.
  """
  tx = create_optimizer(config, steps_per_epoch)
  inputs = models.dummy_inputs(config.model)

  def init(rng):
    variables = model.init({'params': rng}, *inputs, train=False)
    return TrainState.create(
        apply_fn=model.apply, params=variables['params'], tx=tx,
        batch_stats=variables.get('batch_stats', {}))

  # We jit init so that the arrays are created replicated on the mesh, not
  # on device 0 and then copied.
  return jax.jit(init, out_shardings=sharding.replicated_sharding(mesh))(rng)


def load_pretrained(config: ml_collections.ConfigDict, state: TrainState,
                    mesh) -> TrainState:
  """Replaces the ResNet body with config.model.pretrained (torchvision .npz).

  The output head keeps its fresh initialisation (models.image
  load_torchvision_npz); a no-op when config.model.pretrained is empty.
  """
  path = config.model.get('pretrained') or ''
  if not path:
    return state
  if config.model.name != 'resnet':
    raise ValueError(f'config.model.pretrained={path!r} is for ResNet '
                     f'weights; model {config.model.name!r} takes none.')
  image = importlib.import_module('mmgenre_jax.models.image')
  variables = jax.device_get({'params': state.params,
                              'batch_stats': state.batch_stats})
  loaded = image.load_torchvision_npz(path, variables)
  loaded = jax.device_put(loaded, sharding.replicated_sharding(mesh))
  logging.info('Loaded pretrained ResNet weights from %s.', path)
  return state.replace(params=loaded['params'],
                       batch_stats=loaded['batch_stats'])


def abstract_train_state(config: ml_collections.ConfigDict, model, mesh):
  """Shapes, dtypes and shardings of create_train_state, nothing allocated."""
  return jax.eval_shape(
      lambda: create_train_state(config, model, jax.random.key(0), mesh))


def num_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


# ------------------------------------------------------------------ steps


def _apply(state, params, args, *, train: bool, rngs=None):
  """Runs the network on positional `args`; returns (outputs, batch_stats)."""
  variables = {'params': params}
  if state.batch_stats:
    variables['batch_stats'] = state.batch_stats
    if train:
      outputs, updates = state.apply_fn(variables, *args, train=True,
                                        rngs=rngs, mutable=['batch_stats'])
      return outputs, updates['batch_stats']
  outputs = state.apply_fn(variables, *args, train=train, rngs=rngs)
  return outputs, state.batch_stats


def _step_metrics(per_row, mask) -> TrainMetrics:
  return TrainMetrics.single_from_model_output(loss=per_row, mask=mask)


def train_step(state: TrainState, batch: Mapping[str, jax.Array],
               label_factors: Optional[jax.Array], rng: jax.Array, *,
               keys: Tuple[str, ...], model_name: str, target: str,
               num_labels: int):
  """One optimisation step on a global batch.

  Args:
    state: the replicated TrainState.
    batch: the inputs [B, ...] under `keys`, 'labels' ([B, L] or [B]) and
      'mask' [B], sharded over the data axis.
    label_factors: C_d [L, d] (cosine) or None.
    rng: the dropout key of the run; folded with the step, so a resumed run
      draws the same masks.
    keys: input_keys(config).
    model_name: config.model.name.
    target: 'cosine', 'logistic' or 'softmax'.
    num_labels: L.

  Returns:
    (new state, TrainMetrics of this batch).
  """
  dropout_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  args = model_args(batch, keys, model_name)
  item_target = item_targets(batch['labels'], label_factors, target,
                             num_labels)
  loss_per_row = losses.get_loss(target, per_row=True)

  def loss_fn(params):
    outputs, batch_stats = _apply(state, params, args, train=True,
                                  rngs={'dropout': dropout_rng})
    per_row = loss_per_row(outputs['output'].astype(jnp.float32),
                           item_target, mask)
    return losses.masked_mean(per_row, mask), (per_row, batch_stats)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, (per_row, batch_stats)), grads = grad_fn(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return new_state, _step_metrics(per_row, mask)


def eval_step(state: TrainState, batch: Mapping[str, jax.Array],
              label_factors: Optional[jax.Array], *, keys: Tuple[str, ...],
              model_name: str, target: str,
              num_labels: int) -> Dict[str, jax.Array]:
  """Per-row loss, label scores and representations of a batch.

  Returns:
    loss [B] (0 on padding), scores [B, L] (targets.scores_from_output),
    labels and mask as given, representation [B, R], and the encoded ids
    and album_ids when the batch has them.
  """
  args = model_args(batch, keys, model_name)
  outputs, _ = _apply(state, state.params, args, train=False)
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
  out = {'loss': per_row,
         'scores': targets.scores_from_output(output, target, label_factors),
         'labels': labels, 'mask': batch['mask'],
         'representation': outputs['representation']}
  out.update({k: batch[k] for k in ('ids', 'album_ids') if k in batch})
  return out


def _alignment_negatives(rng: jax.Array, mask: jax.Array):
  """The two negative draws of losses.alignment_loss_per_row(rng=...)."""
  rng_a, rng_v = jax.random.split(rng)
  return (losses.sample_negatives(rng_a, mask),
          losses.sample_negatives(rng_v, mask))


def alignment_train_step(state: TrainState, batch: Mapping[str, jax.Array],
                         label_factors: None, rng: jax.Array, *,
                         keys: Tuple[str, str], margin: float):
  """One step of the alignment space (Sec 3.4): negatives are other rows of
  the same global batch, drawn afresh every step (rng folded with it)."""
  del label_factors  # Unused: the alignment loss has no label targets.
  negatives_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  args = model_args(batch, keys, 'alignment')

  def loss_fn(params):
    outputs, _ = _apply(state, params, args, train=True)
    per_row = losses.alignment_loss_per_row(
        outputs['audio'].astype(jnp.float32),
        outputs['visual'].astype(jnp.float32), mask, rng=negatives_rng,
        margin=margin)
    return losses.masked_mean(per_row, mask), per_row

  (_, per_row), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads)
  return new_state, _step_metrics(per_row, mask)


def alignment_eval_step(state: TrainState, batch: Mapping[str, jax.Array],
                        batch_index: jax.Array, *, keys: Tuple[str, str],
                        margin: float) -> Dict[str, jax.Array]:
  """Alignment loss and true-pair / negative cosines of a batch.

  Negatives come from a fixed key folded with the batch index, so every
  evaluation of a checkpoint draws the same ones.

  Returns:
    loss [B], cos_true [B] = cos(e_a(a), e_v(v)), cos_negative [B, 2]
    (cos(e_a(r_a), e_v(v)), cos(e_a(a), e_v(r_v))), negative_mask [B, 2]
    (1 where the negative is another real row), mask [B].
  """
  mask = batch['mask']
  args = model_args(batch, keys, 'alignment')
  outputs, _ = _apply(state, state.params, args, train=False)
  e_a = outputs['audio'].astype(jnp.float32)
  e_v = outputs['visual'].astype(jnp.float32)
  rng = jax.random.fold_in(jax.random.key(EVAL_NEGATIVES_SEED), batch_index)
  negatives_a, negatives_v = _alignment_negatives(rng, mask)
  per_row = losses.alignment_loss_per_row(
      e_a, e_v, mask, negatives_a=negatives_a, negatives_v=negatives_v,
      margin=margin)
  rows = jnp.arange(mask.shape[0])
  real = mask > 0

  def valid(negatives):
    return (real & real[negatives] & (negatives != rows)).astype(jnp.float32)

  return {'loss': per_row, 'mask': mask,
          'cos_true': losses.cosine_similarity(e_a, e_v),
          'cos_negative': jnp.stack(
              [losses.cosine_similarity(e_a[negatives_a], e_v),
               losses.cosine_similarity(e_a, e_v[negatives_v])], axis=-1),
          'negative_mask': jnp.stack([valid(negatives_a),
                                      valid(negatives_v)], axis=-1)}


class Steps:
  """The jitted steps of one config on one mesh, and the data they run on.

  Attributes:
    mesh: the device mesh.
    source: data_sources.ShardSource or RepresentationSource of the config.
    keys: input_keys(config).
    train: (state, batch, label_factors, rng) -> (state, TrainMetrics).
    eval: (state, batch, aux) -> per-row outputs, replicated; aux is the
      label factors (classifiers) or the batch index (alignment).
  """

  def __init__(self, config: ml_collections.ConfigDict, mesh, source=None):
    self.mesh = mesh
    self.source = (source if source is not None
                   else data_sources.make_source(config))
    self.keys = input_keys(config)
    self.model_name = config.model.name
    repl = sharding.replicated_sharding(mesh)
    if self.model_name == 'alignment':
      statics = dict(keys=self.keys, margin=float(
          config.model.get('margin', losses.ALIGNMENT_MARGIN)))
      train_fn, eval_fn = alignment_train_step, alignment_eval_step
    else:
      statics = dict(keys=self.keys, model_name=self.model_name,
                     target=config.model.target,
                     num_labels=int(config.data.num_labels))
      train_fn, eval_fn = train_step, eval_step
    # The state is donated: its buffers are reused for the new state.
    self.train = jax.jit(functools.partial(train_fn, **statics),
                         out_shardings=(repl, repl), donate_argnums=(0,))
    # Replicated outputs: every process can read the whole batch's scores
    # (multi-host) and collect whole-split metrics.
    self.eval = jax.jit(functools.partial(eval_fn, **statics),
                        out_shardings=repl)
    # The l2 norm of the parameters, logged at log steps (TrainMetrics).
    self.param_norm = jax.jit(optax.global_norm)


# ------------------------------------------------------------- evaluation


def _evaluate_alignment(steps: Steps, state: TrainState, split: str,
                        batch_size: int) -> Dict[str, Any]:
  """Alignment loss and mean cosines of true pairs and negatives."""
  source = steps.source
  columns = {k: [] for k in ('loss', 'mask', 'cos_true', 'cos_negative',
                             'negative_mask')}
  for index, batch in enumerate(source.batches(split, batch_size)):
    out = jax.device_get(steps.eval(
        state, data_sources.model_batch(batch, steps.keys, steps.mesh),
        np.int32(index)))
    for key, values in columns.items():
      values.append(np.asarray(out[key]))
  values = {k: np.concatenate(v) for k, v in columns.items()}
  real = values['mask'] > 0
  if not real.any():
    raise ValueError(f'The {split} split of {source.inputs} is empty; '
                     'nothing to evaluate.')
  negatives = values['negative_mask'] > 0
  report = {k: None for k in REPORT_KEYS}
  report.update(
      loss=float(np.mean(values['loss'][real], dtype=np.float64)),
      cos_true=float(np.mean(values['cos_true'][real], dtype=np.float64)),
      cos_negative=(float(np.mean(values['cos_negative'][negatives],
                                  dtype=np.float64))
                    if negatives.any() else None),
      num_items=int(real.sum()))
  return report


def evaluate_split(steps: Steps, state: TrainState, config, split: str,
                   label_factors, *,
                   collect_representations: bool = False) -> Dict[str, Any]:
  """Loss and whole-split metrics (SPEC §5) of `state` on a split.

  Audio networks are tested (split 'test') and extracted on whole tracks:
  the outputs of every window are averaged per track and, on MuMu, the
  tracks' per album (data_sources.ShardSource.eval_kind); the loss is the
  mean over the windows (or patches) evaluated.

  Args:
    steps: the jitted steps.
    state: the (replicated) state to evaluate.
    config: the prepared config.
    split: 'train', 'val' or 'test'.
    label_factors: C_d on the devices (cosine) or None.
    collect_representations: also return the rows' ids, album_ids,
      representation, scores and labels (after averaging) under '_extract'.

  Returns:
    metrics.multilabel_report / singlelabel_report keys plus 'loss'
    (alignment: loss, cos_true, cos_negative, num_items).
  """
  batch_size = sharding.per_process_batch_size(int(config.eval.batch_size),
                                               steps.mesh)
  if config.model.name == 'alignment':
    return _evaluate_alignment(steps, state, split, batch_size)
  source = steps.source
  kind, by_track, by_album = source.eval_kind(split, collect_representations)
  keys = ['loss', 'scores', 'labels', 'mask', 'ids', 'album_ids']
  if collect_representations:
    keys.append('representation')
  columns = {k: [] for k in keys}
  for batch in source.batches(split, batch_size, kind=kind):
    out = jax.device_get(steps.eval(
        state, data_sources.model_batch(batch, steps.keys, steps.mesh,
                                        with_ids=True),
        label_factors))
    for key in keys:
      columns[key].append(np.asarray(out[key]))
  values = {k: np.concatenate(v) for k, v in columns.items()}
  real = values.pop('mask') > 0
  if not real.any():
    raise ValueError(f'The {split} split of {config.model.name} '
                     f'({config.data.get("shard_dir") or "inputs"}) is '
                     'empty; nothing to evaluate.')
  values = {k: v[real] for k, v in values.items()}
  loss = float(np.mean(values.pop('loss'), dtype=np.float64))
  values['ids'] = data_sources.decode_ids(values['ids'])
  values['album_ids'] = data_sources.decode_ids(values['album_ids'])
  averaged = ['scores'] + (['representation'] if collect_representations
                           else [])
  for group_key, do in (('ids', by_track), ('album_ids', by_album)):
    if not do:
      continue
    groups, first, means = representations.group_mean(
        values[group_key], *[values[k] for k in averaged])
    values = {k: v[first] for k, v in values.items()}
    values.update(zip(averaged, means))
    values['ids'] = groups
  if config.model.target == 'softmax':
    report = metrics.singlelabel_report(values['scores'], values['labels'])
  else:
    report = metrics.multilabel_report(values['scores'], values['labels'])
  report['loss'] = loss
  if by_track or by_album:
    logging.info('%s %s: %s rows averaged per %s.', config.model.name, split,
                 kind, 'album' if by_album else 'track')
  if collect_representations:
    report['_extract'] = values
  return report


# ------------------------------------------------------------ checkpoints


def checkpoint_managers(workdir, *, read_only: bool = False
                        ) -> Tuple[ocp.CheckpointManager,
                                   ocp.CheckpointManager]:
  """(latest, best): one checkpoint each, under workdir/checkpoints/.

  Orbax needs an absolute directory: a local workdir is made absolute, a URL
  (gs://bucket/...) is one already and passes through unchanged.
  """
  root = epath.Path(workdir)
  if fileio.is_local(root):
    root = root.absolute()
  root = root / CHECKPOINT_DIR

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


def write_json(path, value: Any) -> None:
  """Writes JSON atomically (input_pipeline.fileio: local path or URL)."""
  fileio.write_json_atomic(path, value, indent=2, sort_keys=True)


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
    (prepared config, mesh, model, Steps); Steps.source holds the data.
  """
  if data_sources.is_representation_model(config):
    source = data_sources.RepresentationSource(config)
    config = prepare_representation_config(config, source.split('train'))
  else:
    if not config.data.get('shard_dir'):
      raise ValueError('config.data.shard_dir is empty; set '
                       '--config.data.shard_dir to the --out directory of '
                       '`mmgenre prepare`.')
    manifest = pipeline.load_manifest(config.data.shard_dir)
    config = prepare_config(config, manifest)
    source = data_sources.ShardSource(config)
  mesh = sharding.create_mesh()
  # Clear errors before anything is compiled.
  sharding.per_process_batch_size(int(config.train.batch_size), mesh)
  sharding.per_process_batch_size(int(config.eval.batch_size), mesh)
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  model = models.create_model(config.model)
  return config, mesh, model, Steps(config, mesh, source)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Trains one network, keeps the best checkpoint, evaluates it on test.

  Args:
    config: an experiment config (configs/*.py): a shard network with
      config.data.shard_dir pointing to prepared shards, or a fusion /
      alignment stage with config.data.inputs naming the workdirs whose
      representations it reads (docs/workdirs.md §2).
    workdir: where checkpoints, TensorBoard events, label factors and
      test_metrics.json go: a local directory or a gs://bucket/... URL
      (docs/tpu_pod.md §4). An existing run there is resumed.

  Returns:
    The test metrics (also in workdir/test_metrics.json): roc_auc, pr_auc,
    adiv@1/3/5, precision, recall, macro_f1, ..., loss, params (and its old
    name num_params), epoch_s (mean seconds per training epoch), step,
    best_epoch, train_steps.
  """
  workdir = epath.Path(workdir)
  ##############################################################################
  # Set up.
  ##############################################################################
  config, mesh, model, steps = setup(config, workdir)
  source = steps.source
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
  if config.model.name != 'alignment' and config.model.target == 'cosine':
    label_factors = jax.device_put(
        compute_label_factors(config, workdir, source),
        sharding.replicated_sharding(mesh))

  ##############################################################################
  # Create or restore the train state.
  ##############################################################################
  steps_per_epoch = source.num_batches('train', batch_size)
  rng = jax.random.key(int(config.train.seed))
  init_rng, dropout_rng = jax.random.split(rng)
  state = create_train_state(config, model, init_rng, mesh, steps_per_epoch)
  params_count = num_params(state.params)
  logging.info('%s: %d parameters', config.model.name, params_count)
  latest_mngr, best_mngr = checkpoint_managers(workdir)
  meta = dict(_META_DEFAULTS)
  if latest_mngr.latest_step() is not None:
    state, meta = restore_checkpoint(latest_mngr, latest_mngr.latest_step(),
                                     state)
    logging.info('Resumed from step %d (epoch %d, batch %d).',
                 int(state.step), meta['epoch'], meta['batches_in_epoch'])
  else:
    state = load_pretrained(config, state, mesh)

  ##############################################################################
  # Train loop.
  ##############################################################################
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
      for batch in source.batches(
          'train', batch_size,
          seed=data_sources.epoch_seed(config.train.seed, epoch),
          skip=meta['batches_in_epoch']):
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, update = steps.train(
              state, data_sources.model_batch(batch, steps.keys, mesh),
              label_factors, dropout_rng)
        step += 1
        meta['batches_in_epoch'] += 1
        train_metrics = (update if train_metrics is None
                         else train_metrics.merge(update))
        report_progress(step)
        is_epoch_end = meta['batches_in_epoch'] >= steps_per_epoch
        if step % log_every == 0 or is_epoch_end:
          values = jax.device_get(train_metrics.compute())
          values['l2_params'] = float(steps.param_norm(state.params))
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
    epoch_s = (meta['train_seconds'] * steps_per_epoch /
               meta['timed_batches'] if meta['timed_batches'] else None)
    report.update(
        epoch_s=epoch_s, params=params_count, num_params=params_count,
        step=int(best_state.step), best_epoch=int(best_meta['best_epoch']),
        train_steps=step)
    writer.write_scalars(step, _prefixed(report, 'test'))
  logging.info('test: %s', metrics.format_report(report))
  if is_chief:
    write_json(workdir / TEST_METRICS_FILE, report)
    write_json(done_path, {'step': step, 'params': params_count,
                           'epoch_s': epoch_s})
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

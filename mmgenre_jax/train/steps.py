"""The jitted train and eval steps of a stage, over a device mesh.

Pure functions of (state, batch, ...) jitted once per config by `Steps`:
jax.jit over the 1-D 'data' mesh of mmgenre_jax.sharding; the batch is split
over devices, parameters and optimizer state are replicated (the same code on
1 CPU, 8 GPUs or a multi-host pod).
"""

import functools
from typing import Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmgenre_jax.data import sources as data_sources
from mmgenre_jax.core import losses
from mmgenre_jax import sharding
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax.models import registry
from mmgenre_jax.models import specs
from mmgenre_jax.train.train_state import TrainMetrics
from mmgenre_jax.train.train_state import TrainState

# Negatives of the alignment validation / test loss come from this fixed key
# (folded with the batch index), so every evaluation of a checkpoint draws
# the same ones.
EVAL_NEGATIVES_SEED = 0


def item_targets(labels: jax.Array, label_factors: Optional[jax.Array],
                 target: str, num_labels: int) -> jax.Array:
  """What the loss compares the output with.

  Args:
    labels: multi-hot float [B, L] or class ids int [B].
    label_factors: C_d [L, d] (cosine only).
    target: ops.TARGETS.
    num_labels: L.

  Returns:
    cosine: F_d = normalize(M C_d) [B, d]; otherwise `labels` unchanged.
  """
  if target != 'cosine':
    return labels
  if labels.ndim == 1:
    labels = jax.nn.one_hot(labels, num_labels)
  return ppmi_svd.item_factors(labels, label_factors)


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
    keys: registry.input_keys(config).
    model_name: config.model.name.
    target: 'cosine', 'logistic' or 'softmax'.
    num_labels: L.

  Returns:
    (new state, TrainMetrics of this batch).
  """
  dropout_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  args = registry.model_args(batch, keys, model_name)
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
    loss [B] (0 on padding), scores [B, L] (ppmi_svd.scores_from_output),
    labels and mask as given, representation [B, R], and the encoded ids
    and album_ids when the batch has them.
  """
  args = registry.model_args(batch, keys, model_name)
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
         'scores': ppmi_svd.scores_from_output(output, target, label_factors),
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
  args = registry.model_args(batch, keys, 'alignment')

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
  args = registry.model_args(batch, keys, 'alignment')
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
    keys: registry.input_keys(config).
    train: (state, batch, label_factors, rng) -> (state, TrainMetrics).
    eval: (state, batch, aux) -> per-row outputs, replicated; aux is the
      label factors (classifiers) or the batch index (alignment).
  """

  def __init__(self, config: ml_collections.ConfigDict, mesh, source=None):
    self.mesh = mesh
    self.source = (source if source is not None
                   else data_sources.make_source(config))
    self.keys = registry.input_keys(config)
    self.model_name = config.model.name
    repl = sharding.replicated_sharding(mesh)
    if self.model_name == 'alignment':
      statics = dict(keys=self.keys, margin=float(
          config.model.get('margin', specs.ALIGNMENT_MARGIN)))
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

"""Alignment: the task of the multimodal space (paper Sec 3.4).

Two towers map an audio representation and a visual one into one cosine
space: L = (1 - cos(e_a(a), e_v(v))) + max(0, cos(e_a(r_a), e_v(v)) - m) +
max(0, cos(e_a(a), e_v(r_v)) - m), with negatives r drawn among the other
rows of the same global batch (in-batch negatives, docs/fidelity.md). There
are no label scores: a split is evaluated by its loss and the mean cosines
of true pairs and of negatives, and extraction writes MM_AUDIO and MM_VISUAL,
each tower applied to every row of its own input (at test time MM_AUDIO
needs only the audio, Sec 6.2).
"""

import functools
from typing import Any, Dict, Mapping, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmgenre_jax import sharding
from mmgenre_jax.core import cosine
from mmgenre_jax.core import losses
from mmgenre_jax.data import device_batch
from mmgenre_jax.data import representations
from mmgenre_jax.data import sources
from mmgenre_jax.models import registry
from mmgenre_jax.models import specs
from mmgenre_jax.tasks import base

# Negatives of the validation / test loss come from this fixed key (folded
# with the batch index), so every evaluation of a checkpoint draws the same
# ones.
EVAL_NEGATIVES_SEED = 0


def _negatives(rng: jax.Array, mask: jax.Array):
  """The two negative draws of losses.alignment_loss_per_row(rng=...)."""
  rng_a, rng_v = jax.random.split(rng)
  return (losses.sample_negatives(rng_a, mask),
          losses.sample_negatives(rng_v, mask))


def train_step(state: base.TrainState, batch: Mapping[str, jax.Array],
               rng: jax.Array, *, keys: Tuple[str, str], margin: float):
  """One step of the alignment space: negatives are other rows of the same
  global batch, drawn afresh every step (rng folded with it)."""
  negatives_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  args = tuple(batch[k] for k in keys)

  def loss_fn(params):
    outputs, _ = base.apply_model(state, params, args, train=True)
    per_row = losses.alignment_loss_per_row(
        outputs['audio'].astype(jnp.float32),
        outputs['visual'].astype(jnp.float32), mask, rng=negatives_rng,
        margin=margin)
    return losses.masked_mean(per_row, mask), per_row

  (_, per_row), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads)
  return new_state, base.step_metrics(per_row, mask)


def eval_step(state: base.TrainState, batch: Mapping[str, jax.Array],
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
  args = tuple(batch[k] for k in keys)
  outputs, _ = base.apply_model(state, state.params, args, train=False)
  e_a = outputs['audio'].astype(jnp.float32)
  e_v = outputs['visual'].astype(jnp.float32)
  rng = jax.random.fold_in(jax.random.key(EVAL_NEGATIVES_SEED), batch_index)
  negatives_a, negatives_v = _negatives(rng, mask)
  per_row = losses.alignment_loss_per_row(
      e_a, e_v, mask, negatives_a=negatives_a, negatives_v=negatives_v,
      margin=margin)
  rows = jnp.arange(mask.shape[0])
  real = mask > 0

  def valid(negatives):
    return (real & real[negatives] & (negatives != rows)).astype(jnp.float32)

  return {'loss': per_row, 'mask': mask,
          'cos_true': cosine.similarity(e_a, e_v),
          'cos_negative': jnp.stack(
              [cosine.similarity(e_a[negatives_a], e_v),
               cosine.similarity(e_a, e_v[negatives_v])], axis=-1),
          'negative_mask': jnp.stack([valid(negatives_a),
                                      valid(negatives_v)], axis=-1)}


def _embed(steps: base.Steps, state: base.TrainState, config, method: str,
           inputs: np.ndarray) -> np.ndarray:
  """One alignment tower on every row of `inputs` [N, D] -> [N, E]."""
  mesh = steps.mesh

  def embed(params, x):
    return state.apply_fn({'params': params}, x, method=method)

  fn = jax.jit(embed, out_shardings=sharding.replicated_sharding(mesh))
  batch_size = sharding.per_process_batch_size(int(config.eval.batch_size),
                                               mesh)
  arrays = {'x': np.asarray(inputs, np.float32),
            # Row numbers travel with the rows (-1 on padding), so the
            # replicated outputs can be put back in input order.
            'row': np.arange(len(inputs), dtype=np.int32) + 1}
  rows, outputs = [], []
  for batch in sources.array_batches(arrays, batch_size):
    glob = sharding.to_global_batch(batch, mesh)
    out, row = jax.device_get((fn(state.params, glob['x']), glob['row']))
    outputs.append(np.asarray(out))
    rows.append(np.asarray(row) - 1)
  rows, outputs = np.concatenate(rows), np.concatenate(outputs)
  real = rows >= 0
  result = np.zeros((len(inputs), outputs.shape[1]), np.float32)
  result[rows[real]] = outputs[real]
  return result


class Alignment(base.Task):
  """The multimodal space (Network.task ALIGNMENT)."""
  name = registry.ALIGNMENT

  def build_steps(self, config, facts, mesh, source,
                  label_factors) -> base.Steps:
    del facts, label_factors  # Unused: no labels are learned.
    keys = registry.input_keys(config)
    statics = dict(keys=keys, margin=float(
        config.model.get('margin', specs.ALIGNMENT_MARGIN)))
    train, evaluate = base.jit_steps(
        functools.partial(train_step, **statics),
        functools.partial(eval_step, **statics), mesh)
    return base.Steps(
        mesh=mesh, source=source, keys=keys, train=train,
        eval=lambda state, batch, index: evaluate(state, batch,
                                                  np.int32(index)),
        param_norm=jax.jit(optax.global_norm))

  def evaluate_split(self, steps, state, config, split, *,
                     collect=False) -> base.SplitResult:
    """Alignment loss and mean cosines of true pairs and negatives."""
    del collect  # Unused: no rows to keep (extract() embeds the inputs).
    batch_size = sharding.per_process_batch_size(
        int(config.eval.batch_size), steps.mesh)
    source = steps.source
    outputs = (jax.device_get(steps.eval(
        state, device_batch.model_batch(batch, steps.keys, steps.mesh),
        index)) for index, batch in enumerate(source.batches(split,
                                                             batch_size)))
    # Padding rows have negative_mask 0, so dropping them keeps every
    # negative.
    values = base.real_rows(outputs, ('loss', 'cos_true', 'cos_negative',
                                      'negative_mask'))
    if not len(values['loss']):
      raise ValueError(f'The {split} split of {source.inputs} is empty; '
                       'nothing to evaluate.')
    negatives = values['negative_mask'] > 0
    metrics: Dict[str, Any] = {k: None for k in base.REPORT_KEYS}
    metrics.update(
        loss=float(np.mean(values['loss'], dtype=np.float64)),
        cos_true=float(np.mean(values['cos_true'], dtype=np.float64)),
        cos_negative=(float(np.mean(values['cos_negative'][negatives],
                                    dtype=np.float64))
                      if negatives.any() else None),
        num_items=int(len(values['loss'])))
    return base.SplitResult(metrics=metrics)

  def extract(self, steps, state, config,
              split) -> Dict[str, representations.ItemRows]:
    """MM_AUDIO and MM_VISUAL: each tower on every row of its own input.

    At test time MM_AUDIO needs only the audio (Sec 6.2), so the rows are
    those of each input file, not the join used for training.
    """
    found = {}
    names = registry.alignment_input_names(config)
    for (tower, output_name), input_name in zip(
        registry.ALIGNMENT_OUTPUTS.items(), names):
      data = representations.load_representations(
          config.data.inputs[input_name], input_name, split)
      embedded = _embed(steps, state, config, f'embed_{tower}',
                        data['representation'])
      found[output_name] = representations.ItemRows(
          ids=data['ids'], album_ids=data['album_ids'],
          representation=embedded,
          # No label scores: the alignment space is not a classifier.
          scores=np.zeros((len(embedded), 0), np.float32),
          labels=data['labels'],
          label_names=data.get(representations.LABEL_NAMES))
    return found

  def collects_scores(self, steps, split) -> bool:
    del steps, split  # Unused: there are no label scores.
    return False


TASK = Alignment()

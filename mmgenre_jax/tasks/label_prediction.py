"""Label prediction: the task of every network with an output layer of labels.

The audio, text and image networks and the fusion network (paper Sec 3-5)
learn their config.model.target (core/targets.py: LOGISTIC, COSINE or the
single-label softmax) from the labels of their data. Whole splits are
evaluated on the host once their scores are collected (ROC-AUC, PR-AUC,
ADiv@N, precision@k and macro-F1 cannot be averaged batch by batch); audio
networks are tested and extracted on whole tracks (and, on MuMu, albums) by
averaging their windows' outputs (paper Sec 7.3.1; docs/fidelity.md).
"""

import functools
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmgenre_jax import sharding
from mmgenre_jax.core import losses
from mmgenre_jax.core import targets
from mmgenre_jax.data import device_batch
from mmgenre_jax.data import label_matrix
from mmgenre_jax.data import representations
from mmgenre_jax.models import registry
from mmgenre_jax.tasks import base


ModelArgs = Callable[..., Tuple[Any, ...]]


def train_step(state: base.TrainState, batch: Mapping[str, jax.Array],
               label_factors: Optional[jax.Array], rng: jax.Array, *,
               keys: Tuple[str, ...], model_args: ModelArgs,
               target: targets.Target, num_labels: int):
  """One optimisation step on a global batch.

  Args:
    state: the replicated TrainState.
    batch: the inputs [B, ...] under `keys`, 'labels' ([B, L] or [B]) and
      'mask' [B], sharded over the data axis.
    label_factors: C_d [L, d] (COSINE) or None.
    rng: the dropout key of the run; folded with the step, so a resumed run
      draws the same masks.
    keys: registry.input_keys(config).
    model_args: the network's registry.Network.model_args.
    target: the output configuration.
    num_labels: L.

  Returns:
    (new state, TrainMetrics of this batch).
  """
  dropout_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  args = model_args(batch, keys)
  item_target = target.item_targets(batch['labels'], label_factors,
                                    num_labels)

  def loss_fn(params):
    outputs, batch_stats = base.apply_model(state, params, args, train=True,
                                            rngs={'dropout': dropout_rng})
    per_row = target.loss_per_row(outputs['output'].astype(jnp.float32),
                                  item_target, mask)
    return losses.masked_mean(per_row, mask), (per_row, batch_stats)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, (per_row, batch_stats)), grads = grad_fn(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return new_state, base.step_metrics(per_row, mask)


def eval_step(state: base.TrainState, batch: Mapping[str, jax.Array],
              label_factors: Optional[jax.Array], *, keys: Tuple[str, ...],
              model_args: ModelArgs,
              target: targets.Target,
              num_labels: int) -> Dict[str, jax.Array]:
  """Per-row loss, label scores and representations of a batch.

  Returns:
    loss [B] (0 on padding), scores [B, L] (Target.scores), labels as the
    metrics take them (Target.metric_labels), mask, representation [B, R],
    and the encoded ids and album_ids when the batch has them.
  """
  args = model_args(batch, keys)
  outputs, _ = base.apply_model(state, state.params, args, train=False)
  output = outputs['output'].astype(jnp.float32)
  item_target = target.item_targets(batch['labels'], label_factors,
                                    num_labels)
  out = {'loss': target.loss_per_row(output, item_target, batch['mask']),
         'scores': target.scores(output, label_factors),
         'labels': target.metric_labels(batch['labels'], num_labels),
         'mask': batch['mask'],
         'representation': outputs['representation']}
  out.update({k: batch[k] for k in ('ids', 'album_ids') if k in batch})
  return out


def aggregation(by_track: bool, by_album: bool) -> str:
  """What a report's scores are (its 'aggregation' field).

  'album_mean_of_track_scores': a MuMu audio CNN tested per album by
  averaging its tracks' scores, a diagnostic; the paper's AUDIO row (Sec
  7.3.1) is the Sec 4 network on the album-averaged track vectors instead
  (the pipelines' audio_album stage, configs/mumu_fusion.py:audio-<target>).
  'track_mean_of_window_scores': an audio CNN tested per track on its whole-
  track windows. 'items': one prediction per row (tracks, albums, patches).
  """
  if by_album:
    return 'album_mean_of_track_scores'
  return 'track_mean_of_window_scores' if by_track else 'items'


def _averaged(values: Dict[str, np.ndarray], by_track: bool, by_album: bool,
              averaged) -> Dict[str, np.ndarray]:
  """Rows averaged per track, then per album (whole-track prediction)."""
  for group_key, do in (('ids', by_track), ('album_ids', by_album)):
    if not do:
      continue
    groups, first, means = representations.group_mean(
        values[group_key], *[values[k] for k in averaged])
    values = {k: v[first] for k, v in values.items()}
    values.update(zip(averaged, means))
    values['ids'] = groups
  return values


class LabelPrediction(base.Task):
  """Networks whose output layer scores labels (Network.predicts_labels)."""
  name = registry.LABEL_PREDICTION

  def build_steps(self, config, facts, mesh, source,
                  label_factors) -> base.Steps:
    keys = registry.input_keys(config)
    statics = dict(keys=keys,
                   model_args=registry.network(config.model).model_args,
                   target=registry.target(config.model),
                   num_labels=int(facts.num_labels))
    train, evaluate = base.jit_steps(
        functools.partial(train_step, **statics),
        functools.partial(eval_step, **statics), mesh)
    return base.Steps(
        mesh=mesh, source=source, keys=keys,
        train=lambda state, batch, rng: train(state, batch, label_factors,
                                              rng),
        eval=lambda state, batch, index: evaluate(state, batch,
                                                  label_factors),
        param_norm=jax.jit(optax.global_norm))

  def evaluate_split(self, steps, state, config, split, *,
                     collect=False) -> base.SplitResult:
    """Loss and whole-split metrics; audio on whole tracks (and albums).

    Audio networks are tested (split 'test') and extracted on whole tracks:
    the outputs of every window are averaged per track and, on MuMu, the
    tracks' per album (ShardSource.eval_kind); the loss is the mean over the
    windows (or patches) evaluated.

    Returns:
      metrics: Target.split_metrics keys plus 'loss' and 'aggregation'
      (what the scores are: aggregation()); rows (collect=True): the
      averaged rows with their representations.
    """
    batch_size = sharding.per_process_batch_size(
        int(config.eval.batch_size), steps.mesh)
    source = steps.source
    kind, by_track, by_album = source.eval_kind(split, collect)
    keys = ['loss', 'scores', 'labels', 'ids', 'album_ids']
    if collect:
      keys.append('representation')
    outputs = (jax.device_get(steps.eval(
        state, device_batch.model_batch(batch, steps.keys, steps.mesh,
                                        with_ids=True), index))
               for index, batch in enumerate(
                   source.batches(split, batch_size, kind=kind)))
    values = base.real_rows(outputs, keys)
    if not len(values['loss']):
      raise ValueError(f'The {split} split of {config.model.name} '
                       f'({config.data.get("shard_dir") or "inputs"}) is '
                       'empty; nothing to evaluate.')
    loss = float(np.mean(values.pop('loss'), dtype=np.float64))
    values['ids'] = device_batch.decode_ids(values['ids'])
    values['album_ids'] = device_batch.decode_ids(values['album_ids'])
    values = _averaged(values, by_track, by_album,
                       ['scores'] + (['representation'] if collect else []))
    metrics = registry.target(config.model).split_metrics(values['scores'],
                                                          values['labels'])
    metrics['loss'] = loss
    metrics['aggregation'] = aggregation(by_track, by_album)
    if by_track or by_album:
      logging.info('%s %s: %s rows averaged per %s.', config.model.name,
                   split, kind, 'album' if by_album else 'track')
    rows = None
    if collect:
      rows = representations.ItemRows(
          ids=values['ids'], album_ids=values['album_ids'],
          representation=values['representation'], scores=values['scores'],
          labels=values['labels'],
          label_names=label_matrix.label_names(source))
    return base.SplitResult(metrics=metrics, rows=rows)

  def extract(self, steps, state, config,
              split) -> Dict[str, representations.ItemRows]:
    """The one representation the network feeds its output layer."""
    result = self.evaluate_split(steps, state, config, split, collect=True)
    (name,) = registry.network(config.model).representations(config.model)
    return {name: result.rows}

  def collects_scores(self, steps, split) -> bool:
    """Only where collecting evaluates the same rows as not collecting.

    An audio network's train and val splits are evaluated on single patches
    but extracted on whole-track windows, which would change the report.
    """
    source = steps.source
    return source.eval_kind(split, True) == source.eval_kind(split, False)


TASK = LabelPrediction()

"""Whole-split evaluation of a stage's state (SPEC §5).

Scores are collected over a split on the host and the metrics computed once
(ROC-AUC, PR-AUC, ADiv@N, precision@k, macro-F1 cannot be averaged batch by
batch); audio networks are evaluated on whole tracks (and, on MuMu, albums)
by averaging their windows' outputs.
"""

from typing import Any, Dict, Iterable, Mapping, Sequence

from absl import logging
import jax
import numpy as np

from mmgenre_jax.data import sources as data_sources
from mmgenre_jax.core import metrics
from mmgenre_jax.data import representations
from mmgenre_jax import sharding
from mmgenre_jax.train.steps import Steps
from mmgenre_jax.train.train_state import TrainState

# Metric keys of results.json (README, "Results"); None in an alignment
# report, which has no label scores.
REPORT_KEYS = ('roc_auc', 'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5',
               'precision', 'recall', 'macro_f1')


def real_rows(outputs: Iterable[Mapping[str, Any]],
              keys: Sequence[str]) -> Dict[str, np.ndarray]:
  """Concatenates per-batch outputs and keeps the real rows.

  Args:
    outputs: per batch, key -> [B, ...], with 'mask' float [B] (0 on the
      padding rows of the last batch and of processes with fewer rows).
    keys: the keys to keep.

  Returns:
    key -> [N, ...] over the N rows with mask > 0, in batch order.
  """
  columns = {k: [] for k in tuple(keys) + ('mask',)}
  for out in outputs:
    for key, values in columns.items():
      values.append(np.asarray(out[key]))
  values = {k: np.concatenate(v) for k, v in columns.items()}
  real = values.pop('mask') > 0
  return {k: v[real] for k, v in values.items()}


def split_report(scores: np.ndarray, labels: np.ndarray,
                 target: str) -> Dict[str, Any]:
  """The metrics of a whole split (SPEC §5), after the output target.

  Args:
    scores: [N, L] label scores.
    labels: [N, L] multi-hot, or class ids [N] (softmax).
    target: 'softmax' (MSD-I, Sec 6: single-label) or a multi-label target.
  """
  if target == 'softmax':
    return metrics.singlelabel_report(scores, labels)
  return metrics.multilabel_report(scores, labels)


def _evaluate_alignment(steps: Steps, state: TrainState, split: str,
                        batch_size: int) -> Dict[str, Any]:
  """Alignment loss and mean cosines of true pairs and negatives."""
  source = steps.source
  outputs = (jax.device_get(steps.eval(
      state, data_sources.model_batch(batch, steps.keys, steps.mesh),
      np.int32(index)))
             for index, batch in enumerate(source.batches(split, batch_size)))
  # Padding rows have negative_mask 0, so dropping them keeps every negative.
  values = real_rows(outputs, ('loss', 'cos_true', 'cos_negative',
                               'negative_mask'))
  if not len(values['loss']):
    raise ValueError(f'The {split} split of {source.inputs} is empty; '
                     'nothing to evaluate.')
  negatives = values['negative_mask'] > 0
  report = {k: None for k in REPORT_KEYS}
  report.update(
      loss=float(np.mean(values['loss'], dtype=np.float64)),
      cos_true=float(np.mean(values['cos_true'], dtype=np.float64)),
      cos_negative=(float(np.mean(values['cos_negative'][negatives],
                                  dtype=np.float64))
                    if negatives.any() else None),
      num_items=int(len(values['loss'])))
  return report


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
    metrics.multilabel_report / singlelabel_report keys plus 'loss' and
    'aggregation' (what the scores are: aggregation()); alignment: loss,
    cos_true, cos_negative, num_items.
  """
  batch_size = sharding.per_process_batch_size(int(config.eval.batch_size),
                                               steps.mesh)
  if config.model.name == 'alignment':
    return _evaluate_alignment(steps, state, split, batch_size)
  source = steps.source
  kind, by_track, by_album = source.eval_kind(split, collect_representations)
  keys = ['loss', 'scores', 'labels', 'ids', 'album_ids']
  if collect_representations:
    keys.append('representation')
  outputs = (jax.device_get(steps.eval(
      state, data_sources.model_batch(batch, steps.keys, steps.mesh,
                                      with_ids=True), label_factors))
             for batch in source.batches(split, batch_size, kind=kind))
  values = real_rows(outputs, keys)
  if not len(values['loss']):
    raise ValueError(f'The {split} split of {config.model.name} '
                     f'({config.data.get("shard_dir") or "inputs"}) is '
                     'empty; nothing to evaluate.')
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
  report = split_report(values['scores'], values['labels'],
                        config.model.target)
  report['loss'] = loss
  report['aggregation'] = aggregation(by_track, by_album)
  if by_track or by_album:
    logging.info('%s %s: %s rows averaged per %s.', config.model.name, split,
                 kind, 'album' if by_album else 'track')
  if collect_representations:
    report['_extract'] = values
  return report

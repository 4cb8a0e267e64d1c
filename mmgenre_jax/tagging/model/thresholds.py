"""Per-label decision thresholds, F1-optimal on the validation split.

A label's threshold is the score cut that maximises F1 on the validation
items (scores and labels of the stage's representations/<name>/val.npz,
written by `main.py --mode=extract`); an item is tagged with a label when its
score is >= the threshold. Loading a model computes them in memory
(`for_stage`) and writes nothing; `mmgenre export` stores them in the bundle
as thresholds.json, which `for_stage` reads back:

  {"format": "mmgenre_jax.thresholds", "version": 1,
   "source": ".../representations/fusion/val.npz",
   "labels": [...], "thresholds": [t_0, ..., t_{L-1}], "val_f1": [...]}

A label without a positive validation item has threshold null: it is never
decided (its score still ranks it).
"""

import json
import os
import pathlib
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from input_pipeline import fileio
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging.model import stages as stages_lib

THRESHOLDS_FORMAT = 'mmgenre_jax.thresholds'
THRESHOLDS_VERSION = 1


def f1_optimal(scores: np.ndarray, labels: np.ndarray):
  """Per-label thresholds maximising F1 over the given items.

  Args:
    scores: float [N, L], higher = more likely.
    labels: [N, L] multi-hot, or [N] class indices (one-hot-encoded here).

  Returns:
    (thresholds float64 [L] with NaN for labels without positives,
     best F1 float64 [L], 0 where NaN).
  """
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels)
  if labels.ndim == 1:
    labels = np.eye(scores.shape[1], dtype=np.float64)[labels.astype(int)]
  if scores.ndim != 2 or labels.shape != scores.shape:
    raise ValueError(f'scores {scores.shape} and labels {labels.shape} must '
                     'both be [items, labels].')
  labels = labels > 0
  num_labels = scores.shape[1]
  thresholds = np.full(num_labels, np.nan)
  best_f1 = np.zeros(num_labels)
  for j in range(num_labels):
    positives = int(labels[:, j].sum())
    if positives == 0:
      continue
    order = np.argsort(-scores[:, j], kind='stable')
    s, y = scores[order, j], labels[order, j]
    tp = np.cumsum(y)
    # Cutting after position k tags the k + 1 best items; ties must be cut
    # together, so only the last position of each run of equal scores counts.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    predicted = np.arange(1, len(s) + 1)
    f1 = np.where(last_of_tie, 2 * tp / (predicted + positives), -1.0)
    k = int(np.argmax(f1))
    best_f1[j] = f1[k]
    # Midway to the next lower score, so that validation items are on the
    # right side whatever the rounding of a new item's score.
    thresholds[j] = s[k] if k + 1 == len(s) else (s[k] + s[k + 1]) / 2
  return thresholds, best_f1


def write(path, thresholds: np.ndarray, labels: Sequence[str], *,
          source: str, val_f1: Optional[np.ndarray] = None) -> None:
  """Writes thresholds.json (NaN -> null)."""
  payload = {
      'format': THRESHOLDS_FORMAT, 'version': THRESHOLDS_VERSION,
      'source': source, 'labels': list(labels),
      'thresholds': [None if not np.isfinite(t) else float(t)
                     for t in thresholds],
      'val_f1': None if val_f1 is None else [float(v) for v in val_f1],
  }
  fileio.write_json_atomic(path, payload, indent=1)


def read(path, labels: Optional[Sequence[str]] = None) -> np.ndarray:
  """Reads thresholds.json as float64 [L] (NaN: never decided).

  Args:
    path: the file.
    labels: the model's label names; checked against the file's.

  Raises:
    ValueError: not a thresholds file, or labels that differ.
  """
  path = pathlib.Path(path)
  try:
    payload: Dict[str, Any] = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: cannot read the thresholds ({e}).') from e
  if payload.get('format') != THRESHOLDS_FORMAT:
    raise ValueError(f'{path} is not a thresholds file (no "format": '
                     f'"{THRESHOLDS_FORMAT}"); delete it to recalibrate.')
  if labels is not None and list(payload['labels']) != list(labels):
    raise ValueError(f'{path} holds thresholds of other labels than the '
                     'model; delete it to recalibrate from val.npz.')
  return np.asarray([np.nan if t is None else t
                     for t in payload['thresholds']], np.float64)


def decide(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """bool [..., L]: score >= threshold (never for a NaN threshold)."""
  with np.errstate(invalid='ignore'):
    return np.asarray(scores) >= np.where(np.isnan(thresholds), np.inf,
                                          thresholds)


def for_stage(stage: stages_lib.Stage,
              head_scores: Callable[[np.ndarray], np.ndarray]
              ) -> Tuple[Optional[np.ndarray], Optional[str]]:
  """The decision thresholds of a scoring stage, computed without writing.

  A thresholds.json beside the stage (a bundle's, or one an older version
  wrote into the workdir) is read; else they are calibrated in memory from
  the stage's validation representations.

  Args:
    stage: a modality or fusion stage.
    head_scores: representations [N, R] -> scores [N, L] through the stage's
      output layer, for a val.npz extracted without scores.

  Returns:
    (float64 [L] with NaN for never-decided labels, where they came from),
    or (None, None) when the stage has neither file.

  Raises:
    ValueError: a thresholds.json of other labels, or not one at all.
  """
  path = stage.source / workdir_lib.THRESHOLDS_JSON
  if path.is_file():
    return read(path, stage.labels), os.fspath(path)
  candidates = (workdir_lib.representation_path(
      stage.source, stage.representations[0], 'val'),
                stage.source / workdir_lib.REPRESENTATIONS_DIR / 'val.npz')
  candidate = next((pathlib.Path(c) for c in candidates
                    if pathlib.Path(c).is_file()), None)
  if candidate is None:
    logging.info('%s: no %s and no validation representations (%s); '
                 'decisions are not available (run main.py --mode=extract '
                 '--split=val).', stage.source, workdir_lib.THRESHOLDS_JSON,
                 candidates[0])
    return None, None
  with np.load(candidate, allow_pickle=False) as data:
    labels = data['labels']
    if 'scores' in data:
      scores = data['scores']
    else:
      # An extract without scores: the stage's output layer gives them.
      scores = head_scores(data['representation'])
  values, _ = f1_optimal(scores, labels)
  return values, os.fspath(candidate)

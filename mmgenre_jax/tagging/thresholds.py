"""Per-label decision thresholds, F1-optimal on the validation split.

A label's threshold is the score cut that maximises F1 on the validation
items (scores and labels of the stage's representations/<name>/val.npz,
written by `main.py --mode=extract`); an item is tagged with a label when its
score is >= the threshold. The thresholds of a model live beside it as
thresholds.json:

  {"format": "mmgenre_jax.thresholds", "version": 1,
   "source": ".../representations/fusion/val.npz",
   "labels": [...], "thresholds": [t_0, ..., t_{L-1}], "val_f1": [...]}

A label without a positive validation item has threshold null: it is never
decided (its score still ranks it).
"""

import json
import pathlib
from typing import Any, Dict, Optional, Sequence

import numpy as np

THRESHOLDS_FILE = 'thresholds.json'
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
  path = pathlib.Path(path)
  tmp = path.with_name(f'.{path.name}.tmp')
  tmp.write_text(json.dumps(payload, indent=1) + '\n', encoding='utf-8')
  tmp.replace(path)


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

"""Evaluation metrics of the paper (Sec 6.3, 7.2): pure functions on numpy.

Multi-label (MuMu, Sec 7): ROC-AUC per label, unweighted mean over the
labels that can be scored in the evaluated split; PR-AUC (average precision)
likewise; aggregated diversity ADiv@N, N = 1, 3, 5; precision at k.
Single-label (MSD-I, Sec 6): macro precision, recall and F1 (F1 = mean of the
per-class F1), per-class F1, confusion matrix.

Values are computed with scikit-learn and equal its functions on the same
inputs. Whole-split metrics cannot be averaged batch by batch: the tasks'
split evaluation (mmgenre_jax/tasks/) collects a split's scores on the
host, drops the padding rows and calls these once.

  report = metrics.multilabel_report(scores, labels)   # [N, L] each
  metrics.flatten_metrics(report)   # {'roc_auc': ..., 'pr_auc': ..., ...}
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from sklearn import metrics as sk_metrics

# Cut-offs of the aggregated diversity ADiv@N (paper Sec 7.2, Table 6).
ADIV_NS = (1, 3, 5)
# Cut-offs of precision@k reported beside ADiv (same N as the paper's ADiv).
PRECISION_KS = (1, 3, 5)


def _check_scores(scores, name: str = 'scores') -> np.ndarray:
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 2:
    raise ValueError(
        f'{name} must be 2-D [items, labels], got shape {scores.shape}.')
  if not np.all(np.isfinite(scores)):
    raise ValueError(
        f'{name} has {int(np.sum(~np.isfinite(scores)))} non-finite value(s) '
        '(NaN or inf); the model output diverged or padding rows were not '
        'dropped.')
  return scores


def _check_multilabel(scores, labels):
  scores = _check_scores(scores)
  labels = np.asarray(labels)
  if labels.shape != scores.shape:
    raise ValueError(
        f'labels shape {labels.shape} differs from scores shape '
        f'{scores.shape}; both are [items, labels].')
  if not np.all((labels == 0) | (labels == 1)):
    raise ValueError('labels must be a binary (0/1) multi-hot matrix.')
  return scores, labels.astype(np.int64)


def evaluable_labels(labels) -> np.ndarray:
  """Labels whose ROC-AUC and PR-AUC are defined in this split.

  A label needs at least one positive (AUC is per label, Sec 7.2) and, for
  ROC-AUC to exist, at least one negative item; labels on every item or on
  none are left out of both averages, so ROC-AUC and PR-AUC average over the
  same labels.

  Args:
    labels: binary [items, labels].

  Returns:
    bool [labels].
  """
  labels = np.asarray(labels)
  positives = labels.sum(axis=0)
  return (positives > 0) & (positives < labels.shape[0])


def _per_label(score_fn, scores, labels) -> np.ndarray:
  scores, labels = _check_multilabel(scores, labels)
  keep = evaluable_labels(labels)
  values = np.full(scores.shape[1], np.nan)
  for j in np.flatnonzero(keep):
    values[j] = score_fn(labels[:, j], scores[:, j])
  return values


def roc_auc_per_label(scores, labels) -> np.ndarray:
  """ROC-AUC of each label, float64 [labels]; NaN where not evaluable."""
  return _per_label(sk_metrics.roc_auc_score, scores, labels)


def pr_auc_per_label(scores, labels) -> np.ndarray:
  """Average precision of each label, float64 [labels]; NaN if undefined."""
  return _per_label(sk_metrics.average_precision_score, scores, labels)


def _nanmean_or_none(values: np.ndarray) -> Optional[float]:
  values = values[~np.isnan(values)]
  return float(values.mean()) if values.size else None


def roc_auc(scores, labels) -> Optional[float]:
  """Unweighted mean ROC-AUC over the evaluable labels (Sec 7.2).

  Equals sklearn.metrics.roc_auc_score(labels[:, keep], scores[:, keep],
  average='macro') with keep = evaluable_labels(labels).

  Args:
    scores: float [items, labels].
    labels: binary [items, labels].

  Returns:
    The mean, or None when no label is evaluable.
  """
  return _nanmean_or_none(roc_auc_per_label(scores, labels))


def pr_auc(scores, labels) -> Optional[float]:
  """Unweighted mean average precision over the evaluable labels."""
  return _nanmean_or_none(pr_auc_per_label(scores, labels))


def top_n(scores, n: int) -> np.ndarray:
  """Indices of the n highest scores of each item.

  Ties are broken by the lower label index (a stable sort of -scores), so
  all-equal scores give labels 0 .. n-1.

  Args:
    scores: float [items, labels].
    n: >= 1; clipped to the number of labels.

  Returns:
    int [items, min(n, labels)], best first.
  """
  if n < 1:
    raise ValueError(f'n must be >= 1, got {n}.')
  scores = _check_scores(scores)
  return np.argsort(-scores, axis=1, kind='stable')[:, :n]


def adiv_at_n(scores, n: int) -> Optional[float]:
  """Aggregated diversity ADiv@N (paper Sec 7.2; Adomavicius & Kwon 2012).

  |union over items of their top-N labels| / number of labels, the share of
  the label vocabulary that is predicted in some item's top N (ties: see
  top_n).

  Args:
    scores: float [items, labels].
    n: N.

  Returns:
    A value in (0, 1], or None when there are no items.
  """
  scores = _check_scores(scores)
  if scores.shape[0] == 0 or scores.shape[1] == 0:
    return None
  return float(np.unique(top_n(scores, n)).size / scores.shape[1])


def precision_at_k(scores, labels, k: int) -> Optional[float]:
  """Mean over items of |top-k labels ∩ true labels| / k (ties: see top_n).

  Args:
    scores: float [items, labels].
    labels: binary [items, labels].
    k: cut-off.

  Returns:
    The mean, or None when there are no items.
  """
  scores, labels = _check_multilabel(scores, labels)
  if scores.shape[0] == 0:
    return None
  top = top_n(scores, k)
  hits = np.take_along_axis(labels, top, axis=1).sum(axis=1)
  return float(np.mean(hits / k))


def multilabel_report(scores, labels) -> Dict[str, Any]:
  """Whole-split multi-label metrics (paper Sec 7.2, Table 6).

  Args:
    scores: float [items, labels]: sigmoid outputs (LOGISTIC) or cosines to
      the label factors (COSINE); see targets.scores_from_output.
    labels: binary [items, labels], the true labels (never the factors).

  Returns:
    dict with roc_auc, pr_auc, adiv@N (N in ADIV_NS), p@k (k in
    PRECISION_KS), num_items, num_labels, num_labels_evaluated; precision,
    recall, macro_f1 and accuracy are None (single-label metrics). A value is
    None where it is undefined (no items, no evaluable label).
  """
  scores, labels = _check_multilabel(scores, labels)
  report = {
      'roc_auc': roc_auc(scores, labels),
      'pr_auc': pr_auc(scores, labels),
  }
  for n in ADIV_NS:
    report[f'adiv@{n}'] = adiv_at_n(scores, n)
  for k in PRECISION_KS:
    report[f'p@{k}'] = precision_at_k(scores, labels, k)
  report.update(precision=None, recall=None, macro_f1=None, accuracy=None,
                num_items=int(scores.shape[0]),
                num_labels=int(scores.shape[1]),
                num_labels_evaluated=int(evaluable_labels(labels).sum()))
  return report


def macro_precision_recall_f1(label_ids, predictions) -> Dict[str, Any]:
  """Macro precision, recall and F1 of single-label predictions (Sec 6.3).

  Averages over the classes present in label_ids or predictions (sklearn's
  default label set); a class that is never predicted has precision 0 and
  one that never occurs has recall 0 (sklearn zero_division=0). F1 is the
  mean of the per-class F1, as sklearn's f1_score(average='macro'), not the
  F1 of the macro precision and recall.

  Args:
    label_ids: int [items], true classes.
    predictions: int [items], predicted classes.

  Returns:
    dict precision, recall, macro_f1 (None when there are no items).
  """
  label_ids = np.asarray(label_ids)
  predictions = np.asarray(predictions)
  if label_ids.size == 0:
    return {'precision': None, 'recall': None, 'macro_f1': None}
  precision, recall, f1, _ = sk_metrics.precision_recall_fscore_support(
      label_ids, predictions, average='macro', zero_division=0.0)
  return {'precision': float(precision), 'recall': float(recall),
          'macro_f1': float(f1)}


def per_class_f1(label_ids, predictions,
                 num_classes: int) -> List[Optional[float]]:
  """F1 of each class 0 .. num_classes-1; None for a class absent from both
  label_ids and predictions (undefined)."""
  label_ids = np.asarray(label_ids)
  predictions = np.asarray(predictions)
  values = sk_metrics.f1_score(label_ids, predictions,
                               labels=np.arange(num_classes), average=None,
                               zero_division=0.0)
  present = set(label_ids.tolist()) | set(predictions.tolist())
  return [float(v) if c in present else None for c, v in enumerate(values)]


def singlelabel_report(scores, label_ids) -> Dict[str, Any]:
  """Whole-split single-label metrics (paper Sec 6.3, Table 2).

  The prediction is the arg max of each row (the lowest class index on ties),
  so logits and softmax probabilities give the same classification metrics.
  roc_auc / pr_auc / adiv@N are one-vs-rest on the given scores (pass
  probabilities for the usual ROC-AUC: per-class logits rank items
  differently).

  Args:
    scores: float [items, classes], logits or probabilities.
    label_ids: int [items], the true classes in [0, classes).

  Returns:
    dict with accuracy, precision, recall, macro_f1, per_class_f1 (list of
    classes entries), confusion_matrix (classes x classes list of ints, row =
    true class, column = predicted), roc_auc, pr_auc, adiv@N, num_items,
    num_labels, num_labels_evaluated.
  """
  scores = _check_scores(scores)
  label_ids = np.asarray(label_ids)
  num_classes = scores.shape[1]
  if label_ids.shape != (scores.shape[0],):
    raise ValueError(
        f'label_ids shape {label_ids.shape} must be [items] = '
        f'({scores.shape[0]},), one class index per row of scores.')
  if label_ids.size and (label_ids.min() < 0 or
                         label_ids.max() >= num_classes):
    raise ValueError(
        f'label_ids must be in [0, {num_classes}), found '
        f'{label_ids.min()}..{label_ids.max()}; drop padding rows first.')
  label_ids = label_ids.astype(np.int64)
  # np.argmax returns the first maximum: ties go to the lowest class index.
  predictions = np.argmax(scores, axis=1)
  one_hot = np.eye(num_classes, dtype=np.int64)[label_ids]
  report = {'roc_auc': roc_auc(scores, one_hot),
            'pr_auc': pr_auc(scores, one_hot)}
  for n in ADIV_NS:
    report[f'adiv@{n}'] = adiv_at_n(scores, n)
  report.update(macro_precision_recall_f1(label_ids, predictions))
  if label_ids.size:
    accuracy = float(np.mean(predictions == label_ids))
    class_f1 = per_class_f1(label_ids, predictions, num_classes)
    confusion = sk_metrics.confusion_matrix(
        label_ids, predictions, labels=np.arange(num_classes)).tolist()
  else:  # sklearn rejects empty inputs.
    accuracy, class_f1 = None, [None] * num_classes
    confusion = [[0] * num_classes for _ in range(num_classes)]
  report.update(
      accuracy=accuracy,
      per_class_f1=class_f1,
      confusion_matrix=confusion,
      num_items=int(scores.shape[0]),
      num_labels=int(num_classes),
      num_labels_evaluated=int(evaluable_labels(one_hot).sum()))
  return report


def flatten_metrics(computed: Mapping[str, Any]) -> Dict[str, float]:
  """Scalars of a report (or a computed clu Collection), for write_scalars.

  Nested report dicts are merged into the top level; None values, strings
  (aggregation), lists and matrices (per_class_f1, confusion_matrix) are
  left out.

  Args:
    computed: a report dict, or the output of Collection.compute().

  Returns:
    name -> float.
  """
  flat = {}
  for name, value in computed.items():
    if isinstance(value, Mapping):
      flat.update(flatten_metrics(value))
    elif (value is not None and not isinstance(value, str) and
          np.ndim(value) == 0):
      flat[name] = float(value)
  return flat


def format_report(report: Mapping[str, Any],
                  keys: Sequence[str] = ('roc_auc', 'pr_auc', 'adiv@1',
                                         'adiv@3', 'adiv@5', 'macro_f1'),
                  ) -> str:
  """One line such as `roc_auc=0.871 pr_auc=0.402 adiv@1=0.050 ...`."""
  parts = []
  for key in keys:
    value = report.get(key)
    parts.append(f'{key}=' + ('n/a' if value is None else f'{value:.3f}'))
  return ' '.join(parts)

"""What a finetuned head answers with, chosen on held-out splits.

`fit_calibrated` (called by fit.finetune) fits one answer per label:

 1. SELECTION_SPLITS held-out splits of the examples (`holdout_split`:
    about `holdout_fraction` of each label's examples, stratified), each
    scored by models fitted on the rest.
 2. A logistic regression per label (scikit-learn, balanced class weights)
    on the L2-normalised, standardised representation. Its inverse L2
    strength C is the strongest of REGULARISATION_CS whose mean held-out
    AUC is within one standard error of the best one's (the
    one-standard-error rule: Hastie, Tibshirani & Friedman, The Elements of
    Statistical Learning, 2nd ed., Sec 7.10): held-out AUCs of a few dozen
    examples, or of tracks the model was trained on, are optimistic for weak
    regularisation (BENCHMARKS.md §7).
 3. With the model's own label scores (`BaseScores`, the `<name>_scores`
    vector of the network the representation comes from), a label with at
    least MIN_POSITIVES_FOR_MODEL_SCORE examples may answer with one of
    them instead: the model's label whose scores rank the fitting part's
    examples best (average precision, `match_base_label`). It does unless
    the regression's mean held-out AUC is higher: a tie goes to the model's
    score, the simpler answer. So a label the model already predicts, under
    a new name, scores as the model does unless the examples show better
    (BENCHMARKS.md §7: fitted on single tracks, regressions kept on a tie
    lost to the model).
 4. Thresholds F1-optimal on the first split's held-out items; then every
    answer is refitted on all the examples.

  head, info = selection.fit_calibrated(x, targets, labels, 'fusion',
                                        base=BaseScores(...))
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn import linear_model
from sklearn import metrics as sk_metrics

from mmgenre_jax.tagging.finetune import examples as examples_lib
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

DEFAULT_HOLDOUT_FRACTION = 0.3
# Inverse L2 strengths tried, strongest first. 1e-4 is about the small-C
# limit (the class-mean difference direction): on the embedded corpus's
# single tracks, the scores of C = 1e-5 correlate 0.997 with those of 1e-4
# (BENCHMARKS.md §7); 1 is scikit-learn's default.
REGULARISATION_CS = (0.0001, 0.001, 0.01, 0.1, 1.0)
# Held-out splits (seeds seed, seed + 1, ...) that choose C and the answers:
# one split of a few dozen examples picks a poor C about one draw in three.
SELECTION_SPLITS = 3
# Fewer examples of a label than this, and it is always a regression: a
# held-out part of a few positives cannot tell two good answers apart, and
# one of the model's K labels then often ranks them best by chance (with 10
# examples of a sub-genre the model never saw, one draw in three answered
# with a model label and lost up to 25 points of AUC: BENCHMARKS.md §7).
MIN_POSITIVES_FOR_MODEL_SCORE = 20
# A label answering with one of the model's scores has one coefficient,
# which needs no shrinkage; C only sets how steep its probabilities are.
BASE_LABEL_C = 1.0
# `answers` entry of a label fitted on the representation.
FITTED = -1


@dataclasses.dataclass
class BaseScores:
  """The model's own label scores of the examples.

  Attributes:
    name: the Tagger.embed vector they are ('<representation>_scores').
    labels: the model's K label names, in score order.
    scores: float [N, K].
  """
  name: str
  labels: List[str]
  scores: np.ndarray

  def rows(self, mask: np.ndarray) -> 'BaseScores':
    return BaseScores(self.name, self.labels, self.scores[mask])


def holdout_split(targets: np.ndarray, labels: Sequence[str],
                  fraction: float, seed: int) -> np.ndarray:
  """bool [N]: the items held out to calibrate the thresholds.

  Labels rarest first: about `fraction` of each label's positives (at least
  MIN_HELDOUT_POSITIVES) are held out, one negative too, then random items
  up to `fraction` of all; an item is held out only if every label keeps
  MIN_TRAIN_POSITIVES positives and one negative to fit on (examples.py).

  Raises:
    ValueError: a label cannot get its held-out examples that way.
  """
  min_fit = examples_lib.MIN_TRAIN_POSITIVES
  min_held = examples_lib.MIN_HELDOUT_POSITIVES
  targets = np.asarray(targets, bool)
  rng = np.random.default_rng(seed)
  held = np.zeros(len(targets), bool)
  fit_pos = targets.sum(0)
  fit_neg = len(targets) - fit_pos

  def hold(i) -> bool:
    if held[i] or (fit_pos - targets[i] < min_fit).any() or (
        fit_neg - ~targets[i] < 1).any():
      return False
    held[i] = True
    fit_pos[:] -= targets[i]
    fit_neg[:] -= ~targets[i]
    return True

  order = np.argsort(targets.sum(0), kind='stable')
  for j in order:
    positives = np.flatnonzero(targets[:, j])
    want = max(min_held, int(round(fraction * len(positives))))
    for i in rng.permutation(positives):
      if targets[held, j].sum() >= want:
        break
      hold(i)
  for j in order:
    for i in rng.permutation(np.flatnonzero(~targets[:, j])):
      if (~targets[held, j]).any() or hold(i):
        break
  for i in rng.permutation(len(targets)):
    if held.sum() >= int(round(fraction * len(targets))):
      break
    hold(i)
  short = [labels[j] for j in order
           if targets[held, j].sum() < min_held or
           not (~targets[held, j]).any()]
  if short:
    raise ValueError(
        f'cannot hold out {min_held} examples (and an item '
        f'without it) of {short} while keeping {min_fit} to fit: '
        'their examples are the same few items as other labels\'; add '
        'examples of them.')
  return held


# ------------------------------------------------------------ fitting


def _standardiser(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(mean, scale) of the columns; a constant column (which carries
  nothing) gets scale 1 and stays at 0."""
  std = x.std(0)
  return x.mean(0), np.where(std > head_lib.EPSILON, std, 1.0)


def _logistic(z: np.ndarray, y: np.ndarray, c: float, seed: int):
  return linear_model.LogisticRegression(
      C=c, class_weight='balanced', max_iter=1000,
      random_state=seed).fit(z, y)


def fit_head(x: np.ndarray, targets: np.ndarray, labels: Sequence[str],
             representation: str, seed: int = 0, c: float = 1.0,
             base: Optional[BaseScores] = None,
             answers: Optional[Sequence[int]] = None) -> head_lib.Head:
  """One logistic regression per label on normalised representations, or
  on one of the model's own scores.

  Args:
    x: float [N, D] representations.
    targets: bool [N, L], each label with positives and negatives.
    labels, representation: the head's names.
    seed: the solvers' seed.
    c: the inverse L2 strength of the regressions on x.
    base: the model's own label scores of the items, when some answer
      with them.
    answers: int [L]: FITTED (a regression on x) or the index of the
      model's label whose score answers; default all FITTED.

  Returns:
    A Head without thresholds (all NaN), reading base.name too when a label
    answers with a model score.
  """
  answers = np.full(len(labels), FITTED) if answers is None else np.asarray(
      answers)
  reads_base = bool((answers != FITTED).any())
  if reads_base and base is None:
    raise ValueError('answers name model labels but no base scores given.')
  unit = head_lib.l2_normalise(x)
  mean, scale = _standardiser(unit)
  z = (unit - mean) / scale
  width = z.shape[1]
  if reads_base:
    score_mean, score_scale = _standardiser(np.asarray(base.scores,
                                                       np.float64))
    zs = (base.scores - score_mean) / score_scale
    mean = np.concatenate([mean, score_mean])
    scale = np.concatenate([scale, score_scale])
  coef = np.zeros((len(labels), len(mean)))
  intercept = np.zeros(len(labels))
  for j, answer in enumerate(answers):
    if answer == FITTED:
      model = _logistic(z, targets[:, j], c, seed)
      coef[j, :width] = model.coef_[0]
    else:
      model = _logistic(zs[:, [answer]], targets[:, j], BASE_LABEL_C, seed)
      coef[j, width + answer] = model.coef_[0, 0]
    intercept[j] = model.intercept_[0]
  return head_lib.Head(
      labels=list(labels), representation=representation,
      coef=coef.astype(np.float32), intercept=intercept.astype(np.float32),
      mean=mean.astype(np.float32), scale=scale.astype(np.float32),
      thresholds=np.full(len(labels), np.nan),
      base_scores=base.name if reads_base else None,
      base_labels=list(base.labels) if reads_base else None)


def head_input(x: np.ndarray, base: Optional[BaseScores],
               head: head_lib.Head) -> np.ndarray:
  """What `head.scores` reads for these items (Head.vector's layout)."""
  return x if head.base_scores is None else np.concatenate(
      [x, base.scores], axis=-1)


def _aucs(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
  return np.array([sk_metrics.roc_auc_score(targets[:, j], scores[:, j])
                   for j in range(targets.shape[1])])


# ------------------------------------------------------------- choices


def heldout_aucs(x, targets, helds, labels, representation, seed, c
                 ) -> np.ndarray:
  """float [S, L]: per held-out split, each label's AUC on its held-out
  items of regressions fitted with C = c on the others."""
  found = []
  for held in helds:
    partial = fit_head(x[~held], targets[~held], labels, representation,
                       seed, c)
    found.append(_aucs(targets[held], partial.scores(x[held])))
  return np.array(found)


def choose_c(table: Dict[float, np.ndarray]) -> float:
  """The one-standard-error choice (module docstring) among REGULARISATION_CS
  of their held-out AUCs {c: [S, L]}: the strongest C whose mean is within
  one standard error (over the split x label cells) of the best mean."""
  means = {c: float(np.mean(table[c])) for c in REGULARISATION_CS}
  best = max(REGULARISATION_CS, key=lambda c: means[c])
  cells = np.asarray(table[best]).ravel()
  error = float(np.std(cells, ddof=1) / np.sqrt(cells.size)
                ) if cells.size > 1 else 0.0
  return next(c for c in REGULARISATION_CS
              if means[c] >= means[best] - error)


def match_base_label(scores: np.ndarray, positives: np.ndarray) -> int:
  """The model's label whose scores rank the positives first: the best
  average precision (the first of equals).

  Average precision rather than AUC: on tracks the model was trained on,
  a sub-genre's scores rank its parent's examples about as well as the
  parent's own do (AUC), but not at the top; on new tracks the parent's
  do better (BENCHMARKS.md §7).
  """
  return int(np.argmax([sk_metrics.average_precision_score(positives,
                                                           scores[:, k])
                        for k in range(scores.shape[1])]))


def base_heldout_aucs(base: BaseScores, targets: np.ndarray,
                      helds: Sequence[np.ndarray]) -> np.ndarray:
  """float [S, L]: per held-out split, each label's held-out AUC of the
  model's score matched to it on the other items."""
  found = []
  for held in helds:
    fit_part, scores = base.scores[~held], base.scores[held]
    found.append([sk_metrics.roc_auc_score(
        targets[held, j],
        scores[:, match_base_label(fit_part, targets[~held, j])])
                  for j in range(targets.shape[1])])
  return np.array(found)


def choose_answers(targets: np.ndarray, fitted: np.ndarray,
                   base: Optional[BaseScores],
                   helds: Sequence[np.ndarray]
                   ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """(int [L] answers, float [S, L] the model scores' held-out AUCs or
  None): a label with MIN_POSITIVES_FOR_MODEL_SCORE examples answers with
  a model score unless the fitted regression's mean held-out AUC (`fitted`,
  [S, L]) is higher."""
  answers = np.full(targets.shape[1], FITTED)
  if base is None:
    return answers, None
  table = base_heldout_aucs(base, targets, helds)
  gain = np.mean(np.asarray(fitted) - table, axis=0)
  enough = targets.sum(0) >= MIN_POSITIVES_FOR_MODEL_SCORE
  for j in np.flatnonzero(enough & ~(gain > 0)):
    answers[j] = match_base_label(base.scores, targets[:, j])
  return answers, table


def _split_answers(answers, base, targets, held) -> np.ndarray:
  """`answers` for a head fitted without the held-out items: the model
  labels matched on the others."""
  return np.array([a if a == FITTED else match_base_label(
      base.scores[~held], targets[~held, j]) for j, a in enumerate(answers)])


def calibrate(x: np.ndarray, targets: np.ndarray, held: np.ndarray,
              labels: Sequence[str], representation: str, seed: int,
              c: float, base: Optional[BaseScores] = None,
              answers: Optional[Sequence[int]] = None
              ) -> Tuple[np.ndarray, Dict[str, Dict[str, float]]]:
  """Thresholds F1-optimal on the held-out items for a head fitted on the
  others, and its held-out metrics.

  Returns:
    (float64 [L], {label: {'positives', 'auc', 'f1'}}).
  """
  if answers is not None and base is not None:
    answers = _split_answers(answers, base, targets, held)
  partial = fit_head(x[~held], targets[~held], labels, representation, seed,
                     c, None if base is None else base.rows(~held), answers)
  scores = partial.scores(head_input(
      x[held], None if base is None else base.rows(held), partial))
  aucs = _aucs(targets[held], scores)
  thresholds, f1 = thresholds_lib.f1_optimal(scores, targets[held])
  return thresholds, {label: {'positives': int(targets[held, j].sum()),
                              'auc': float(aucs[j]), 'f1': float(f1[j])}
                      for j, label in enumerate(labels)}


def fit_calibrated(x: np.ndarray, targets: np.ndarray,
                   labels: Sequence[str], representation: str, *,
                   base: Optional[BaseScores] = None,
                   holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
                   seed: int = 0) -> Tuple[head_lib.Head, Dict[str, Any]]:
  """The head finetune writes (module docstring).

  Args:
    x: float [N, D] representations; targets: bool [N, L].
    labels, representation: the head's names.
    base: the model's own label scores of the items, or None (every label
      is then a regression on x).
    holdout_fraction, seed: of the held-out splits.

  Returns:
    (the head with thresholds, {'items': held-out count, 'c', 'auc_by_c',
     'labels': {label: {'positives', 'auc', 'f1', 'fitted_auc',
     'base_auc', 'answer'}}}), 'answer' being None (the regression) or the
     model's label it answers with.
  """
  helds = [holdout_split(targets, labels, holdout_fraction, seed + k)
           for k in range(SELECTION_SPLITS)]
  table = {c: heldout_aucs(x, targets, helds, labels, representation, seed,
                           c) for c in REGULARISATION_CS}
  c = choose_c(table)
  answers, base_table = choose_answers(targets, table[c], base, helds)
  thresholds, heldout = calibrate(x, targets, helds[0], labels,
                                  representation, seed, c, base, answers)
  head = fit_head(x, targets, labels, representation, seed, c, base,
                  answers)
  head.thresholds = thresholds
  for j, label in enumerate(labels):
    heldout[label].update(
        fitted_auc=float(table[c][:, j].mean()),
        base_auc=None if base_table is None else float(
            base_table[:, j].mean()),
        answer=None if answers[j] == FITTED else str(
            base.labels[answers[j]]))
  return head, {'items': int(helds[0].sum()), 'c': c,
                'auc_by_c': {k: float(np.mean(v)) for k, v in table.items()},
                'labels': heldout}

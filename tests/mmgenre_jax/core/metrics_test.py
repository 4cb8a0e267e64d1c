"""Tests of mmgenre_jax.core.metrics against scikit-learn and hand examples."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from mmgenre_jax.core import targets
from mmgenre_jax.tasks import base
from mmgenre_jax.core import metrics


def random_multilabel(seed: int, items: int = 40, labels: int = 7):
  rng = np.random.default_rng(seed)
  scores = rng.random((items, labels)).astype(np.float32)
  y = (rng.random((items, labels)) < 0.3).astype(np.uint8)
  return scores, y


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_auc_equal_to_sklearn_on_random_inputs(seed):
  scores, y = random_multilabel(seed)
  y[:, 0] = 1  # A label on every item: ROC-AUC undefined, left out.
  y[:, 1] = 0  # A label with no positive: left out (AUC per label, Sec 7.2).
  keep = np.arange(2, 7)
  assert metrics.roc_auc(scores, y) == pytest.approx(
      sk_metrics.roc_auc_score(y[:, keep], scores[:, keep], average='macro'),
      rel=1e-12)
  assert metrics.pr_auc(scores, y) == pytest.approx(
      sk_metrics.average_precision_score(y[:, keep], scores[:, keep],
                                         average='macro'), rel=1e-12)
  per_label = metrics.roc_auc_per_label(scores, y)
  assert np.isnan(per_label[:2]).all()
  assert per_label[3] == pytest.approx(
      sk_metrics.roc_auc_score(y[:, 3], scores[:, 3]))
  report = metrics.multilabel_report(scores, y)
  assert report['num_labels_evaluated'] == 5
  assert report['roc_auc'] == metrics.roc_auc(scores, y)


def test_auc_edge_inputs():
  # Ties and all-equal scores, compared with sklearn.
  y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
  tied = np.array([[0.5, 0.2], [0.5, 0.2], [0.1, 0.2], [0.1, 0.2]])
  assert metrics.roc_auc(tied, y) == pytest.approx(
      sk_metrics.roc_auc_score(y, tied, average='macro'))
  assert metrics.roc_auc(tied, y) == pytest.approx((0.5 + 0.5) / 2)
  assert metrics.pr_auc(tied, y) == pytest.approx(
      sk_metrics.average_precision_score(y, tied, average='macro'))
  flat = np.zeros((4, 2))
  assert metrics.roc_auc(flat, y) == pytest.approx(0.5)
  # No evaluable label at all -> None, not NaN.
  assert metrics.roc_auc(flat, np.zeros((4, 2))) is None
  assert metrics.pr_auc(flat, np.ones((4, 2))) is None


def test_adiv_hand_example():
  scores = np.array([
      [0.9, 0.1, 0.5, 0.0, 0.0],
      [0.8, 0.7, 0.0, 0.0, 0.0],
      [0.9, 0.0, 0.0, 0.6, 0.0],
  ])
  # Top-1: {0} -> 1/5. Top-2: {0,2} u {0,1} u {0,3} -> 4/5. Top-3: the
  # zeros tie and the lowest index wins: {0,2,1} u {0,1,2} u {0,3,1} -> 4/5;
  # label 4 never makes it.
  assert metrics.adiv_at_n(scores, 1) == pytest.approx(0.2)
  assert metrics.adiv_at_n(scores, 2) == pytest.approx(0.8)
  assert metrics.adiv_at_n(scores, 3) == pytest.approx(0.8)
  assert metrics.adiv_at_n(scores, 5) == pytest.approx(1.0)
  assert metrics.adiv_at_n(scores, 9) == pytest.approx(1.0)  # N > labels.
  # All-equal scores: the lowest label indices win the ties.
  flat = np.zeros((3, 5))
  np.testing.assert_array_equal(metrics.top_n(flat, 2), [[0, 1]] * 3)
  assert metrics.adiv_at_n(flat, 3) == pytest.approx(0.6)
  assert metrics.adiv_at_n(np.zeros((0, 5)), 1) is None


def test_precision_at_k_hand_example():
  scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3]])
  y = np.array([[1, 0, 0], [0, 1, 1]])
  assert metrics.precision_at_k(scores, y, 1) == pytest.approx((1 + 1) / 2)
  assert metrics.precision_at_k(scores, y, 2) == pytest.approx(
      (0.5 + 1.0) / 2)


@pytest.mark.parametrize('seed', [0, 3])
def test_singlelabel_equal_to_sklearn(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(50, 5))
  label_ids = rng.integers(0, 5, size=50)
  report = metrics.singlelabel_report(logits, label_ids)
  predictions = logits.argmax(axis=1)
  assert report['macro_f1'] == pytest.approx(
      sk_metrics.f1_score(label_ids, predictions, average='macro'))
  assert report['precision'] == pytest.approx(
      sk_metrics.precision_score(label_ids, predictions, average='macro'))
  assert report['recall'] == pytest.approx(
      sk_metrics.recall_score(label_ids, predictions, average='macro'))
  assert report['accuracy'] == pytest.approx(
      sk_metrics.accuracy_score(label_ids, predictions))
  np.testing.assert_allclose(
      report['per_class_f1'],
      sk_metrics.f1_score(label_ids, predictions, average=None))
  np.testing.assert_array_equal(
      report['confusion_matrix'],
      sk_metrics.confusion_matrix(label_ids, predictions))
  # Softmax probabilities classify exactly as the logits.
  probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  assert metrics.singlelabel_report(probs, label_ids)['macro_f1'] == (
      report['macro_f1'])
  assert report['roc_auc'] == pytest.approx(
      sk_metrics.roc_auc_score(np.eye(5)[label_ids], logits,
                               average='macro'))


def test_singlelabel_hand_example_with_absent_class():
  # Class 3 is neither true nor predicted: its F1 is undefined (None) and it
  # is not in the macro average; class 2 is predicted but never true: F1 0.
  scores = np.array([[5, 0, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0], [0, 0, 5, 0]])
  label_ids = np.array([0, 1, 1, 0])
  report = metrics.singlelabel_report(scores, label_ids)
  # Class 0: P 1/2, R 1/2, F1 1/2. Class 1: P 1, R 1/2, F1 2/3. Class 2: 0.
  assert report['per_class_f1'] == pytest.approx([0.5, 2 / 3, 0.0, None])
  assert report['macro_f1'] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
  assert report['precision'] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
  assert report['recall'] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
  assert report['confusion_matrix'] == [[1, 0, 1, 0], [1, 1, 0, 0],
                                        [0, 0, 0, 0], [0, 0, 0, 0]]
  assert report['accuracy'] == pytest.approx(0.5)
  # Ties: all-equal scores predict class 0.
  tied = metrics.singlelabel_report(np.zeros((2, 4)), np.array([0, 1]))
  assert tied['accuracy'] == pytest.approx(0.5)


def test_empty_split_gives_none():
  report = metrics.singlelabel_report(np.zeros((0, 3)), np.zeros(0, int))
  assert report['macro_f1'] is None and report['accuracy'] is None
  assert report['per_class_f1'] == [None] * 3
  assert report['confusion_matrix'] == [[0] * 3] * 3
  multi = metrics.multilabel_report(np.zeros((0, 3)), np.zeros((0, 3)))
  assert multi['roc_auc'] is None and multi['adiv@1'] is None
  assert multi['p@1'] is None and multi['num_items'] == 0


def test_singlelabel_bad_label_ids():
  with pytest.raises(ValueError, match=r'label_ids must be in \[0, 3\)'):
    metrics.singlelabel_report(np.zeros((2, 3)), np.array([0, 3]))


def test_non_finite_scores_are_rejected():
  scores, y = random_multilabel(0, items=4, labels=3)
  scores[1, 2] = np.nan
  with pytest.raises(ValueError, match='non-finite'):
    metrics.multilabel_report(scores, y)


def _padded(arrays, pad: int):
  return [np.concatenate([a, np.full((pad,) + a.shape[1:], 7, a.dtype)])
          for a in arrays]


def _padded_batches(arrays, batch: int):
  """Batches of `batch` rows, the last padded with junk rows of mask 0."""
  n = len(arrays['scores'])
  for start in range(0, n, batch):
    part = {k: v[start:start + batch] for k, v in arrays.items()}
    pad = batch - len(part['scores'])
    mask = np.concatenate([np.ones(batch - pad), np.zeros(pad)])
    part = {k: np.concatenate([v, np.full((pad,) + v.shape[1:], 7, v.dtype)])
            for k, v in part.items()}
    yield dict(part, mask=mask)


def test_whole_split_scores_padded_batches_equal_unpadded_report():
  # The evaluators collect per-batch outputs on the host, drop the padding
  # rows and compute the metrics once: the same as on the unpadded split.
  scores, y = random_multilabel(5, items=30, labels=6)
  loss = np.repeat(np.arange(4.0) * 8 + 1, 8)[:30]
  outputs = _padded_batches({'scores': scores, 'labels': y, 'loss': loss}, 8)
  values = base.real_rows(outputs, ('scores', 'labels', 'loss'))
  np.testing.assert_array_equal(values['scores'], scores)
  report = targets.COSINE.split_metrics(values['scores'], values['labels'])
  expected = metrics.multilabel_report(scores, y)
  assert report == pytest.approx(expected)
  # The loss averages real rows only: (8*1 + 8*9 + 8*17 + 6*25) / 30.
  assert float(np.mean(values['loss'])) == pytest.approx(
      (8 * 1 + 8 * 9 + 8 * 17 + 6 * 25) / 30)
  flat = metrics.flatten_metrics(dict(report, loss=1.0))
  assert flat['roc_auc'] == pytest.approx(expected['roc_auc'])
  assert 'macro_f1' not in flat and flat['loss'] == 1.0


def test_whole_split_single_label_with_padding():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(10, 4)).astype(np.float32)
  label_ids = rng.integers(0, 4, size=10).astype(np.int32)
  mask = np.array([1.0] * 7 + [0.0] * 3)
  label_ids[7:] = -1  # Padding ids are out of range; real_rows drops them.
  values = base.real_rows(
      [{'scores': logits, 'labels': label_ids, 'loss': np.arange(10.0),
        'mask': mask}], ('scores', 'labels', 'loss'))
  report = targets.SOFTMAX.split_metrics(values['scores'], values['labels'])
  expected = metrics.singlelabel_report(logits[:7], label_ids[:7])
  assert report == expected
  assert expected['num_items'] == 7
  assert float(np.mean(values['loss'])) == pytest.approx(3.0)
  train = base.TrainMetrics.single_from_model_output(
      loss=jnp.array([2.0, 4.0, 100.0]), mask=jnp.array([1.0, 1.0, 0.0]))
  assert float(train.compute()['loss']) == pytest.approx(3.0)


def test_format_report():
  line = metrics.format_report({'roc_auc': 0.8712, 'pr_auc': None},
                               keys=('roc_auc', 'pr_auc'))
  assert line == 'roc_auc=0.871 pr_auc=n/a'

"""What a finetuned head answers with (selection.py), on synthetic vectors.

A label the model already predicts, under a new name, answers with the
model's own score, also when the representation ranks its examples as well
(a tie goes to the simpler answer); a label it does not know keeps its
fitted regression; C follows the one-standard-error rule.
"""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging.finetune import selection

MODEL_LABELS = ['Rock', 'Jazz', 'Pop', 'Folk']


def _data(n, seed):
  """Representations x [n, 32] whose first dimension carries 'signal',
  model scores [n, 4] whose 'Jazz' column carries 'known' (with noise the
  representation cannot explain), targets of both."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, 32))
  scores = rng.uniform(-1, 1, (n, len(MODEL_LABELS)))
  targets = np.stack([scores[:, 1] > 0.2, x[:, 0] > 0.3], axis=1)
  return x, scores, targets


def test_a_label_the_model_knows_answers_with_its_score():
  x, scores, targets = _data(300, 0)
  base = selection.BaseScores('fusion_scores', MODEL_LABELS, scores)
  head, info = selection.fit_calibrated(x, targets, ['known', 'signal'],
                                        'fusion', base=base)
  assert info['labels']['known']['answer'] == 'Jazz'
  assert info['labels']['signal']['answer'] is None  # fitted on x
  assert info['labels']['known']['base_auc'] > info['labels']['known'][
      'fitted_auc']
  assert (head.base_scores, head.base_labels) == ('fusion_scores',
                                                  MODEL_LABELS)
  # Exact: on new items 'known' ranks as the model's Jazz score does, and
  # reads nothing else; 'signal' reads the representation alone.
  new_x, new_scores, new_targets = _data(200, 1)
  vectors = {'fusion': new_x, 'fusion_scores': new_scores}
  got = head.scores(head.vector(vectors))
  assert np.array_equal(np.argsort(got[:, 0]), np.argsort(new_scores[:, 1]))
  width = x.shape[1]
  assert not head.coef[0, :width].any()
  assert np.count_nonzero(head.coef[0, width:]) == 1
  assert not head.coef[1, width:].any()
  for j in range(2):
    assert sk_metrics.roc_auc_score(new_targets[:, j], got[:, j]) >= (
        sk_metrics.roc_auc_score(new_targets[:, 0], new_scores[:, 1])
        if j == 0 else 0.9)


@pytest.mark.parametrize('gain, answer', [
    ((-0.01, 0.01, -0.005), 'Jazz'),  # the model's score a little better
    ((0.0, 0.0, 0.0), 'Jazz'),  # a tie
    ((0.01, -0.005, 0.01), None),  # the regression a little better
    ((0.05, 0.06, 0.055), None),
])
def test_the_regression_must_beat_the_model_score(gain, answer):
  x, scores, targets = _data(300, 5)
  base = selection.BaseScores('fusion_scores', MODEL_LABELS, scores)
  helds = [selection.holdout_split(targets[:, :1], ['known'], 0.3, k)
           for k in range(3)]
  table = selection.base_heldout_aucs(base, targets[:, :1], helds)
  fitted = table + np.array(gain)[:, None]
  answers, got = selection.choose_answers(targets[:, :1], fitted, base,
                                          helds)
  np.testing.assert_array_equal(got, table)
  assert answers[0] == (selection.FITTED if answer is None
                        else MODEL_LABELS.index(answer))


def test_a_label_with_few_examples_stays_a_regression():
  # The same tie with one positive fewer than the model scores need.
  x, scores, targets = _data(300, 5)
  keep = np.concatenate([
      np.flatnonzero(targets[:, 0])[:selection.MIN_POSITIVES_FOR_MODEL_SCORE
                                    - 1], np.flatnonzero(~targets[:, 0])])
  targets = targets[keep, :1]
  base = selection.BaseScores('fusion_scores', MODEL_LABELS, scores[keep])
  helds = [selection.holdout_split(targets, ['known'], 0.3, k)
           for k in range(3)]
  table = selection.base_heldout_aucs(base, targets, helds)
  answers, _ = selection.choose_answers(targets, table, base, helds)
  assert answers[0] == selection.FITTED


def test_unrelated_model_scores_leave_the_fitted_head():
  x, _, targets = _data(300, 2)
  unrelated = np.random.default_rng(3).uniform(-1, 1, (300, 4))
  base = selection.BaseScores('fusion_scores', MODEL_LABELS, unrelated)
  head, info = selection.fit_calibrated(x, targets[:, 1:], ['signal'],
                                        'fusion', base=base)
  assert info['labels']['signal']['answer'] is None
  assert head.base_scores is None and head.coef.shape == (1, 32)
  plain, _ = selection.fit_calibrated(x, targets[:, 1:], ['signal'],
                                      'fusion')
  np.testing.assert_array_equal(head.coef, plain.coef)


def test_head_with_model_scores_round_trips(tmp_path):
  x, scores, targets = _data(120, 4)
  base = selection.BaseScores('fusion_scores', MODEL_LABELS, scores)
  head = selection.fit_head(x, targets, ['known', 'signal'], 'fusion',
                            c=0.1, base=base,
                            answers=[1, selection.FITTED])
  head.thresholds = np.array([0.5, 0.5])
  head_lib.save(head, tmp_path / 'head')
  loaded = head_lib.load(tmp_path / 'head')
  assert (loaded.base_scores, loaded.base_labels) == ('fusion_scores',
                                                      MODEL_LABELS)
  vectors = {'fusion': x[:5], 'fusion_scores': scores[:5]}
  np.testing.assert_allclose(loaded.scores(loaded.vector(vectors)),
                             head.scores(head.vector(vectors)), rtol=1e-6)
  with pytest.raises(Exception, match="reads the 'fusion_scores'"):
    loaded.vector({'fusion': x[:5]})


@pytest.mark.parametrize('spread, expected', [
    (0.0, 0.0001),   # all within noise of each other: the strongest
    (0.05, 0.01),    # 0.001 is more than one standard error below the best
])
def test_c_by_the_one_standard_error_rule(spread, expected):
  rng = np.random.default_rng(0)
  noise = rng.normal(0, 0.01, (3, 6))
  means = {0.0001: 0.80 - 2 * spread, 0.001: 0.80 - spread, 0.01: 0.80,
           0.1: 0.801, 1.0: 0.79}
  table = {c: means[c] + noise for c in selection.REGULARISATION_CS}
  assert selection.choose_c(table) == expected

"""mmgenre_jax.core.targets: the output configurations as objects."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmgenre_jax import errors
from mmgenre_jax.core import losses
from mmgenre_jax.core import metrics
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax.core import targets

# 6 items x 4 labels, every label on some item.
M = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1],
              [1, 0, 0, 1], [0, 1, 0, 1]], np.float32)


def test_get_names_every_target_and_refuses_others():
  assert targets.NAMES == ('logistic', 'softmax', 'cosine')
  assert targets.get('cosine') is targets.COSINE
  with pytest.raises(errors.ConfigError, match="Unknown target 'hinge'"):
    targets.get('hinge')


def test_scores():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 4)).astype(np.float32)
  np.testing.assert_allclose(targets.LOGISTIC.scores(jnp.asarray(logits)),
                             1 / (1 + np.exp(-logits)), rtol=1e-5)
  softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  np.testing.assert_allclose(targets.SOFTMAX.scores(jnp.asarray(logits)),
                             softmax, rtol=1e-5)
  factors = rng.normal(size=(4, 3))
  output = rng.normal(size=(3, 3)).astype(np.float32)
  output[2] = 0.0  # A zero output scores 0 on every label, never NaN.
  scores = np.asarray(targets.COSINE.scores(jnp.asarray(output), factors))
  for b in range(2):
    for j in range(4):
      expected = output[b] @ factors[j] / (
          np.linalg.norm(output[b]) * np.linalg.norm(factors[j]))
      assert scores[b, j] == pytest.approx(expected, abs=1e-5)
  np.testing.assert_array_equal(scores[2], 0.0)
  with pytest.raises(ValueError, match='label_factors'):
    targets.COSINE.scores(jnp.asarray(output))
  with pytest.raises(ValueError, match='factor dimension'):
    targets.COSINE.scores(jnp.asarray(logits), factors)


def test_losses_are_the_paper_losses_per_row():
  rng = np.random.default_rng(1)
  output = jnp.asarray(rng.normal(size=(6, 4)).astype(np.float32))
  mask = jnp.asarray([1, 1, 1, 1, 1, 0], jnp.float32)
  np.testing.assert_allclose(
      targets.LOGISTIC.loss_per_row(output, M, mask),
      losses.sigmoid_bce_per_row(output, M, mask))
  ids = jnp.asarray([0, 1, 2, 3, 0, 1])
  np.testing.assert_allclose(
      targets.SOFTMAX.loss_per_row(output, ids, mask),
      losses.softmax_ce_per_row(output, ids, mask))
  factors = ppmi_svd.factorize(M, 4).label_factors
  item = targets.COSINE.item_targets(jnp.asarray(M), jnp.asarray(factors), 4)
  np.testing.assert_allclose(item, ppmi_svd.item_factors(M, factors),
                             atol=1e-6)
  np.testing.assert_allclose(
      targets.COSINE.loss_per_row(output, item, mask),
      losses.cosine_loss_per_row(output, item, mask))
  # The loss of a padding row is 0 whatever its values.
  assert float(targets.COSINE.loss_per_row(output, item, mask)[5]) == 0.0


def test_class_ids_under_multi_label_targets_become_one_hot():
  ids = jnp.asarray([2, 0, 3])
  np.testing.assert_array_equal(
      targets.COSINE.metric_labels(ids, 4), np.eye(4)[[2, 0, 3]])
  np.testing.assert_array_equal(
      targets.LOGISTIC.metric_labels(jnp.asarray(M), 4), M)
  np.testing.assert_array_equal(targets.SOFTMAX.metric_labels(ids, 4), ids)
  factors = ppmi_svd.factorize(M, 2).label_factors
  np.testing.assert_allclose(
      targets.COSINE.item_targets(ids, jnp.asarray(factors), 4),
      ppmi_svd.item_factors(np.eye(4)[[2, 0, 3]], factors), atol=1e-6)


def test_split_metrics_follow_the_label_kind():
  rng = np.random.default_rng(2)
  scores = rng.random((6, 4))
  assert targets.COSINE.split_metrics(scores, M) == pytest.approx(
      metrics.multilabel_report(scores, M))
  ids = np.array([0, 1, 2, 3, 0, 1])
  assert targets.SOFTMAX.split_metrics(scores, ids) == (
      metrics.singlelabel_report(scores, ids))


def test_output_size_label_types_and_head():
  data = {'num_labels': 250, 'factor_dim': 50}
  assert targets.COSINE.output_size(data, num_labels=45) == 50
  assert targets.LOGISTIC.output_size(data, num_labels=45) == 45
  assert targets.SOFTMAX.output_size(data) == 250
  assert (targets.COSINE.unit_output, targets.LOGISTIC.unit_output) == (
      True, False)
  targets.COSINE.check_label_type(targets.INDEX, 'the shards')
  with pytest.raises(errors.ConfigError, match="holds 'index' labels"):
    targets.LOGISTIC.check_label_type(targets.INDEX, 'the shards')
  # The jitted step traces a Target's methods like any function.
  scores = jax.jit(targets.LOGISTIC.scores)(jnp.zeros((1, 2)))
  np.testing.assert_allclose(scores, 0.5)

"""Tests of mmgenre_jax.core.losses on hand examples, padding and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmgenre_jax.core import losses

MASK_ALL = jnp.ones(3)


def test_cosine_loss_hand_values():
  a = jnp.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
  # Same direction (other length) -> 0; opposite -> 1; orthogonal -> 0.5.
  b = jnp.array([[2.0, 4.0, 0.0], [-5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  per_row = losses.cosine_loss_per_row(a, b, MASK_ALL)
  np.testing.assert_allclose(per_row, [0.0, 1.0, 0.5], atol=1e-6)
  assert float(losses.cosine_loss(a, b, MASK_ALL)) == pytest.approx(0.5)


def test_cosine_loss_ignores_masked_rows():
  a = jnp.array([[1.0, 0.0], [1.0, 0.0], [jnp.nan, jnp.inf]])
  b = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
  mask = jnp.array([1.0, 1.0, 0.0])
  assert float(losses.cosine_loss(a, b, mask)) == pytest.approx(0.25)
  np.testing.assert_array_equal(
      losses.cosine_loss_per_row(a, b, mask)[2], 0.0)
  # All padding: 0, not NaN.
  assert float(losses.cosine_loss(a, b, jnp.zeros(3))) == 0.0


def test_cosine_loss_finite_gradient_at_zero_vector():
  pred = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  target = jnp.array([[1.0, 0.0], [1.0, 1.0]])
  value, grad = jax.value_and_grad(losses.cosine_loss)(pred, target,
                                                       jnp.ones(2))
  # The zero prediction has cosine 0 with anything: loss 0.5 on that row.
  assert float(value) == pytest.approx(0.25)
  assert np.all(np.isfinite(grad))
  grad_target = jax.grad(losses.cosine_loss, argnums=1)(
      target, jnp.zeros((2, 2)), jnp.ones(2))
  assert np.all(np.isfinite(grad_target))


def test_sigmoid_bce_matches_optax_mean_over_labels():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 2, size=(4, 5)), jnp.uint8)
  mask = jnp.array([1.0, 1.0, 1.0, 0.0])
  per_item = optax.sigmoid_binary_cross_entropy(
      logits, labels.astype(jnp.float32)).mean(axis=1)
  expected = float(per_item[:3].mean())
  assert float(losses.sigmoid_bce(logits, labels, mask)) == pytest.approx(
      expected, rel=1e-6)
  # By hand: logit 0 costs log 2 whatever the label.
  zero = losses.sigmoid_bce(jnp.zeros((2, 3)), jnp.eye(2, 3), jnp.ones(2))
  assert float(zero) == pytest.approx(np.log(2.0), rel=1e-6)
  assert float(losses.sigmoid_bce(logits, labels, jnp.zeros(4))) == 0.0


def test_softmax_ce_hand_value_and_padding_label():
  logits = jnp.array([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0]])
  # The padding row's label id -1 is out of range and must not matter.
  label_ids = jnp.array([1, 0, -1])
  mask = jnp.array([1.0, 1.0, 0.0])
  expected = (np.log(4.0) + (np.log(np.exp(2.0) + 3.0) - 2.0)) / 2
  got = losses.softmax_ce(logits, label_ids, mask)
  assert float(got) == pytest.approx(expected, rel=1e-6)
  grad = jax.grad(losses.softmax_ce)(logits, label_ids, mask)
  np.testing.assert_array_equal(grad[2], 0.0)
  assert float(losses.softmax_ce(logits, label_ids, jnp.zeros(3))) == 0.0


def test_sample_negatives_other_real_rows_only():
  mask = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
  real = {0, 2, 3, 5}
  draws = jax.vmap(losses.sample_negatives, in_axes=(0, None))(
      jax.random.split(jax.random.key(0), 400), mask)
  draws = np.asarray(draws)
  assert draws.dtype == np.int32
  for i in real:
    picked = set(draws[:, i].tolist())
    # Never itself, never a padding row, and every other real row shows up.
    assert picked == real - {i}
  for i in (1, 4):
    assert set(draws[:, i].tolist()) <= real


def test_sample_negatives_degenerate_batches():
  one = losses.sample_negatives(jax.random.key(1), jnp.array([0.0, 1.0, 0.0]))
  assert int(one[1]) == 1  # The only real row has no other item.
  assert set(np.asarray(one).tolist()) == {1}
  none = losses.sample_negatives(jax.random.key(1), jnp.zeros(3))
  np.testing.assert_array_equal(none, [0, 1, 2])


# The paper's margin (Sec 3.4; specs.ALIGNMENT_MARGIN, config.model.margin).
MARGIN = 0.5


def test_alignment_loss_zero_for_aligned_pairs_with_distant_negatives():
  # Orthonormal items: the positives coincide (cos 1), every negative has
  # cos 0 <= m.
  e = jnp.eye(4)
  negatives = jnp.array([1, 2, 3, 0])
  value = losses.alignment_loss(e, 2.0 * e, jnp.ones(4),
                                negatives_a=negatives, negatives_v=negatives, margin=MARGIN)
  assert float(value) == pytest.approx(0.0, abs=1e-6)
  sampled = losses.alignment_loss(e, e, jnp.ones(4), rng=jax.random.key(3), margin=MARGIN)
  assert float(sampled) == pytest.approx(0.0, abs=1e-6)


def test_alignment_terms_hand_values():
  c = np.cos(np.pi / 6)  # cos 30°
  e_a = jnp.array([[1.0, 0.0], [c, 0.5]])
  e_v = jnp.array([[0.0, 1.0], [c, 0.5]])
  mask = jnp.ones(2)
  neg = jnp.array([1, 0])
  positive, neg_a, neg_v = losses.alignment_terms(e_a, e_v, mask, neg, neg,
                                                  margin=0.5)
  # Row 0: cos(e_a0, e_v0) = 0 -> L+ = 1; r_a = e_a1 vs e_v0 at 60°: cos 0.5
  # -> max(0, 0.5 - m) = 0; e_a0 vs r_v = e_v1 at 30°: cos c -> c - 0.5.
  # Row 1: e_a1 = e_v1 -> L+ = 0; its negatives mirror row 0's.
  np.testing.assert_allclose(positive, [1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(neg_a, [0.0, c - 0.5], atol=1e-6)
  np.testing.assert_allclose(neg_v, [c - 0.5, 0.0], atol=1e-6)
  total = losses.alignment_loss(e_a, e_v, mask, negatives_a=neg,
                                negatives_v=neg, margin=0.5)
  assert float(total) == pytest.approx((1.0 + 2 * (c - 0.5)) / 2, rel=1e-6)
  # With margin 1 the negatives are ignored (paper Sec 3.4).
  loose = losses.alignment_loss(e_a, e_v, mask, negatives_a=neg,
                                negatives_v=neg, margin=1.0)
  assert float(loose) == pytest.approx(0.5, rel=1e-6)


def test_alignment_loss_masks_padding_and_self_negatives():
  e_a = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
  e_v = jnp.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
  mask = jnp.array([1.0, 1.0, 0.0])
  # Row 1 points at the padding row 2, row 0 at itself: both dropped.
  negatives = jnp.array([0, 2, 0])
  value = losses.alignment_loss(e_a, e_v, mask, negatives_a=negatives,
                                negatives_v=negatives, margin=MARGIN)
  assert float(value) == pytest.approx(0.0, abs=1e-6)
  # Real negative with cos 1: 1 - m = 0.5 per term, 2 terms per row.
  swap = jnp.array([1, 0, 0])
  value = losses.alignment_loss(e_a, e_v, mask, negatives_a=swap,
                                negatives_v=swap, margin=MARGIN)
  assert float(value) == pytest.approx(1.0, rel=1e-6)
  assert float(losses.alignment_loss(
      e_a, e_v, jnp.zeros(3), rng=jax.random.key(0), margin=MARGIN)) == 0.0


def test_alignment_loss_jit_and_finite_gradients():
  rng = np.random.default_rng(0)
  e_a = jnp.asarray(rng.normal(size=(5, 8)), jnp.float32).at[4].set(0.0)
  e_v = jnp.asarray(rng.normal(size=(5, 8)), jnp.float32)
  mask = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0])
  fn = jax.jit(jax.value_and_grad(
      lambda a, v, key: losses.alignment_loss(a, v, mask, rng=key, margin=MARGIN),
      argnums=(0, 1)))
  value, (grad_a, grad_v) = fn(e_a, e_v, jax.random.key(7))
  assert np.isfinite(float(value)) and float(value) > 0
  assert np.all(np.isfinite(grad_a)) and np.all(np.isfinite(grad_v))


def test_alignment_loss_argument_errors():
  e = jnp.eye(2)
  with pytest.raises(ValueError, match='either rng'):
    losses.alignment_loss(e, e, jnp.ones(2), margin=MARGIN)
  with pytest.raises(ValueError, match='either rng'):
    losses.alignment_loss(e, e, jnp.ones(2), rng=jax.random.key(0),
                          negatives_a=jnp.array([1, 0]),
                          negatives_v=jnp.array([1, 0]), margin=MARGIN)
  with pytest.raises(ValueError, match='either rng'):
    losses.alignment_loss(e, e, jnp.ones(2), negatives_a=jnp.array([1, 0]), margin=MARGIN)

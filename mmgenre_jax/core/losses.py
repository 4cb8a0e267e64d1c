"""Losses of the paper's networks: pure, jittable and padding-aware.

Every loss takes `mask`, float [B] (1 for a real row, 0 for a padding row
that fills the last batch to a fixed shape), and returns the mean over the
real rows only; a batch with no real row gives 0, not NaN. Each also has a
`*_per_row` twin returning [B] values (0 on padding rows), for clu's
`metrics.Average.from_output('loss')` with the same mask, which then averages
exactly over the real rows of a whole split.

  LOGISTIC  sigmoid_bce      sigmoid + binary cross-entropy (Sec 5)
  softmax   softmax_ce       single-label MSD-I (Sec 6.2)
  COSINE    cosine_loss      clip((1 - cos(pred, target)) / 2, 0, 1)
                             (docs/fidelity.md)
  alignment alignment_loss   multimodal space with negative sampling (Sec 3.4)

Which loss a network trains with is its target's (core/targets.py) or its
task's (mmgenre_jax/tasks/alignment.py).
"""

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from mmgenre_jax.core import cosine

def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of per-row values over the real rows.

  Args:
    values: float [B].
    mask: float [B], 1 for real rows and 0 for padding.

  Returns:
    Scalar; 0 when no row is real. Padding values never reach the result,
    even when they are not finite.
  """
  mask = jnp.asarray(mask, values.dtype)
  total = jnp.sum(jnp.where(mask > 0, values * mask, 0.0))
  return total / jnp.maximum(jnp.sum(mask), 1.0)


def cosine_loss_per_row(pred: jax.Array, target: jax.Array,
                        mask: jax.Array) -> jax.Array:
  """COSINE loss per row, clip((1 - cos) / 2, 0, 1) (docs/fidelity.md).

  Args:
    pred: float [B, d], the network output.
    target: float [B, d], the item factors.
    mask: float [B].

  Returns:
    float [B] in [0, 1]: 0 for identical directions, 0.5 for orthogonal, 1
    for opposite; 0 on padding rows.
  """
  loss = jnp.clip((1.0 - cosine.similarity(pred, target)) / 2.0, 0.0, 1.0)
  return jnp.where(mask > 0, loss, 0.0)


def cosine_loss(pred: jax.Array, target: jax.Array,
                mask: jax.Array) -> jax.Array:
  """Mean COSINE loss over the real rows; see cosine_loss_per_row."""
  return masked_mean(cosine_loss_per_row(pred, target, mask), mask)


def sigmoid_bce_per_row(logits: jax.Array, labels: jax.Array,
                        mask: jax.Array) -> jax.Array:
  """LOGISTIC loss per row: binary cross-entropy, mean over labels.

  Args:
    logits: float [B, L], pre-sigmoid outputs.
    labels: {0, 1} [B, L], the multi-hot targets (any numeric dtype).
    mask: float [B].

  Returns:
    float [B]; 0 on padding rows.
  """
  loss = optax.sigmoid_binary_cross_entropy(
      logits, jnp.asarray(labels, logits.dtype)).mean(axis=-1)
  return jnp.where(mask > 0, loss, 0.0)


def sigmoid_bce(logits: jax.Array, labels: jax.Array,
                mask: jax.Array) -> jax.Array:
  """Mean LOGISTIC loss over the real rows; see sigmoid_bce_per_row."""
  return masked_mean(sigmoid_bce_per_row(logits, labels, mask), mask)


def softmax_ce_per_row(logits: jax.Array, label_ids: jax.Array,
                       mask: jax.Array) -> jax.Array:
  """Single-label loss per row: softmax cross-entropy.

  Args:
    logits: float [B, C].
    label_ids: int [B], class indices in [0, C); padding rows may hold any
      value (e.g. -1).
    mask: float [B].

  Returns:
    float [B]; 0 on padding rows.
  """
  # A padding row's label id may be out of range: point it at class 0 so the
  # gather stays defined; its loss is then dropped.
  label_ids = jnp.where(mask > 0, label_ids, 0).astype(jnp.int32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, label_ids)
  return jnp.where(mask > 0, loss, 0.0)


def softmax_ce(logits: jax.Array, label_ids: jax.Array,
               mask: jax.Array) -> jax.Array:
  """Mean single-label loss over the real rows; see softmax_ce_per_row."""
  return masked_mean(softmax_ce_per_row(logits, label_ids, mask), mask)


def sample_negatives(rng: jax.Array, mask: jax.Array) -> jax.Array:
  """Draws one negative partner per row among the OTHER real rows (Sec 3.4).

  The real rows are listed in batch order; a real row at position p of that
  list gets the row at position (p + k) mod n, k uniform in [1, n - 1], n the
  number of real rows: uniform over the other real rows, never itself. With a
  single real row there is no other item and the row gets its own index
  (alignment_loss then drops that negative term). A padding row gets a
  uniformly drawn real row (or itself when no row is real).

  Args:
    rng: a PRNG key.
    mask: float [B], 1 for real rows.

  Returns:
    int32 [B] row indices.
  """
  batch = mask.shape[0]
  real = mask > 0
  n = jnp.sum(real.astype(jnp.int32))
  # Real rows first, in batch order (stable sort of the keys 0 real, 1 pad).
  order = jnp.argsort(jnp.where(real, 0, 1), stable=True).astype(jnp.int32)
  position = jnp.zeros(batch, jnp.int32).at[order].set(
      jnp.arange(batch, dtype=jnp.int32))
  u = jax.random.uniform(rng, (batch,))
  rows = jnp.arange(batch, dtype=jnp.int32)

  def draw(count):
    """Uniform int in [0, count), safe for count = 0."""
    k = jnp.floor(u * count).astype(jnp.int32)
    return jnp.clip(k, 0, jnp.maximum(count - 1, 0))

  other = order[(position + 1 + draw(n - 1)) % jnp.maximum(n, 1)]
  any_real = order[draw(n)]
  return jnp.where(real, jnp.where(n > 1, other, rows),
                   jnp.where(n > 0, any_real, rows))


def alignment_terms(
    e_a: jax.Array,
    e_v: jax.Array,
    mask: jax.Array,
    negatives_a: jax.Array,
    negatives_v: jax.Array,
    margin: float,
) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """The three per-row terms of the alignment loss (paper Sec 3.4).

  L+ = 1 - cos(e_a(a), e_v(v)), L_a- = max(0, cos(e_a(r_a), e_v(v)) - m) and
  L_v- = max(0, cos(e_a(a), e_v(r_v)) - m), where r_a = a[negatives_a] and
  r_v = v[negatives_v]. A negative term is 0 when its partner is the row
  itself or a padding row (no other real item to contrast with).

  Args:
    e_a: float [B, D], embeddings of the first modality (audio).
    e_v: float [B, D], embeddings of the second modality (visual / text).
    mask: float [B].
    negatives_a: int [B], row of r_a for each row.
    negatives_v: int [B], row of r_v for each row.
    margin: m in [0, 1].

  Returns:
    (positive, negative_a, negative_v), each float [B], 0 on padding rows.
  """
  rows = jnp.arange(mask.shape[0])
  real = mask > 0
  positive = 1.0 - cosine.similarity(e_a, e_v)
  valid_a = real & real[negatives_a] & (negatives_a != rows)
  valid_v = real & real[negatives_v] & (negatives_v != rows)
  negative_a = jnp.maximum(
      0.0, cosine.similarity(e_a[negatives_a], e_v) - margin)
  negative_v = jnp.maximum(
      0.0, cosine.similarity(e_a, e_v[negatives_v]) - margin)
  return (jnp.where(real, positive, 0.0), jnp.where(valid_a, negative_a, 0.0),
          jnp.where(valid_v, negative_v, 0.0))


def alignment_loss_per_row(e_a: jax.Array,
                           e_v: jax.Array,
                           mask: jax.Array,
                           *,
                           rng: Optional[jax.Array] = None,
                           negatives_a: Optional[jax.Array] = None,
                           negatives_v: Optional[jax.Array] = None,
                           margin: float) -> jax.Array:
  """Alignment loss L = L+ + L_a- + L_v- per row (paper Sec 3.4).

  Pass either `rng` (two independent draws of sample_negatives, one per
  modality, as in the paper) or both `negatives_a` and `negatives_v`.

  Args:
    e_a: float [B, D].
    e_v: float [B, D].
    mask: float [B].
    rng: PRNG key for the negatives.
    negatives_a: int [B], explicit rows of r_a.
    negatives_v: int [B], explicit rows of r_v.
    margin: m (the paper's 0.5: config.model.margin, models/specs.py).

  Returns:
    float [B], in [0, 2 + 2 (1 - m)]; 0 on padding rows.
  """
  if (negatives_a is None) != (negatives_v is None) or (
      (rng is None) == (negatives_a is None)):
    raise ValueError(
        'alignment_loss needs either rng (negatives are sampled) or both '
        'negatives_a and negatives_v, not both kinds and not neither.')
  if rng is not None:
    rng_a, rng_v = jax.random.split(rng)
    negatives_a = sample_negatives(rng_a, mask)
    negatives_v = sample_negatives(rng_v, mask)
  positive, negative_a, negative_v = alignment_terms(
      e_a, e_v, mask, negatives_a, negatives_v, margin)
  return positive + negative_a + negative_v


def alignment_loss(e_a: jax.Array, e_v: jax.Array, mask: jax.Array,
                   **kwargs) -> jax.Array:
  """Mean alignment loss over the real rows; see alignment_loss_per_row."""
  return masked_mean(alignment_loss_per_row(e_a, e_v, mask, **kwargs), mask)

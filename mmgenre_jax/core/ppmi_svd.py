"""COSINE targets: PPMI-SVD label factorisation (Oramas et al. 2018, Sec 5.1).

Sec 5.1, 7.3. M is the binary items x labels matrix of the training + validation
albums. The PPMI of two labels is

  X(g_i, g_j) = max(0, log(P(G_i, G_j) / (P(G_i) P(G_j)))),
  P(G_i, G_j) = |G_i ∩ G_j| / |I|,  P(G_i) = |G_i| / |I|,

with X = 0 where the two labels never co-occur (log 0 would be -inf). The SVD
X ≈ U Σ V gives the label factors C_d = U_d sqrt(Σ_d) [labels, d] (d = 50 in
the paper) and the item factors F_d = M C_d [items, d] (each item is the sum
of its labels' factors), L2-normalised per item: the regression targets of
the COSINE networks. A prediction scores label j by cos(prediction, C_d[j]).

  result = targets.factorize(label_matrix, dim=50)   # M: [items, labels]

Pure functions on arrays; the factor files are written and read by
mmgenre_jax/workdir.py (`mmgenre factorize` is mmgenre_jax/cli/factorize.py).
"""

import dataclasses

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.core import cosine

# Dimension of the label-factor space (paper Sec 5.1; d = 50, Sec 7.3).
PAPER_DIM = 50
# Sec 7.3: the label factorisation uses the training + validation albums only,
# so the test albums' labels never shape the target space.
FACTORIZE_SPLITS = ('train', 'val')


@dataclasses.dataclass(frozen=True)
class LabelFactorization:
  """The result of `factorize`.

  Attributes:
    label_factors: C_d = U_d sqrt(Σ_d), float64 [num_labels, d].
    context_factors: V_d sqrt(Σ_d), float64 [num_labels, d]; with d = rank,
      label_factors @ context_factors.T reconstructs the PPMI matrix.
    singular_values: the top d singular values Σ_d, float64 [d], descending.
    item_factors: L2-normalised F_d = M C_d, float64 [num_items, d]; rows of
      items without any label are zero.
    ppmi: the PPMI matrix X, float64 [num_labels, num_labels].
    num_empty_items: items without any label (zero rows of item_factors).
  """
  label_factors: np.ndarray
  context_factors: np.ndarray
  singular_values: np.ndarray
  item_factors: np.ndarray
  ppmi: np.ndarray
  num_empty_items: int


def _binary_matrix(label_matrix, name: str = 'label_matrix') -> np.ndarray:
  """Checks and converts an items x labels 0/1 matrix to float64."""
  m = np.asarray(label_matrix)
  if m.ndim != 2:
    raise ValueError(
        f'{name} must be a 2-D items x labels matrix, got shape {m.shape}.')
  m = m.astype(np.float64)
  if not np.all((m == 0) | (m == 1)):
    bad = m[(m != 0) & (m != 1)][:5]
    raise ValueError(
        f'{name} must be binary (0/1), found values such as {bad.tolist()}; '
        'pass the multi-hot label matrix, not scores or counts.')
  return m


def ppmi(label_matrix) -> np.ndarray:
  """Positive pointwise mutual information between labels (Sec 5.1, Eq. 1).

  Args:
    label_matrix: binary items x labels matrix M (numpy or jax), [I, L].

  Returns:
    X, float64 [L, L], symmetric and >= 0. X[i, j] = 0 where labels i and j
    share no item (including every row and column of an unused label).
  """
  m = _binary_matrix(label_matrix)
  num_items = m.shape[0]
  if num_items == 0:
    raise ValueError('label_matrix has no items (rows); PPMI needs at least '
                     'one labelled item.')
  joint = m.T @ m / num_items              # P(G_i, G_j)
  marginal = np.diag(joint)                # P(G_i) = P(G_i, G_i)
  expected = np.outer(marginal, marginal)  # P(G_i) P(G_j)
  # joint > 0 implies both marginals > 0, so the ratio is finite there; the
  # other entries (no co-occurrence) are 0 by definition.
  cooccur = joint > 0
  pmi = np.zeros_like(joint)
  pmi[cooccur] = np.log(joint[cooccur] / expected[cooccur])
  return np.maximum(pmi, 0.0)


def _fix_signs(u: np.ndarray, v: np.ndarray):
  """Makes the SVD deterministic: each column's largest |U| entry is > 0.

  SVD columns are defined up to a joint sign flip of (U[:, k], V[:, k]); this
  fixes it so that repeated runs and platforms give the same factors.
  """
  pivot = np.argmax(np.abs(u), axis=0)
  signs = np.sign(u[pivot, np.arange(u.shape[1])])
  signs[signs == 0] = 1.0
  return u * signs, v * signs


def item_factors(label_matrix, label_factors):
  """Item targets F_d = M C_d, L2-normalised per item (Sec 5, 5.1).

  Works on NumPy arrays (returns NumPy) and on jax arrays, also under jit
  (returns jax), so a train step can turn multi-hot labels into COSINE targets.
  An item with no label gets a zero row (never NaN).

  Args:
    label_matrix: binary items x labels matrix M, [B, L].
    label_factors: C_d, float [L, d].

  Returns:
    float [B, d]; each row has norm 1, or 0 for an item without labels.
  """
  if isinstance(label_matrix, jax.Array) or isinstance(label_factors,
                                                       jax.Array):
    f = jnp.asarray(label_matrix, jnp.float32) @ jnp.asarray(
        label_factors, jnp.float32)
    return cosine.l2_normalize(f)
  f = np.asarray(label_matrix, np.float64) @ np.asarray(label_factors,
                                                         np.float64)
  norms = np.linalg.norm(f, axis=-1, keepdims=True)
  return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def factorize(label_matrix, dim: int = PAPER_DIM) -> LabelFactorization:
  """PPMI-SVD label factors and L2-normalised item factors (Sec 5.1).

  Args:
    label_matrix: binary items x labels matrix M (numpy or jax), [I, L]; the
      training + validation items.
    dim: d, the number of factors, 1 <= d <= L.

  Returns:
    A LabelFactorization. Signs are fixed so that the largest-magnitude entry
    of each column of U is positive (deterministic output).

  Raises:
    ValueError: if M is not a binary matrix or d is out of range.
  """
  m = _binary_matrix(label_matrix)
  num_labels = m.shape[1]
  if not 1 <= dim <= num_labels:
    raise ValueError(
        f'dim d={dim} must be between 1 and the number of labels '
        f'({num_labels}): the PPMI matrix is {num_labels} x {num_labels}, so '
        f'SVD gives at most {num_labels} factors. Pass --dim <= {num_labels} '
        '(the paper uses 50 factors for 250 labels).')
  x = ppmi(m)
  # X is symmetric, so U and V span the same space; the SVD (not an
  # eigendecomposition) follows the paper and keeps singular values >= 0.
  u, s, vt = np.linalg.svd(x)
  u, v = _fix_signs(u[:, :dim], vt[:dim].T)
  root = np.sqrt(s[:dim])
  label_factors = u * root
  context_factors = v * root
  # NumPy's matrix_rank tolerance: S.max() * N * eps.
  rank = int(np.sum(s > s[0] * num_labels * np.finfo(np.float64).eps))
  if dim > rank:
    logging.warning(
        'The PPMI matrix has rank %d < d=%d: the last %d label-factor '
        'dimensions are (numerically) zero.', rank, dim, dim - rank)
  has_labels = m.sum(axis=1) > 0
  empty = int(np.sum(~has_labels))
  if empty:
    logging.warning('%d item(s) have no label: their item factors are zero '
                    'rows.', empty)
  items = item_factors(m, label_factors)
  lost = int(np.sum(has_labels & ~items.any(axis=1)))
  if lost:
    logging.warning(
        '%d labelled item(s) have a zero item factor: their labels lie '
        'outside the top d=%d factors; raise d.', lost, dim)
  return LabelFactorization(
      label_factors=label_factors,
      context_factors=context_factors,
      singular_values=s[:dim],
      item_factors=items,
      ppmi=x,
      num_empty_items=empty)

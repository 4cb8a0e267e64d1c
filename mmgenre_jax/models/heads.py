"""The output layer shared by every network of the paper.

SPEC §3: LOGISTIC and single-label outputs are one Dense layer whose raw
logits go to the loss (sigmoid / softmax are applied there); the COSINE output
is a linear Dense layer followed by L2 normalisation, so predictions live on
the unit sphere of the label-factor space (the released code's sigmoid there
is a bug, SPEC §3).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# Output configurations of the paper (Sec 5): LOGISTIC (multi-label, sigmoid +
# binary cross-entropy), COSINE (label factors, cosine proximity) and the
# single-label softmax of the MSD-I experiments (Sec 6).
TARGETS = ('logistic', 'softmax', 'cosine')

# Guards the L2 normalisation against a zero vector; squared, so that the
# gradient at 0 stays finite.
L2_EPSILON = 1e-12


def check_target(target: str) -> str:
  """Returns `target` if it is a known output configuration.

  Args:
    target: one of TARGETS.

  Returns:
    The same string.

  Raises:
    ValueError: naming the bad value and the valid ones.
  """
  if target not in TARGETS:
    raise ValueError(
        f'Unknown target {target!r}; use one of {TARGETS} (set '
        'config.model.target).')
  return target


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """Scales vectors to unit L2 norm; a zero vector stays zero.

  Args:
    x: float array [..., D].
    axis: the vector axis.

  Returns:
    Array of the same shape and dtype as `x`, each vector of norm 1 (or 0).
  """
  squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(squared, L2_EPSILON * L2_EPSILON))


class OutputHead(nn.Module):
  """Dense output layer; L2-normalised for the COSINE target.

  Attributes:
    num_outputs: K, labels (LOGISTIC, softmax) or factor dimensions (COSINE).
    target: one of TARGETS.
    param_dtype: dtype of the kernel and bias.
  """
  num_outputs: int
  target: str
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps representations to outputs.

    Args:
      x: float [B, R], the representation.

    Returns:
      float32 [B, K]: raw logits ('logistic', 'softmax') or unit vectors
      ('cosine').
    """
    check_target(self.target)
    # The head stays in float32 even when the body runs in bfloat16: the
    # losses and the cosine normalisation are sensitive to rounding.
    y = nn.Dense(self.num_outputs, dtype=jnp.float32,
                 param_dtype=self.param_dtype, name='dense')(x)
    if self.target == 'cosine':
      y = l2_normalize(y)
    return y

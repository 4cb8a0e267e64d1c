"""Small pure functions on arrays shared by the networks, losses and targets.

The core layer: it imports neither models nor data. The target names live
here because the losses, the targets and the output heads all dispatch on
them.
"""

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

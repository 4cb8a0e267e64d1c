"""The cosine space: L2 normalisation and cosine similarity, safe at zero.

What the COSINE target (Sec 5.1), the fusion network's normalised inputs
(Sec 4) and the alignment space (Sec 3.4) all compute. Pure functions on
arrays, jittable, with a finite value and gradient for a zero vector.
"""

import jax
import jax.numpy as jnp

# Guards the L2 normalisation against a zero vector; squared, so that the
# gradient at 0 stays finite.
L2_EPSILON = 1e-12


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


def similarity(a: jax.Array, b: jax.Array) -> jax.Array:
  """Row-wise cosine similarity with a finite value and gradient at 0.

  Args:
    a: float [..., D].
    b: float [..., D].

  Returns:
    float [...] in [-1, 1]; 0 when either vector is zero.
  """
  return jnp.sum(l2_normalize(a) * l2_normalize(b), axis=-1)

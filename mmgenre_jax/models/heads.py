"""The output layer shared by every network of the paper.

Sec 4, 5: LOGISTIC and single-label outputs are one Dense layer whose raw
logits go to the loss (sigmoid / softmax are applied there); the COSINE output
is a linear Dense layer followed by L2 normalisation, so predictions live on
the unit sphere of the label-factor space (the released code's sigmoid there
is a bug; docs/fidelity.md).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmgenre_jax.core import cosine
from mmgenre_jax.core import targets


class OutputHead(nn.Module):
  """Dense output layer; L2-normalised for the COSINE target.

  Attributes:
    num_outputs: K, labels (LOGISTIC, softmax) or factor dimensions (COSINE).
    target: one of targets.NAMES.
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
    target = targets.get(self.target)
    # The head stays in float32 even when the body runs in bfloat16: the
    # losses and the cosine normalisation are sensitive to rounding.
    y = nn.Dense(self.num_outputs, dtype=jnp.float32,
                 param_dtype=self.param_dtype, name='dense')(x)
    if target.unit_output:
      y = cosine.l2_normalize(y)
    return y

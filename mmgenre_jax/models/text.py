"""Feed-forward networks: the text MLP and the TIMBRE-MLP audio baseline.

TEXT (paper Sec 3.3, 7.3.2): tf-idf [B, 10000] -> dropout(0.5) -> Dense
2048 ReLU -> dropout(0.5) -> Dense 2048 ReLU -> dropout(0.5) -> OutputHead.
The last hidden layer is the text representation.

TIMBRE-MLP (Sec 7.3.1): 48-d MSD timbre statistics "fed into a feed forward
network as the one described in Section 4", i.e. the fusion network whose
"input layer is directly connected to the output layer". So it has no hidden
layer, which matches its 0.01M parameters in Table 6 (48 x 250 + 250 =
12,250); a hidden layer of any useful width would not (1024 units: 0.3M).
Set config.model.hidden_units to add hidden layers anyway.
"""

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmgenre_jax.core import targets
from mmgenre_jax.models import heads
from mmgenre_jax.models import specs

class MLP(nn.Module):
  """dropout -> [Dense -> ReLU -> dropout] * n -> OutputHead.

  Attributes:
    hidden_units: width of each hidden layer; () connects the input directly
      to the output layer.
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
    dropout: rate after the input and after each hidden layer (0 disables).
    dtype: computation dtype of the hidden layers (the head stays float32).
  """
  hidden_units: Sequence[int]
  num_outputs: int
  target: str
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> Mapping[str, jax.Array]:
    """Classifies feature vectors.

    Args:
      x: float [B, D] (tf-idf D=10000, timbre statistics D=48).
      train: enables dropout (needs the 'dropout' rng).

    Returns:
      {'output': float32 [B, K], 'representation': [B, R]}, R the last
      hidden width (2048 for TEXT) or D when there is no hidden layer.
    """
    if x.ndim != 2:
      raise ValueError(
          f'MLP expects [batch, features] inputs, got shape {x.shape}.')
    x = x.astype(self.dtype)
    if self.dropout > 0:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    for i, width in enumerate(self.hidden_units):
      x = nn.relu(nn.Dense(width, dtype=self.dtype, name=f'hidden_{i}')(x))
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    output = heads.OutputHead(self.num_outputs, self.target, name='head')(x)
    return {'output': output, 'representation': x}


def create_text_mlp(*, num_outputs: int, target: str,
                    hidden_units: Sequence[int] = specs.TEXT_HIDDEN_UNITS,
                    dropout: float = specs.TEXT_DROPOUT,
                    dtype: Any = jnp.float32) -> MLP:
  """The paper's text network (Sec 3.3); arguments as in MLP."""
  return MLP(hidden_units=tuple(hidden_units), num_outputs=num_outputs,
             target=targets.get(target).name, dropout=dropout, dtype=dtype)


def create_timbre_mlp(*, num_outputs: int, target: str,
                      hidden_units: Sequence[int] = specs.TIMBRE_HIDDEN_UNITS,
                      dropout: float = specs.TIMBRE_DROPOUT,
                      dtype: Any = jnp.float32) -> MLP:
  """The TIMBRE-MLP baseline (Sec 7.3.1); arguments as in MLP."""
  return MLP(hidden_units=tuple(hidden_units), num_outputs=num_outputs,
             target=targets.get(target).name, dropout=dropout, dtype=dtype)

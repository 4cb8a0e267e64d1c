"""Late-fusion network (paper Sec 4, Sec 6.2, Sec 7.4).

Each modality's representation is L2-normalised, the vectors are
concatenated in the fixed order of specs.MODALITY_ORDER, dropout is applied, and
one Dense layer (OutputHead) predicts the labels: "the input layer is directly
connected to the output layer" (Sec 4).

  model = fusion.Fusion(modalities=('audio', 'text'), num_outputs=250,
                        target='logistic')
  out = model.apply(variables, {'audio': a, 'text': t})
"""

from typing import Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmgenre_jax.core import cosine
from mmgenre_jax.core import targets
from mmgenre_jax.models import heads
from mmgenre_jax.models import specs

class Fusion(nn.Module):
  """L2-normalise, concatenate, dropout, Dense.

  Attributes:
    modalities: the modality vectors used, a subset of specs.MODALITY_ORDER
      (any order given; they are concatenated in that order).
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
    dropout: rate on the concatenated vector; None takes the paper's
      specs.FUSION_DROPOUT[target].
  """
  modalities: Sequence[str]
  num_outputs: int
  target: str
  dropout: Optional[float] = None

  @nn.compact
  def __call__(self, inputs: Mapping[str, jax.Array], train: bool = False
               ) -> Mapping[str, jax.Array]:
    """Predicts labels from several modality representations.

    Args:
      inputs: modality name -> float [B, D_m]; must hold every name in
        `modalities` (extra keys are ignored).
      train: enables dropout (needs the 'dropout' rng).

    Returns:
      {'output': float32 [B, K], 'representation': [B, sum D_m]}, the
      representation being the normalised concatenation.

    Raises:
      KeyError: naming a modality of `modalities` absent from `inputs`.
    """
    targets.get(self.target)
    vectors = []
    for name in specs.ordered_modalities(self.modalities):
      if name not in inputs:
        raise KeyError(
            f'Fusion input lacks modality {name!r} (model modalities '
            f'{tuple(self.modalities)}, inputs have {sorted(inputs)}); '
            f'extract its features or drop it from config.model.modalities.')
      vectors.append(cosine.l2_normalize(jnp.asarray(inputs[name],
                                                    jnp.float32)))
    x = jnp.concatenate(vectors, axis=-1)
    rate = specs.FUSION_DROPOUT[self.target] if self.dropout is None else (
        self.dropout)
    if rate > 0:
      x = nn.Dropout(rate, deterministic=not train)(x)
    output = heads.OutputHead(self.num_outputs, self.target, name='head')(x)
    return {'output': output, 'representation': x}

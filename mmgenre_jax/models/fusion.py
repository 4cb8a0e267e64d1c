"""Late-fusion network (paper Sec 4, Sec 7.4; SPEC §4).

Each modality's representation is L2-normalised, the vectors are
concatenated in the fixed order of MODALITY_ORDER, dropout is applied, and
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

from mmgenre_jax.models import heads

# Concatenation order of the modality vectors, whichever subset is used:
# CNN audio, text MLP, ResNet image, and the two alignment-space embeddings
# (Sec 3.4, MM_AUDIO / MM_VISUAL).
MODALITY_ORDER = ('audio', 'text', 'image', 'mm_audio', 'mm_visual')

# Dropout on the concatenated input, per target: single-label softmax 0.5
# (Sec 6.2, "dropout applied after the input layer with a factor of 50%"),
# LOGISTIC none and COSINE 0.7 (Sec 7.4, "dropout of 0.7 is applied in the
# COSINE configuration").
FUSION_DROPOUT = {'softmax': 0.5, 'logistic': 0.0, 'cosine': 0.7}


def ordered_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
  """Validates modality names and sorts them into MODALITY_ORDER.

  Args:
    modalities: names, any order, each in MODALITY_ORDER.

  Returns:
    The same names in MODALITY_ORDER.

  Raises:
    ValueError: on an empty, unknown or repeated name.
  """
  if isinstance(modalities, str):
    modalities = modalities.split('+')
  unknown = [m for m in modalities if m not in MODALITY_ORDER]
  if unknown or not modalities or len(set(modalities)) != len(modalities):
    raise ValueError(
        f'Bad fusion modalities {tuple(modalities)}: give one or more '
        f'distinct names from {MODALITY_ORDER} (config.model.modalities).')
  return tuple(m for m in MODALITY_ORDER if m in modalities)


class Fusion(nn.Module):
  """L2-normalise, concatenate, dropout, Dense.

  Attributes:
    modalities: the modality vectors used, a subset of MODALITY_ORDER (any
      order given; they are concatenated in MODALITY_ORDER).
    num_outputs: K of the output layer.
    target: one of heads.TARGETS.
    dropout: rate on the concatenated vector; None takes the paper's
      FUSION_DROPOUT[target].
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
    heads.check_target(self.target)
    vectors = []
    for name in ordered_modalities(self.modalities):
      if name not in inputs:
        raise KeyError(
            f'Fusion input lacks modality {name!r} (model modalities '
            f'{tuple(self.modalities)}, inputs have {sorted(inputs)}); '
            f'extract its features or drop it from config.model.modalities.')
      vectors.append(heads.l2_normalize(jnp.asarray(inputs[name],
                                                    jnp.float32)))
    x = jnp.concatenate(vectors, axis=-1)
    rate = FUSION_DROPOUT[self.target] if self.dropout is None else (
        self.dropout)
    if rate > 0:
      x = nn.Dropout(rate, deterministic=not train)(x)
    output = heads.OutputHead(self.num_outputs, self.target, name='head')(x)
    return {'output': output, 'representation': x}

"""Multimodal alignment space (paper Sec 3.4).

Two towers map a song's audio and visual representations into a shared
space: e_a(a) = W_a2 tanh(W_a1 a), e_v(v) = W_v2 tanh(W_v1 v). The loss
(cosine distance plus margin-ranked negatives, mmgenre_jax.core.losses) works on
the raw embeddings; they are not normalised here. At test time each tower runs
alone: MM_AUDIO = embed_audio(a) needs no image, MM_VISUAL = embed_visual(v)
needs no audio (Sec 6.2).

  model = alignment.AlignmentNet()
  variables = model.init(rng, a, v)
  mm_audio = model.apply(variables, a, method='embed_audio')
"""

from typing import Mapping

import flax.linen as nn
import jax

from mmgenre_jax.models import specs

class AlignmentNet(nn.Module):
  """Two 2-layer tanh towers into a shared embedding space.

  Attributes:
    hidden_dim: output width of W_a1 and W_v1.
    embed_dim: output width of W_a2 and W_v2 (the embedding).
    use_bias: adds biases to the four dense layers.
  """
  hidden_dim: int = specs.HIDDEN_DIM
  embed_dim: int = specs.EMBED_DIM
  use_bias: bool = specs.USE_BIAS

  def setup(self):
    self.audio_hidden = nn.Dense(self.hidden_dim, use_bias=self.use_bias)
    self.audio_embed = nn.Dense(self.embed_dim, use_bias=self.use_bias)
    self.visual_hidden = nn.Dense(self.hidden_dim, use_bias=self.use_bias)
    self.visual_embed = nn.Dense(self.embed_dim, use_bias=self.use_bias)

  def embed_audio(self, audio: jax.Array) -> jax.Array:
    """e_a(a) = W_a2 tanh(W_a1 a).

    Args:
      audio: float [B, Da], audio representations (CNN_AUDIO).

    Returns:
      float [B, embed_dim] (MM_AUDIO), not normalised.
    """
    return self.audio_embed(nn.tanh(self.audio_hidden(audio)))

  def embed_visual(self, visual: jax.Array) -> jax.Array:
    """e_v(v) = W_v2 tanh(W_v1 v).

    Args:
      visual: float [B, Dv], visual representations (CNN_VISUAL).

    Returns:
      float [B, embed_dim] (MM_VISUAL), not normalised.
    """
    return self.visual_embed(nn.tanh(self.visual_hidden(visual)))

  def __call__(self, audio: jax.Array, visual: jax.Array,
               train: bool = False) -> Mapping[str, jax.Array]:
    """Embeds both modalities of the same songs.

    Args:
      audio: float [B, Da].
      visual: float [B, Dv].
      train: accepted for a uniform model interface; there is no dropout.

    Returns:
      {'audio': [B, embed_dim], 'visual': [B, embed_dim]}.
    """
    del train  # Unused: Sec 3.4 has no dropout.
    return {'audio': self.embed_audio(audio),
            'visual': self.embed_visual(visual)}

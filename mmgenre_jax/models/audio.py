"""Audio CNNs on CQT patches (paper Sec 3.1, 6.2, 7.3.1; SPEC §4).

Every network is a stack of blocks conv (valid padding) -> ReLU -> max-pool
(stride = pool size, floor) -> dropout, then flatten -> OutputHead. There is
no batch norm (SPEC §4 [code]). The flattened features feeding the output layer
are the audio representation (Sec 3.1). Layout is NHWC: [batch, time, freq,
channel].

  model = audio.create_audio_cnn('high-4x70', num_outputs=50, target='cosine')
  variables = model.init(rngs, jnp.zeros((1,) + audio.INPUT_SHAPE))
"""

import dataclasses
from typing import Any, Mapping, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmgenre_jax.models import heads

# One CQT patch (SPEC §2, Sec 7.3.1): int(15 s * 22050 Hz / 1024 hop) = 322
# frames x 96 bins (8 octaves of 12 bins), one channel.
INPUT_SHAPE = (322, 96, 1)

Pair = Tuple[int, int]


# How convs whose kernel spans at least half the frequency bins are computed
# (config.model.conv_layout). 'freq_channels' runs them as a 1-D convolution
# over time with the bins as channels (FreqConv): the same parameters and
# outputs, 13x faster forward+backward for the 4x70 first layer on XLA:CPU
# (BENCHMARKS.md, benchmarks/conv_layers.py). 'nhwc' keeps nn.Conv, the
# choice benchmarks/gpu.sh compares on accelerators.
CONV_LAYOUTS = ('freq_channels', 'nhwc')


class FreqConv(nn.Module):
  """A (kt, kf) valid conv over [B, T, F, C] computed as a 1-D conv over time.

  The F x C input values of a frame become the channels of a 1-D convolution
  whose weight is the block-Toeplitz expansion of the 2-D kernel: output
  position p (of P = F - kf + 1) sees bins p..p+kf-1. Parameters are the 2-D
  kernel [kt, kf, C, features] and bias [features] of nn.Conv (same names,
  shapes and initialisers), so checkpoints are interchangeable with
  nn.Conv's. With kf = F (4x96, or the 4x6 second layer of 4x70) P = 1 and
  this is a plain 1-D convolution; for the 4x70 first layer P = 27 and the
  expanded weight is 70/96 = 73 % non-zero (1.37x the arithmetic, still far
  faster on CPU than XLA's one-input-channel 2-D conv).
  """
  features: int
  kernel_size: Pair
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [B, T, F, C] -> [B, T - kt + 1, F - kf + 1, features]."""
    batch, _, freq, channels = x.shape
    kt, kf = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (kt, kf, channels, self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,),
                      jnp.float32)
    positions = freq - kf + 1
    if positions == 1:
      weight = kernel.reshape(kt, kf * channels, self.features)
    else:
      weight = jnp.stack(
          [jnp.pad(kernel, ((0, 0), (p, freq - kf - p), (0, 0), (0, 0)))
           for p in range(positions)], axis=3)  # [kt, F, C, P, features]
      weight = weight.reshape(kt, freq * channels, positions * self.features)
    y = jax.lax.conv_general_dilated(
        x.reshape(batch, x.shape[1], freq * channels).astype(self.dtype),
        weight.astype(self.dtype), (1,), 'VALID',
        dimension_numbers=('NWC', 'WIO', 'NWC'))
    y = y.reshape(batch, y.shape[1], positions, self.features)
    return y + bias.astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class AudioCNNSpec:
  """One row of AUDIO_CNN_TABLE.

  Attributes:
    kernels: conv kernel (time, freq) per block.
    filters: output channels per block.
    pools: max-pool window = stride (time, freq) per block; None for no pool.
    dropout: target -> dropout rate after each block; a target not named
      gets no dropout.
  """
  kernels: Tuple[Pair, ...]
  filters: Tuple[int, ...]
  pools: Tuple[Optional[Pair], ...]
  dropout: Mapping[str, float]


# Every architecture number of the audio CNNs, one row per network. MuMu rows
# ('<width>-<kernels>'): paper Sec 7.3.1 and Table 5 (filter and max-pool
# sizes); LOW = 64,128,128,64 and HIGH = 256,512,1024,1024 filters; "dropout
# regularization only helps in the HIGH plus COSINE configurations ... a factor
# of 0.5", none in the others. 'msdi' row: Sec 6.2 (64,128,256 filters, 4-frame
# time convolutions, time pools 4,4,2, "dropout of 0.5 is applied to all
# layers", flatten 2048).
AUDIO_CNN_TABLE = {
    'low-3x3': AudioCNNSpec(
        kernels=((3, 3), (3, 3), (3, 3), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 2), (4, 2), (4, 1), (4, 5)),
        dropout={}),
    'high-3x3': AudioCNNSpec(
        kernels=((3, 3), (3, 3), (3, 3), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 2), (4, 2), (4, 1), (4, 5)),
        dropout={'cosine': 0.5}),
    'low-4x96': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 1), (4, 1), (4, 1), None),
        dropout={}),
    'high-4x96': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 1), (4, 1), (4, 1), None),
        dropout={'cosine': 0.5}),
    'low-4x70': AudioCNNSpec(
        kernels=((4, 70), (4, 6), (4, 1), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 4), (4, 1), (4, 1), None),
        dropout={}),
    'high-4x70': AudioCNNSpec(
        kernels=((4, 70), (4, 6), (4, 1), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 4), (4, 1), (4, 1), None),
        dropout={'cosine': 0.5}),
    'msdi': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1)),
        filters=(64, 128, 256),
        pools=((4, 1), (4, 1), (2, 1)),
        dropout={'softmax': 0.5, 'logistic': 0.5, 'cosine': 0.5}),
}

# The MuMu variants are AUDIO_CNN_TABLE['<width>-<kernels>'].
WIDTHS = ('low', 'high')
KERNEL_FAMILIES = ('3x3', '4x96', '4x70')


class AudioCNN(nn.Module):
  """Configurable conv -> ReLU -> max-pool -> dropout stack plus output head.

  Attributes:
    kernels: conv kernel (time, freq) per block.
    filters: output channels per block.
    pools: max-pool window = stride per block, or None for no pooling.
    num_outputs: K of the output layer.
    target: one of heads.TARGETS.
    dropout: rate after each block (0 disables it).
    dtype: computation dtype of the conv blocks (the head stays float32).
    conv_layout: one of CONV_LAYOUTS; how wide-kernel convs are computed
      (the parameters and outputs are the same either way).
  """
  kernels: Sequence[Pair]
  filters: Sequence[int]
  pools: Sequence[Optional[Pair]]
  num_outputs: int
  target: str
  dropout: float = 0.0
  dtype: Any = jnp.float32
  conv_layout: str = 'freq_channels'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> Mapping[str, jax.Array]:
    """Classifies CQT patches.

    Args:
      x: float [B, T, F, 1], standardised CQT patches (T=322, F=96 in the
        paper; any size that survives the valid convs and pools works).
      train: enables dropout (needs the 'dropout' rng).

    Returns:
      {'output': float32 [B, K], 'representation': [B, R]} where R is the
      flattened size of the last block (4096 for HIGH-4x70, 2048 for MSD-I).
    """
    if not len(self.kernels) == len(self.filters) == len(self.pools):
      raise ValueError(
          f'AudioCNN needs one kernel, filter count and pool per block; got '
          f'{len(self.kernels)} kernels, {len(self.filters)} filters, '
          f'{len(self.pools)} pools.')
    if x.ndim != 4:
      raise ValueError(
          f'AudioCNN expects [batch, time, freq, 1] patches, got shape '
          f'{x.shape}; add the channel axis with x[..., None].')
    if self.conv_layout not in CONV_LAYOUTS:
      raise ValueError(f'Unknown conv_layout {self.conv_layout!r}; use one of '
                       f'{CONV_LAYOUTS}.')
    x = x.astype(self.dtype)
    for i, (kernel, features, pool) in enumerate(
        zip(self.kernels, self.filters, self.pools)):
      wide = kernel[1] > 1 and 2 * kernel[1] >= x.shape[2]
      if wide and self.conv_layout == 'freq_channels':
        x = FreqConv(features, tuple(kernel), dtype=self.dtype,
                     name=f'conv_{i}')(x)
      else:
        x = nn.Conv(features, tuple(kernel), padding='VALID',
                    dtype=self.dtype, name=f'conv_{i}')(x)
      x = nn.relu(x)
      if pool is not None:
        x = nn.max_pool(x, tuple(pool), strides=tuple(pool), padding='VALID')
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    representation = x.reshape((x.shape[0], -1))
    output = heads.OutputHead(self.num_outputs, self.target,
                              name='head')(representation)
    return {'output': output, 'representation': representation}


def variant_dropout(variant: str, target: str) -> float:
  """The paper's dropout rate for a table row and an output target.

  Args:
    variant: a key of AUDIO_CNN_TABLE.
    target: one of heads.TARGETS.

  Returns:
    The rate applied after each block.
  """
  return get_spec(variant).dropout.get(heads.check_target(target), 0.0)


def get_spec(variant: str) -> AudioCNNSpec:
  """Looks up a row of AUDIO_CNN_TABLE, with an error listing valid names."""
  if variant not in AUDIO_CNN_TABLE:
    raise ValueError(
        f'Unknown audio CNN variant {variant!r}; use one of '
        f'{sorted(AUDIO_CNN_TABLE)} (config.model.width + "-" + '
        'config.model.kernels).')
  return AUDIO_CNN_TABLE[variant]


def representation_size(variant: str,
                        input_shape: Sequence[int] = INPUT_SHAPE) -> int:
  """Flattened feature size R of a table network, by valid-padding arithmetic.

  Args:
    variant: a key of AUDIO_CNN_TABLE.
    input_shape: (time, freq, channels) of one patch.

  Returns:
    R, e.g. 4096 for 'high-4x70' (322x96 -> 319x27 -> 79x6 -> 76x1 -> 19 ->
    16 -> 4 -> 4 frames x 1024 channels).
  """
  spec = get_spec(variant)
  time, freq = int(input_shape[0]), int(input_shape[1])
  for kernel, pool in zip(spec.kernels, spec.pools):
    time, freq = time - kernel[0] + 1, freq - kernel[1] + 1
    if pool is not None:
      time, freq = time // pool[0], freq // pool[1]
    if time < 1 or freq < 1:
      raise ValueError(
          f'Input {tuple(input_shape)} is too small for audio CNN {variant!r}.')
  return time * freq * spec.filters[-1]


def create_audio_cnn(variant: str, *, num_outputs: int, target: str,
                     dropout: Optional[float] = None,
                     dtype: Any = jnp.float32,
                     conv_layout: str = 'freq_channels') -> AudioCNN:
  """Builds a named audio CNN of the paper.

  Args:
    variant: '<width>-<kernels>' ('high-4x70', 'low-3x3', ...) or 'msdi'.
    num_outputs: K of the output layer.
    target: one of heads.TARGETS.
    dropout: overrides the paper's rate (variant_dropout) when not None.
    dtype: computation dtype of the conv blocks.
    conv_layout: one of CONV_LAYOUTS.

  Returns:
    An unbound AudioCNN.
  """
  spec = get_spec(variant)
  if dropout is None:
    dropout = variant_dropout(variant, target)
  return AudioCNN(kernels=spec.kernels, filters=spec.filters,
                  pools=spec.pools, dropout=dropout, num_outputs=num_outputs,
                  target=heads.check_target(target), dtype=dtype,
                  conv_layout=conv_layout)

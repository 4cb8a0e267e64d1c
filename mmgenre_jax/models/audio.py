"""Audio CNNs on CQT patches (paper Sec 3.1, 6.2, 7.3.1, Table 5).

Every network is a stack of blocks conv (valid padding) -> ReLU -> max-pool
(stride = pool size, floor) -> dropout, then flatten -> OutputHead (ConvBlock
computes the same block in a faster order). There is no batch norm (the
authors' code; docs/fidelity.md). The flattened features feeding the output
layer are the audio representation (Sec 3.1). Layout is NHWC: [batch, time,
freq, channel].

  model = audio.create_audio_cnn('high-4x70', num_outputs=50, target='cosine')
  variables = model.init(rngs, jnp.zeros((1,) + specs.INPUT_SHAPE))
"""

from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.core import targets
from mmgenre_jax.models import heads
from mmgenre_jax.models import specs

Pair = specs.Pair



# How convs whose kernel spans at least half the frequency bins are computed
# (config.model.conv_layout). 'freq_channels' runs them as 1-D convolutions
# over time with the bins as channels (freq_channels_conv): the same
# parameters and outputs, ~10x faster forward+backward for the 4x70 first layer
# on XLA:CPU (BENCHMARKS.md, benchmarks/conv_layers.py). 'nhwc' is XLA's 2-D
# convolution, the choice benchmarks/gpu.sh compares on accelerators.
CONV_LAYOUTS = ('freq_channels', 'nhwc')

# freq_channels_conv splits the P output positions of a wide conv into this
# many groups, each a 1-D conv over only the bins its positions see. For the
# 4x70 first layer (P = 27) one group multiplies by a weight that is 73 %
# non-zero (1.37x the arithmetic of the 2-D conv); 9 groups of 3 positions
# see 72 bins each (1.03x). On CPU, forward+backward of that layer: 1 group
# 179 ms, 3 groups 167, 9 groups 154, 27 groups (one per position) 179
# (BENCHMARKS.md §1c, benchmarks/audio_blocks.py).
FREQ_POSITION_GROUPS = 9


def freq_channels_conv(x: jax.Array, kernel: jax.Array,
                       groups: int = FREQ_POSITION_GROUPS) -> jax.Array:
  """A (kt, kf) valid conv over [B, T, F, C] computed as 1-D convs over time.

  The F x C input values of a frame become the channels of a 1-D convolution
  whose weight is the block-Toeplitz expansion of the 2-D kernel: output
  position p (of P = F - kf + 1) sees bins p..p+kf-1. With kf = F (4x96, or
  the 4x6 second layer of 4x70) P = 1 and this is one plain 1-D convolution.
  Otherwise the positions are split into `groups` runs, each expanded over
  only the kf + run - 1 bins it sees, so that fewer zeros are multiplied.

  Args:
    x: [B, T, F, C].
    kernel: [kt, kf, C, features], nn.Conv's HWIO kernel.
    groups: position groups (clipped to P).

  Returns:
    [B, T - kt + 1, P, features], without bias.
  """
  batch, time, freq, channels = x.shape
  kt, kf, _, features = kernel.shape
  positions = freq - kf + 1
  bounds = np.linspace(0, positions, min(groups, positions) + 1).astype(int)
  outputs = []
  for first, stop in zip(bounds[:-1], bounds[1:]):
    run = stop - first
    span = kf + run - 1  # bins seen by positions first..stop-1
    weight = jnp.stack(
        [jnp.pad(kernel, ((0, 0), (p, span - kf - p), (0, 0), (0, 0)))
         for p in range(run)], axis=3)  # [kt, span, C, run, features]
    y = jax.lax.conv_general_dilated(
        x[:, :, first:first + span].reshape(batch, time, span * channels),
        weight.reshape(kt, span * channels, run * features), (1,), 'VALID',
        dimension_numbers=('NWC', 'WIO', 'NWC'))
    outputs.append(y.reshape(batch, y.shape[1], run, features))
  return outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=2)


class ConvBlock(nn.Module):
  """conv (valid) -> ReLU -> max-pool, one block of the audio CNNs.

  Computed as conv -> max-pool -> + bias -> ReLU: the same function, since
  max commutes with adding a per-channel constant and with the monotonic
  ReLU, but the bias and the ReLU (and their gradients) then touch the pooled
  array, 4-16x smaller than the conv output. Parameters are nn.Conv's
  (`kernel` [kt, kf, C, features] lecun-normal, `bias` [features] zeros), so
  the parameter tree is that of nn.Conv named conv_<i>.

  Attributes:
    features: output channels.
    kernel_size: (kt, kf).
    pool: max-pool window = stride, or None.
    dtype: computation dtype (parameters stay float32).
    conv_layout: one of CONV_LAYOUTS.
  """
  features: int
  kernel_size: Pair
  pool: Optional[Pair] = None
  dtype: Any = jnp.float32
  conv_layout: str = 'freq_channels'

  def convolve(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The valid conv without bias, in self.conv_layout.

    Args:
      x: [B, T, F, C].
      kernel: [kt, kf, C, features].

    Returns:
      [B, T - kt + 1, F - kf + 1, features].
    """
    kf = kernel.shape[1]
    wide = kf > 1 and 2 * kf >= x.shape[2]
    if wide and self.conv_layout == 'freq_channels':
      return freq_channels_conv(x, kernel)
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [B, T, F, C] -> [B, (T-kt+1) // pt, (F-kf+1) // pf, features]."""
    kt, kf = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (kt, kf, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,),
                      jnp.float32)
    y = self.convolve(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.pool is not None:
      y = block_max_pool(y, tuple(self.pool))
    return nn.relu(y + bias.astype(self.dtype))


def block_max_pool(x: jax.Array, window: Pair) -> jax.Array:
  """Max-pool with stride = window and valid padding, as a reshape and a max.

  The same values as nn.max_pool(x, window, strides=window, padding='VALID'),
  but its gradient is an elementwise compare that XLA fuses, instead of the
  select-and-scatter of reduce_window's gradient: LOW-4x70 forward+backward
  runs 1.45x faster on XLA:CPU (BENCHMARKS.md §1c). On ties the gradient is
  shared between the tied inputs rather than given to the first. Ties between
  conv outputs come from identical input patches (e.g. stretches of silence),
  where either choice gives the kernel the same gradient; after a ReLU they
  are zeros, whose gradient the ReLU stops either way.

  Args:
    x: [B, T, F, C].
    window: (pt, pf) pool size; trailing frames or bins that do not fill a
      window are dropped (floor), as with 'VALID'.

  Returns:
    [B, T // pt, F // pf, C].
  """
  batch, time, freq, channels = x.shape
  pt, pf = window
  x = x[:, :time // pt * pt, :freq // pf * pf]
  x = x.reshape(batch, time // pt, pt, freq // pf, pf, channels)
  return x.max(axis=(2, 4))


class AudioCNN(nn.Module):
  """Configurable conv -> ReLU -> max-pool -> dropout stack plus output head.

  Attributes:
    kernels: conv kernel (time, freq) per block.
    filters: output channels per block.
    pools: max-pool window = stride per block, or None for no pooling.
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
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
      x = ConvBlock(features, tuple(kernel), pool, dtype=self.dtype,
                    conv_layout=self.conv_layout, name=f'conv_{i}')(x)
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    representation = x.reshape((x.shape[0], -1))
    output = heads.OutputHead(self.num_outputs, self.target,
                              name='head')(representation)
    return {'output': output, 'representation': representation}


def variant_dropout(variant: str, target: str) -> float:
  """The paper's dropout rate for a table row and an output target.

  Args:
    variant: a key of specs.AUDIO_CNN_TABLE.
    target: one of targets.NAMES.

  Returns:
    The rate applied after each block.
  """
  return specs.get_audio_spec(variant).dropout.get(targets.get(target).name,
                                                   0.0)


def create_audio_cnn(variant: str, *, num_outputs: int, target: str,
                     dropout: Optional[float] = None,
                     dtype: Any = jnp.float32,
                     conv_layout: str = 'freq_channels') -> AudioCNN:
  """Builds a named audio CNN of the paper.

  Args:
    variant: '<width>-<kernels>' ('high-4x70', 'low-3x3', ...) or 'msdi'.
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
    dropout: overrides the paper's rate (variant_dropout) when not None.
    dtype: computation dtype of the conv blocks.
    conv_layout: one of CONV_LAYOUTS.

  Returns:
    An unbound AudioCNN.
  """
  spec = specs.get_audio_spec(variant)
  if dropout is None:
    dropout = variant_dropout(variant, target)
  return AudioCNN(kernels=spec.kernels, filters=spec.filters,
                  pools=spec.pools, dropout=dropout, num_outputs=num_outputs,
                  target=targets.get(target).name, dtype=dtype,
                  conv_layout=conv_layout)

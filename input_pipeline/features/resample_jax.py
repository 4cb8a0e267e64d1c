"""Polyphase resampling in JAX, equal to scipy.signal.resample_poly.

`resample_poly(x, up, down)` is `scipy.signal.resample_poly(x, up, down,
axis=-1)` (its default Kaiser window, beta 5, and zero padding) computed on
the default JAX device: the same FIR filter, designed once on the host with
scipy's own `firwin`, applied as one strided convolution whose `up` output
channels are the filter's polyphase components. `resample` is
`librosa.resample(res_type='polyphase')` on top of it (rates reduced by
their gcd, the length fixed to ceil(n * ratio), optional energy scaling).
Both are jittable and batched over leading axes; the results equal the
host's within float32 rounding (a few 1e-7 of the signal's scale).

`strided_filter`, the convolution both use, also computes the constant-Q
transform's octaves (input_pipeline.features.cqt_jax).
"""

import functools
import math
from typing import Tuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
from scipy import signal

# scipy.signal.resample_poly's defaults: a Kaiser window of beta 5 and a
# half length of 10 taps per unit of max(up, down).
_WINDOW = ('kaiser', 5.0)
_HALF_LEN_PER_RATE = 10
# A decimation tap this far below the largest adds less than float32's
# resolution to any output, whatever the signal: skipped.
_NEGLIGIBLE_TAP = 1e-9


def reduced_ratio(orig_sr: int, target_sr: int) -> Tuple[int, int]:
  """(up, down) = (target_sr, orig_sr) over their gcd, as librosa does."""
  if int(orig_sr) != orig_sr or int(target_sr) != target_sr or min(
      orig_sr, target_sr) <= 0:
    raise ValueError(f'polyphase resampling needs positive integer rates; '
                     f'got {orig_sr} -> {target_sr} Hz.')
  gcd = math.gcd(int(orig_sr), int(target_sr))
  return int(target_sr) // gcd, int(orig_sr) // gcd


@functools.lru_cache(maxsize=None)
def polyphase_kernel(up: int, down: int) -> Tuple[np.ndarray, int]:
  """scipy's resample_poly filter as a bank of `up` polyphase filters.

  Output sample q * up + r is sum_t x[q * down + start + t] * kernel[t, r]
  (x zero outside [0, n)), which is how resample_poly's upfirdn call and
  its trimming of the filter delay place the taps.

  Args:
    up: upsampling factor >= 1 [scalar], coprime with `down`.
    down: downsampling factor >= 1 [scalar].

  Returns:
    kernel: np.ndarray [shape=(taps, up), dtype=float32], each column one
      phase of the filter (up * firwin(2 * half_len + 1, 1 / max(up, down),
      kaiser 5), rounded to float32 first, as scipy does for float32 input).
    start: the input offset of tap row 0 for output block 0 [scalar].
  """
  max_rate = max(up, down)
  half_len = _HALF_LEN_PER_RATE * max_rate
  h = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=_WINDOW)
  h = h.astype(np.float32) * np.float32(up)
  # scipy pads the filter in front so that output 0 sits at the delay.
  n_pre_pad = down - half_len % down
  n_pre_remove = (half_len + n_pre_pad) // down
  # Filter tap of input sample m for output n = q*up + r: shift[r] - m*up
  # (+ q*up*down, which the stride absorbs).
  shift = (np.arange(up) + n_pre_remove) * down - n_pre_pad
  start = int(np.min(-((2 * half_len - shift) // up)))
  stop = int(np.max(shift // up)) + 1
  taps = shift[None, :] - (start + np.arange(stop - start)[:, None]) * up
  inside = (taps >= 0) & (taps < h.size)
  kernel = np.where(inside, h[np.clip(taps, 0, h.size - 1)], 0.0)
  return kernel.astype(np.float32), start


def strided_filter(x: jax.Array, kernel, *, start: int, count: int,
                   stride: int) -> jax.Array:
  """A bank of FIR filters applied every `stride` samples.

  out[..., q, c] = sum_t x[..., q * stride + start + t] * kernel[t, c],
  with x zero outside [0, n); one convolution at full float32 precision
  (accelerators would otherwise round its inputs to bfloat16/TF32).

  Args:
    x: [..., n] float32.
    kernel: [taps, channels] float32 (a host constant).
    start: input offset of output 0's first tap, any int [scalar].
    count: number of outputs q >= 1 [scalar].
    stride: hop between outputs >= 1 [scalar].

  Returns:
    out: jax.Array [shape=(..., count, channels), dtype=float32].
  """
  lead, n = x.shape[:-1], x.shape[-1]
  taps = kernel.shape[0]
  x = jnp.reshape(x, (-1, 1, n))
  if start > 0:
    x, n = x[..., start:], max(0, n - start)
  pad_lo = max(0, -start)
  pad_hi = max(0, (count - 1) * stride + taps - pad_lo - n)
  rhs = jnp.asarray(np.asarray(kernel, np.float32).T[:, None, :])
  out = lax.conv_general_dilated(
      x, rhs, window_strides=(stride,), padding=[(pad_lo, pad_hi)],
      precision=lax.Precision.HIGHEST)[..., :count]
  return jnp.reshape(jnp.swapaxes(out, -1, -2), lead + out.shape[-2:][::-1])


def _decimate(x: jax.Array, taps: np.ndarray, start: int, down: int,
              count: int) -> jax.Array:
  """`strided_filter` of one filter, as a sum of shifted slices.

  y[..., q] = sum_t x[..., q * down + start + t] * taps[t]. With x split
  into its `down` phases, each tap is a contiguous slice times a scalar,
  which XLA fuses into one pass over the signal: several times faster on a
  CPU core than a one-channel strided convolution. Taps that are zero in
  float32 terms (every other tap of the 2:1 half-band filter is ~1e-17,
  below float32 resolution of the sum) are skipped.

  Args:
    x: [..., n] float32.
    taps: [taps] float32 (a host constant).
    start: input offset of output 0's first tap, any int [scalar].
    down: the stride >= 1 [scalar].
    count: number of outputs >= 1 [scalar].

  Returns:
    y: jax.Array [shape=(..., count), dtype=float32].
  """
  n, lead = x.shape[-1], x.shape[:-1]
  rows = count + -(-taps.size // down)
  pad_lo = max(0, -start)
  if start > 0:
    x, n = x[..., start:], max(0, n - start)
  x = jnp.pad(x, [(0, 0)] * len(lead) +
              [(pad_lo, max(0, rows * down - pad_lo - n))])
  # [..., down, rows]: each phase contiguous, so each tap's slice is too.
  phases = jnp.swapaxes(
      jnp.reshape(x[..., :rows * down], lead + (rows, down)), -1, -2)
  keep = np.abs(taps) > _NEGLIGIBLE_TAP * np.abs(taps).max()
  y = jnp.zeros(lead + (count,), jnp.float32)
  for t in np.flatnonzero(keep):
    row, phase = divmod(int(t), down)
    y = y + np.float32(taps[t]) * phases[..., phase, row:row + count]
  return y


def resample_poly(x: jax.Array, up: int, down: int) -> jax.Array:
  """`scipy.signal.resample_poly(x, up, down, axis=-1)` in JAX.

  Args:
    x: [..., n] float32, n >= 1.
    up: upsampling factor >= 1 [scalar].
    down: downsampling factor >= 1 [scalar].

  Returns:
    y: jax.Array [shape=(..., ceil(n * up / down)), dtype=float32].
  """
  x = jnp.asarray(x, jnp.float32)
  gcd = math.gcd(up, down)
  up, down = up // gcd, down // gcd
  if up == down == 1:
    return x
  kernel, start = polyphase_kernel(up, down)
  n_out = -(-x.shape[-1] * up // down)
  if up == 1:
    return _decimate(x, kernel[:, 0], start, down, n_out)
  blocks = -(-n_out // up)
  y = strided_filter(x, kernel, start=start, count=blocks, stride=down)
  return jnp.reshape(y, x.shape[:-1] + (blocks * up,))[..., :n_out]


def resampled_length(n: int, orig_sr: int, target_sr: int) -> int:
  """librosa.resample's output length: ceil(n * ratio) in float64."""
  return int(np.ceil(n * (float(target_sr) / orig_sr)))


def resample(x: jax.Array, orig_sr: int, target_sr: int, *,
             scale: bool = False) -> jax.Array:
  """`librosa.resample(x, orig_sr, target_sr, res_type='polyphase')`.

  Args:
    x: [..., n] float32 at orig_sr, n >= 1.
    orig_sr: the input's rate, a positive integer [scalar].
    target_sr: the output's rate, a positive integer [scalar].
    scale: divide by sqrt(target_sr / orig_sr), which keeps the energy
      (what the constant-Q transform's octave downsampling uses).

  Returns:
    y: jax.Array [shape=(..., ceil(n * target_sr / orig_sr)),
      dtype=float32]; x itself when the rates are equal.
  """
  x = jnp.asarray(x, jnp.float32)
  if orig_sr == target_sr:
    return x
  up, down = reduced_ratio(orig_sr, target_sr)
  y = resample_poly(x, up, down)
  # librosa's fix_length: ceil of the float ratio, which may differ by one
  # from the exact ceil(n * up / down).
  n_out = resampled_length(x.shape[-1], orig_sr, target_sr)
  if y.shape[-1] < n_out:
    y = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n_out - y.shape[-1])])
  y = y[..., :n_out]
  if scale:
    y = y / np.float32(np.sqrt(target_sr / orig_sr))
  return y

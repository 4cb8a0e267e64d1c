"""resample_jax against scipy.signal.resample_poly and librosa 'polyphase'.

Tolerance: |jax - scipy| <= 1e-6 * max|x|. Each output is a sum of at most
~45 (8 kHz / 48 kHz rates) or 21 (2:1) nonzero taps whose absolute sum is
about 1-1.5, accumulated in float32 by both (scipy's upfirdn for float32
input, XLA here) in different orders: the difference is a few float32
epsilons (1.2e-7) of the signal's scale; 1e-6 is ~8 of them.
"""

import jax
import librosa
import numpy as np
import pytest
from scipy import signal

from input_pipeline.features import resample_jax

ATOL = 1e-6


def _noise(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(
      np.float32)


def _assert_close(actual, expected, scale):
  actual = np.asarray(actual)
  assert actual.dtype == np.float32
  assert actual.shape == expected.shape
  np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL * scale)


@pytest.mark.parametrize('up,down,n', [
    (1, 2, 4001),      # 44.1 kHz -> 22.05 kHz and each CQT octave
    (147, 320, 4800),  # 48 kHz -> 22.05 kHz
    (441, 160, 800),   # 8 kHz -> 22.05 kHz
    (1, 4, 1000),      # librosa's early downsampling by 4
    (3, 2, 7),         # shorter than the filter
])
def test_resample_poly_equals_scipy(up, down, n):
  x = _noise((2, n))
  expected = signal.resample_poly(x, up, down, axis=-1)
  _assert_close(resample_jax.resample_poly(x, up, down), expected,
                np.abs(x).max())


def test_batched_leading_axes_and_jit():
  x = _noise((2, 3, 2205))
  fn = jax.jit(lambda x: resample_jax.resample_poly(x, 147, 320))
  y = np.asarray(fn(x))
  assert y.shape == (2, 3, -(-2205 * 147 // 320))
  _assert_close(y[1, 2], signal.resample_poly(x[1, 2], 147, 320),
                np.abs(x).max())


@pytest.mark.parametrize('orig_sr', [8000, 44100, 48000])
def test_resample_equals_librosa_polyphase(orig_sr):
  t = np.arange(orig_sr // 2) / orig_sr
  x = (0.5 * signal.chirp(t, 50, t[-1], orig_sr / 2.2)).astype(np.float32)
  expected = librosa.resample(x, orig_sr=orig_sr, target_sr=22050,
                              res_type='polyphase')
  _assert_close(resample_jax.resample(x, orig_sr, 22050), expected, 0.5)


def test_scale_keeps_the_energy_as_librosa_does():
  x = _noise(3000)
  expected = librosa.resample(x, orig_sr=2, target_sr=1,
                              res_type='polyphase', scale=True)
  _assert_close(resample_jax.resample(x, 2, 1, scale=True), expected,
                np.abs(x).max() * np.sqrt(2))


def test_equal_rates_and_bad_rates():
  x = _noise(10)
  np.testing.assert_array_equal(resample_jax.resample(x, 22050, 22050), x)
  with pytest.raises(ValueError, match='positive integer'):
    resample_jax.reduced_ratio(44100.5, 22050)
  assert resample_jax.reduced_ratio(48000, 22050) == (147, 320)

"""Test audio the suite makes itself."""

import numpy as np


def music(seconds: float, sr: int = 22050, seed: int = 0) -> np.ndarray:
  """float32 [seconds * sr]: a glide with loudness changes and a little
  noise, so that every 15 s crop of it is different."""
  t = np.arange(int(seconds * sr)) / sr
  rng = np.random.default_rng(seed)
  y = 0.3 * np.sin(2 * np.pi * (55 + 15 * t) * t)
  y *= 0.55 + 0.45 * np.sin(2 * np.pi * 0.3 * t)
  y += 0.02 * rng.standard_normal(t.size)
  return y.astype(np.float32)

"""input_pipeline.features.frontends: the named front ends and their record."""

import pickle

import numpy as np
import pytest

from input_pipeline.features import frontends
from mmgenre_jax.data import facts as data_facts


def test_names_and_the_record():
  assert frontends.DEFAULT is frontends.JAX_POLYPHASE
  assert frontends.named('librosa_soxr_hq') is frontends.LIBROSA_SOXR_HQ
  assert frontends.get(None) is frontends.DEFAULT
  assert frontends.get('jax_polyphase') is frontends.JAX_POLYPHASE
  # Workers receive the registry's own object.
  assert pickle.loads(pickle.dumps(frontends.LIBROSA_SOXR_HQ)) is (
      frontends.LIBROSA_SOXR_HQ)
  with pytest.raises(ValueError, match='jax_polyphase.*librosa_soxr_hq'):
    frontends.named('nnaudio')
  # Shards and workdirs from before the record are librosa soxr_hq's.
  assert frontends.recorded({}) is frontends.LIBROSA_SOXR_HQ
  assert frontends.recorded({'frontend': 'jax_polyphase'}) is (
      frontends.JAX_POLYPHASE)
  assert data_facts.DataFacts(3, 'multi_hot').audio_frontend() is (
      frontends.LIBROSA_SOXR_HQ)


def test_cqt_power_takes_the_tracks_length():
  y = np.random.default_rng(0).standard_normal(30000).astype(np.float32)
  for frontend in frontends.BY_NAME.values():
    padded = np.pad(y, (0, 2000))  # The same bucket: one compilation.
    power = frontend.cqt_power(padded, length=y.size)
    assert power.shape == (1 + padded.size // 1024, 96)
    np.testing.assert_allclose(power[:1 + y.size // 1024],
                               frontend.cqt_power(y), rtol=1e-4,
                               atol=1e-6 * power.max())
  with pytest.raises(ValueError, match='NaN'):
    frontends.DEFAULT.cqt_power(np.full(100, np.nan, np.float32))

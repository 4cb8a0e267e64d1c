"""The public front end: the API, and its gap to the project's features.

The JAX log-CQT uses librosa's 'polyphase' resampler (a 41-tap Kaiser FIR
for each 2:1 octave step); the project's shards use librosa's default,
soxr_hq. Measured on the three whole asc-music recordings (`python
benchmarks/frontend.py --sections gap`) and, the same way, on them
resampled to 44.1 and 48 kHz and on 20 s of `_music` and of white noise:
median |diff| 0.008-0.015 dB, 99th percentile 0.06-0.29 dB, but in bins
within 60 dB of the track's peak the largest difference is 1.5-3.1 dB on
the recordings and 4.6 dB on `_music` (0.09-1.4 dB within 40 dB), in the
lowest octaves, where six or seven downsamplings with the FIR's weaker
stopband (~-55 dB) fold in other aliases than soxr's. librosa's own
'polyphase' CQT differs from its soxr_hq one by the same amounts; the JAX
one equals librosa's polyphase (input_pipeline/features/cqt_jax_test.py).
"""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from helpers import signals
from input_pipeline.features import audio
import mmgenre_jax.frontend as frontend

SR = audio.SAMPLE_RATE
ASC_MUSIC = pathlib.Path('/usr/share/games/asc/music')
# Bounds of the gap to the soxr_hq features (measured values above).
MEDIAN_DB = 0.05
P99_DB = 0.5
MAX_ABOVE_60_DB = 6.0


def test_cqt_of_any_rate_shape_and_dtype():
  y = np.zeros((2, 48000), np.float32)
  mag = frontend.cqt(y, 48000)
  assert isinstance(mag, jnp.ndarray) and mag.dtype == jnp.float32
  assert mag.shape == (2, 1 + 22050 // 1024, frontend.N_BINS)
  assert frontend.resample(y, 48000).shape == (2, 22050)


def test_stereo_mixed_to_mono_is_the_feature_pipeline_mix():
  left, right = signals.music(2.0), signals.music(2.0, seed=1)[::-1].copy()
  stereo = np.stack([left, right], axis=1)  # [samples, channels]
  mono = frontend.to_mono(stereo)
  np.testing.assert_allclose(np.asarray(mono), audio.to_mono_float32(stereo),
                             atol=1e-7)
  np.testing.assert_allclose(np.asarray(frontend.cqt(mono, SR)),
                             np.asarray(frontend.cqt(
                                 audio.to_mono_float32(stereo), SR)),
                             atol=1e-6)


def test_a_batch_is_its_tracks():
  batch = np.stack([signals.music(2.0), 0.1 * signals.music(2.0, seed=3)])
  specs = np.asarray(frontend.cqt_db(batch, SR))
  for i, y in enumerate(batch):
    np.testing.assert_allclose(specs[i], np.asarray(frontend.cqt_db(y, SR)),
                               atol=1e-4)
  # Each track is referenced to its own maximum.
  assert specs.max(axis=(1, 2)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize('audio_in,rate,match', [
    (np.zeros(10), 44100.5, 'positive integer'),
    (np.zeros(10), 0, 'positive integer'),
    (np.zeros((2, 0)), SR, 'samples >= 1'),
    (np.float32(1), SR, 'mono'),
])
def test_bad_input_names_the_fix(audio_in, rate, match):
  with pytest.raises(ValueError, match=match):
    frontend.cqt(audio_in, rate)


def _gap(y, sr):
  """|JAX dB - project dB| and the project's dB, [frames, 96] each."""
  current = audio.cqt_db(audio.resample(y, sr, SR))
  new = np.asarray(frontend.cqt_db(y, sr))
  assert new.shape == current.shape and new.dtype == np.float32
  return np.abs(new - current), current


def _assert_within_bounds(diff, current):
  assert np.median(diff) <= MEDIAN_DB
  assert np.percentile(diff, 99) <= P99_DB
  assert diff[current > -60].max() <= MAX_ABOVE_60_DB


@pytest.mark.parametrize('sr', [SR, 48000])
def test_log_cqt_within_the_stated_gap_of_the_project_features(sr):
  y = signals.music(10.0)
  if sr != SR:
    y = audio.resample(y, SR, sr)  # The same music at another rate.
  _assert_within_bounds(*_gap(y, sr))


@pytest.mark.skipif(not ASC_MUSIC.is_dir(), reason='asc-music not installed')
def test_real_recording_within_the_stated_gap():
  path = sorted(ASC_MUSIC.glob('*.mp3'))[-1]
  data, sr = sf.read(path, dtype='float32', always_2d=True,
                     start=60 * 22050, frames=20 * 22050)
  _assert_within_bounds(*_gap(audio.to_mono_float32(data), sr))


def test_log_cqt_pads_tracks_of_any_length_into_one_call():
  tracks = [audio.resample(signals.music(1.5, seed=s), SR, 44100)[:n]
            for s, n in ((0, 44100), (1, 30000))]
  specs = frontend.log_cqt(tracks, 44100)
  for spec, y in zip(specs, tracks):
    assert isinstance(spec, np.ndarray)
    assert spec.shape == (frontend.frames_of(y.size, 44100), 96)
    np.testing.assert_allclose(spec, np.asarray(frontend.cqt_db(y, 44100)),
                               atol=1e-3)
  with pytest.raises(ValueError, match='mono tracks'):
    frontend.log_cqt([np.zeros((2, 10))], 44100)

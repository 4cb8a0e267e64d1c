"""cqt_jax against librosa.cqt(res_type='polyphase') and audio.power_db.

Tolerance of the magnitude: |jax - librosa| <= 1e-5 * max|librosa| of the
track. Both compute each bin in float32 from the same filters: librosa an
FFT of the frame then a complex64 dot with the basis, this module one
float32 product with the basis folded into the DFT, after seven 2:1
downsamplings each rounded in float32. Every bin is a sum of hundreds of
terms bounded by the track's scale, so the rounding is a few epsilons
(1.2e-7) of the track's maximum (measured: < 7e-7, i.e. < 6 eps). 1e-5 is
~80 eps, 100 dB below the peak, far under the -80 dB floor of the
features; in dB this is <= 0.1 dB for bins within 60 dB of the peak.
"""

import pathlib

import jax
import librosa
import numpy as np
import pytest
from scipy import signal
import soundfile as sf

from input_pipeline.features import audio
from input_pipeline.features import cqt_jax

SR = audio.SAMPLE_RATE
RTOL_OF_MAX = 1e-5
# librosa warns when a short clip's octave is shorter than its FFT.
pytestmark = pytest.mark.filterwarnings('ignore:n_fft=.*too large')
# Debian's asc-music: genuine mp3 recordings, used where installed.
ASC_MUSIC = pathlib.Path('/usr/share/games/asc/music')


def librosa_cqt(y, sr=SR, n_bins=audio.N_BINS):
  """|librosa.cqt| of the project's parameters, polyphase, [..., t, bins]."""
  c = librosa.cqt(y, sr=sr, hop_length=audio.HOP_LENGTH,
                  fmin=audio.FMIN_HZ, n_bins=n_bins,
                  bins_per_octave=audio.BINS_PER_OCTAVE, window='hann',
                  res_type='polyphase')
  return np.swapaxes(np.abs(c), -1, -2)


def assert_equals_librosa(actual, expected):
  actual = np.asarray(actual)
  assert actual.dtype == np.float32
  assert actual.shape == expected.shape
  scale = expected.max(axis=(-2, -1), keepdims=True)
  assert np.all(np.abs(actual - expected) <= RTOL_OF_MAX * scale)


def _chirp(seconds, sr=SR):
  t = np.arange(int(seconds * sr)) / sr
  return (0.5 * signal.chirp(t, 30, t[-1], 0.45 * sr,
                             method='logarithmic')).astype(np.float32)


def _noise(seconds, sr=SR, seed=0):
  return (0.1 * np.random.default_rng(seed).standard_normal(
      int(seconds * sr))).astype(np.float32)


@pytest.mark.parametrize('name', ['chirp', 'noise', 'short', 'tiny'])
def test_magnitude_equals_librosa_polyphase(name):
  y = {'chirp': lambda: _chirp(4.0), 'noise': lambda: _noise(4.0),
       'short': lambda: _noise(0.3), 'tiny': lambda: _noise(100 / SR)}[name]()
  mag = cqt_jax.cqt_magnitude(y)
  assert mag.shape == (1 + y.size // audio.HOP_LENGTH, audio.N_BINS)
  assert_equals_librosa(mag, librosa_cqt(y))


def test_silence_is_zero_and_the_db_floor():
  y = np.zeros(SR, np.float32)
  mag = np.asarray(cqt_jax.cqt_magnitude(y))
  np.testing.assert_array_equal(mag, 0.0)
  np.testing.assert_array_equal(np.asarray(cqt_jax.cqt_db(y, SR)),
                                -audio.TOP_DB)


@pytest.mark.parametrize('sr', [8000, 48000])
def test_other_rates_resample_with_the_polyphase_filter(sr):
  y = _chirp(2.0, sr)
  expected = librosa_cqt(librosa.resample(y, orig_sr=sr, target_sr=SR,
                                          res_type='polyphase'))
  assert_equals_librosa(cqt_jax.cqt(y, sr), expected)


def test_a_batch_of_tracks_is_each_track():
  batch = np.stack([_chirp(2.0), _noise(2.0), 0.01 * _noise(2.0, seed=1)])
  mags = cqt_jax.cqt(batch.reshape(3, 1, -1), SR)
  assert mags.shape == (3, 1, 1 + batch.shape[1] // 1024, 96)
  assert_equals_librosa(mags[:, 0], librosa_cqt(batch))


def test_early_downsampling_follows_librosa():
  # 72 bins (top B6) leave librosa room to halve the signal first.
  plan = cqt_jax.cqt_plan(n_bins=72)
  assert plan.early_factor == 2
  y = _noise(2.0)
  assert_equals_librosa(cqt_jax.cqt_magnitude(y, plan=plan),
                        librosa_cqt(y, n_bins=72))


def test_power_db_is_the_project_power_db_per_track():
  power = np.square(librosa_cqt(np.stack([_chirp(1.0), 0.1 * _noise(1.0)])))
  db = np.asarray(jax.jit(cqt_jax.power_db)(power))
  for track in range(2):
    np.testing.assert_allclose(db[track], audio.power_db(power[track]),
                               atol=1e-4)
  assert db.max(axis=(1, 2)).tolist() == [0.0, 0.0]
  ref = power[0].max() * 10
  np.testing.assert_allclose(np.asarray(cqt_jax.power_db(power[0], ref=ref)),
                             audio.power_db(power[0], ref=ref), atol=1e-4)
  np.testing.assert_allclose(
      np.asarray(cqt_jax.power_db(power[0], top_db=None)),
      audio.power_db(power[0], top_db=None), atol=1e-4)


@pytest.mark.skipif(not ASC_MUSIC.is_dir(), reason='asc-music not installed')
def test_real_recording_equals_librosa():
  path = sorted(ASC_MUSIC.glob('*.mp3'))[0]
  data, sr = sf.read(path, dtype='float32', always_2d=True, start=30 * 22050,
                     frames=10 * 22050)
  y = audio.to_mono_float32(data)
  assert_equals_librosa(cqt_jax.cqt(y, sr),
                        librosa_cqt(librosa.resample(
                            y, orig_sr=sr, target_sr=SR,
                            res_type='polyphase')) if sr != SR
                        else librosa_cqt(y))


@pytest.mark.parametrize('sr', [SR, 48000, 8000])
def test_padded_tracks_give_their_own_frames(sr):
  tracks = [_chirp(1.0, sr), _noise(0.3, sr), _noise(1.0, sr, seed=2)[:sr]]
  lengths = [y.size for y in tracks]
  # Noise, not zeros, after each track: the padding must not leak in.
  padded = _noise(1.5, sr, seed=3)[None].repeat(3, axis=0)
  for row, y in zip(padded, tracks):
    row[:y.size] = y
  mags = np.asarray(cqt_jax.cqt(padded, sr, length=lengths))
  frames = cqt_jax.frames_of(lengths, sr)
  for mag, y, n in zip(mags, tracks, frames):
    expected = librosa_cqt(y if sr == SR else librosa.resample(
        y, orig_sr=sr, target_sr=SR, res_type='polyphase'))
    assert n == expected.shape[0]
    assert_equals_librosa(mag[:n], expected)


def test_log_cqt_of_tracks_of_any_length_is_librosa_per_track():
  tracks = [_chirp(1.2), 0.01 * _noise(0.5), np.zeros(3000, np.float32)]
  specs = cqt_jax.log_cqt(tracks, SR)
  for spec, y in zip(specs, tracks):
    expected = audio.power_db(np.square(librosa_cqt(y)))
    assert spec.shape == expected.shape
    # 1e-5 of the peak's magnitude is <= 0.09 dB 60 dB below it.
    loud = expected > -60
    assert np.all(np.abs(spec - expected)[loud] <= 0.1)
  np.testing.assert_array_equal(specs[2], -audio.TOP_DB)
  padded = np.asarray(cqt_jax.cqt_db(
      np.pad(tracks[1], (0, 5000))[None], SR, length=[tracks[1].size]))
  assert np.all(padded[0, specs[1].shape[0]:] == -audio.TOP_DB)


def test_bucket_lengths_are_few_and_cover_the_track():
  lengths = np.arange(2 * 60 * SR, 8 * 60 * SR, 4099)
  buckets = {cqt_jax.bucket_length(n) for n in lengths}
  assert len(buckets) <= 9
  assert all(n <= cqt_jax.bucket_length(n) <= 1.19 * n for n in lengths)

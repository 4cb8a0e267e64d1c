"""input_pipeline.streaming: whole-track windows computed block by block."""

import numpy as np
import pytest
import soundfile as sf

from input_pipeline import features
from input_pipeline import streaming
from input_pipeline.features import audio as audio_features


def _write(path, seconds, rate, channels=1, fmt=None):
  rng = np.random.default_rng(rate + channels)
  t = np.arange(int(seconds * rate)) / rate
  y = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t))) +
       0.05 * rng.standard_normal(t.size)).astype(np.float32)
  if channels == 2:
    y = np.stack([y, 0.5 * y], axis=1)
  sf.write(path, y, rate, format=fmt)
  return path


def _whole(path):
  return audio_features.track_windows(audio_features.track_spectrogram(path))


@pytest.mark.parametrize('rate,channels,seconds', [
    (44100, 2, 47.3),   # 3 windows, stereo, an integer resampling ratio
    (22050, 1, 100.0),  # 8 windows over 3 blocks of 3
])
def test_equals_whole_track_windows(tmp_path, rate, channels, seconds):
  path = _write(tmp_path / 'x.flac', seconds, rate, channels)
  blocks = list(streaming.stream_windows(path, windows_per_block=3))
  assert all(1 <= len(b) <= 3 for b in blocks)
  got = np.concatenate(blocks)
  expected = _whole(path)
  assert got.shape == expected.shape
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, expected, atol=0.05)
  assert got.max() == 0.0 and got.min() >= -audio_features.TOP_DB


def test_fractional_resampling_ratio_is_close(tmp_path):
  # 48 kHz: a block starts between two native samples (as audio_patch
  # crops do), which moves deep spectral notches a little.
  path = _write(tmp_path / 'x.wav', 40.0, 48000)
  got, expected = streaming.track_windows(path), _whole(path)
  assert got.shape == expected.shape
  diff = np.abs(got - expected)
  assert diff.mean() < 0.05 and np.percentile(diff, 99) < 0.5


def test_shorter_than_a_patch_is_one_padded_window(tmp_path):
  path = _write(tmp_path / 'short.mp3', 3.0, 16000, fmt='MP3')
  got = streaming.track_windows(path)
  assert got.shape == (1, audio_features.PATCH_FRAMES, audio_features.N_BINS)
  np.testing.assert_array_equal(got, _whole(path))
  # The end is padding: the -80 dB floor.
  assert np.all(got[0, -50:] == -audio_features.TOP_DB)


def test_num_frames_is_that_of_the_whole_track_cqt(tmp_path):
  for rate, seconds in ((44100, 20.3), (48000, 16.01), (22050, 15.2)):
    path = _write(tmp_path / f'{rate}.wav', seconds, rate)
    frames = audio_features.track_spectrogram(path).shape[0]
    assert streaming.num_frames(sf.info(path).frames, rate) == frames


def test_unreadable_files_name_the_file(tmp_path):
  bad = tmp_path / 'bad.ogg'
  bad.write_bytes(b'OggS' + bytes(500))
  with pytest.raises(features.FeatureError, match='bad.ogg'):
    next(streaming.stream_windows(bad))
  with pytest.raises(features.FeatureError, match='not found'):
    next(streaming.stream_windows(tmp_path / 'missing.wav'))

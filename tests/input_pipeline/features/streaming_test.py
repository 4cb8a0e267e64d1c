"""input_pipeline.features.streaming: whole-track windows, block by block."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from input_pipeline import features
from input_pipeline.features import streaming
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


def _whole(path, frontend=None):
  return audio_features.track_windows(
      audio_features.track_spectrogram(path, frontend=frontend))


# dB tolerance of the blocks against the whole track per front end: JAX
# polyphase's filters are finite and the context covers them, so only
# float32 rounding differs (measured: 0 dB); soxr_hq's block edges differ
# a little (measured: < 0.007 dB).
_ATOL = {'jax_polyphase': 1e-4, 'librosa_soxr_hq': 0.05}


@pytest.mark.parametrize('rate,channels,seconds,frontend', [
    # 3 windows, stereo, an integer resampling ratio.
    (44100, 2, 47.3, 'jax_polyphase'),
    (44100, 2, 47.3, 'librosa_soxr_hq'),
    # 8 windows over 3 blocks of 3, the last block at the track's end.
    (22050, 1, 100.0, 'jax_polyphase'),
    # 48 kHz: 147 / 320, blocks start where the two sample grids meet.
    (48000, 1, 40.0, 'jax_polyphase'),
])
def test_equals_whole_track_windows(tmp_path, rate, channels, seconds,
                                    frontend):
  path = _write(tmp_path / 'x.flac', seconds, rate, channels)
  blocks = list(streaming.stream_windows(path, windows_per_block=3,
                                         frontend=frontend))
  assert all(1 <= len(b) <= 3 for b in blocks)
  got = np.concatenate(blocks)
  expected = _whole(path, frontend)
  assert got.shape == expected.shape
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, expected, atol=_ATOL[frontend])
  assert got.max() <= 0.0 and got.min() >= -audio_features.TOP_DB


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


def _loud_start(path, seconds, rate, channels=1):
  """Music 30 dB down after a loud first 5 s (inside the dropped 15 %)."""
  rng = np.random.default_rng(1)
  t = np.arange(int(seconds * rate)) / rate
  y = (0.3 * np.sin(2 * np.pi * (55 + 10 * t) * t) +
       0.02 * rng.standard_normal(t.size)) * np.where(t < 5.0, 1.0, 0.03)
  y = y.astype(np.float32)
  if channels == 2:
    y = np.stack([y, 0.5 * y], axis=1)
  sf.write(path, y, rate)
  return path


@pytest.mark.parametrize('rate,channels,per_block', [(22050, 1, 1),
                                                     (44100, 2, 3)])
def test_windows_are_relative_to_the_whole_track(tmp_path, rate, channels,
                                                 per_block):
  # The loudest part is in the first 15 %, which no window covers: the
  # reference pass still sees it, so every window stays ~30 dB down (a
  # per-window reference would put each at 0 dB).
  path = _loud_start(tmp_path / 'x.flac', 60.0, rate, channels)
  got = streaming.track_windows(path, windows_per_block=per_block)
  expected = _whole(path)
  assert got.shape == expected.shape == (4, 322, 96)
  np.testing.assert_allclose(got, expected, atol=0.05)
  assert -40.0 < got.max() < -20.0
  assert abs(got.max() - expected.max()) < 0.01
  assert got.min() >= -audio_features.TOP_DB


def _write_minutes(path, minutes, rate=8000):
  """A tone, loud in the first minute (the dropped 15 %), 20 dB down after;
  written a minute at a time."""
  t = np.arange(60 * rate) / rate
  tone = np.sin(2 * np.pi * 220 * t * (1 + 0.05 * np.sin(t)))
  with sf.SoundFile(path, 'w', rate, 1, 'PCM_16') as handle:
    for minute in range(minutes):
      handle.write((tone * (0.5 if minute == 0 else 0.05)).astype(np.float32))
  return path


def _stream_peak_bytes(path):
  """(peak traced bytes while streaming, windows, their max dB)."""
  tracemalloc.start()
  try:
    count, top = 0, -np.inf
    for windows in streaming.stream_windows(path):
      count, top = count + len(windows), max(top, float(windows.max()))
    return tracemalloc.get_traced_memory()[1], count, top
  finally:
    tracemalloc.stop()


def test_memory_does_not_grow_with_the_track(tmp_path):
  # Both passes (reference, windows) hold one block: a 40-minute file needs
  # no more than a 4-minute one (~18 MiB traced each, numpy included).
  _stream_peak_bytes(_write_minutes(tmp_path / 'warm.wav', 1))  # librosa's
  # filter caches.
  short, n_short, _ = _stream_peak_bytes(_write_minutes(tmp_path / '4.wav', 4))
  long, n_long, top = _stream_peak_bytes(_write_minutes(tmp_path / '40.wav',
                                                        40))
  assert n_long > 9 * n_short
  assert long < 1.5 * short, (long, short)
  # The reference is the loud first minute, 20 dB above every window.
  assert top == pytest.approx(-20.0, abs=0.5)


def test_a_block_from_the_file_start_after_the_reference_pass(tmp_path):
  # 15.5 s: one window centred at frame 6 (the kept middle is shorter than
  # a patch), so its block reads from sample 0, after the reference pass
  # has read the whole file on the same handle.
  path = _loud_start(tmp_path / 'x.wav', 15.5, 22050)
  got = streaming.track_windows(path)
  spec = audio_features.track_spectrogram(path)
  assert audio_features.window_starts(spec.shape[0]) == [6]
  expected = audio_features.track_windows(spec)
  assert got.shape == expected.shape == (1, 322, 96)
  # The block starts at the track's first sample, as the whole track does.
  np.testing.assert_allclose(got, expected, atol=_ATOL['jax_polyphase'])
  assert -1.0 < got.max() <= 0.0  # The loud start.

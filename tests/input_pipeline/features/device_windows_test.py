"""device_windows and streaming.decode_whole: whole decoded tracks, batched
on the JAX device, give the stream's windows and facts."""

import numpy as np
import pytest
import soundfile as sf

from input_pipeline.features import audio as audio_features
from input_pipeline.features import device_windows
from input_pipeline.features import streaming


def _write(path, seconds, rate, channels=1, *, clip=False, nan=False,
           subtype=None):
  rng = np.random.default_rng(rate + channels + 7 * clip)
  t = np.arange(int(seconds * rate)) / rate
  y = (0.3 * np.sin(2 * np.pi * 330 * t * (1 + 0.05 * np.sin(3 * t))) +
       0.05 * rng.standard_normal(t.size)).astype(np.float32)
  # Inside the windows' span (15 % of the track is dropped at each end).
  if clip:
    y[15 * rate:16 * rate] = np.sign(y[15 * rate:16 * rate])
  if nan:
    y[10 * rate:10 * rate + 5] = np.nan
  if channels == 2:
    y = np.stack([y, 0.5 * y], axis=1)
  sf.write(path, y, rate, subtype=subtype)
  return path


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Three tracks over two rates: two share a call (44.1 kHz, stereo, one
  clipped with NaNs, float WAV), one is alone (8 kHz)."""
  root = tmp_path_factory.mktemp('device_windows')
  return [
      _write(root / 'a.wav', 20.0, 44100, 2, clip=True, nan=True,
             subtype='FLOAT'),
      _write(root / 'b.flac', 22.0, 44100, 2),
      _write(root / 'c.flac', 33.0, 8000),
  ]


def test_equals_the_stream_windows_and_facts(files):
  tracks = [streaming.decode_whole(f) for f in files]
  assert all(t is not None for t in tracks)
  mean = np.full((audio_features.PATCH_FRAMES, audio_features.N_BINS), -40.0,
                 np.float32)
  std = np.full_like(mean, 20.0)
  calls = list(device_windows.standardised_windows(
      tracks, mean, std, padded_rows=lambda rows: rows + 3))
  # Grouped by rate and padded length: the two 44.1 kHz tracks in one call.
  assert sorted(sorted(set(owners.tolist())) for owners, _ in calls) == [
      [0, 1], [2]]
  for owners, x in calls:
    assert x.shape == (len(owners) + 3, audio_features.PATCH_FRAMES,
                       audio_features.N_BINS, 1)
    x = np.asarray(x)[:len(owners), ..., 0] * std + mean  # Back to dB.
    for index in sorted(set(owners.tolist())):
      stream = streaming.WindowStream(files[index])
      expected = np.concatenate(list(stream))
      got = x[owners == index]
      assert got.shape == expected.shape
      # Float32 rounding of the standardisation and of the CQT batched.
      np.testing.assert_allclose(got, expected, atol=2e-3)
      # What decoding observed is the stream's, over the same samples.
      assert tracks[index].info == stream.info, index
  clipped = tracks[0].info
  assert clipped.nonfinite == 10 and clipped.clipped_fraction > 0.01
  assert not np.isnan(tracks[0].samples).any()


def test_what_goes_to_the_stream_instead(tmp_path, files):
  short = _write(tmp_path / 'short.wav', 14.0, 22050)
  broken = tmp_path / 'broken.mp3'
  broken.write_bytes(b'ID3' + bytes(range(256)) * 8)
  assert streaming.decode_whole(short) is None  # Under one patch.
  assert streaming.decode_whole(broken) is None  # The stream words it.
  assert streaming.decode_whole(tmp_path / 'gone.wav') is None
  assert streaming.decode_whole(files[2], max_seconds=30) is None
  kept = streaming.decode_whole(files[2], max_seconds=34, drop=0.3,
                                overlap=0.25)
  assert (kept.drop, kept.overlap) == (0.3, 0.25)
  assert kept.window_starts() == audio_features.window_starts(
      streaming.num_frames(kept.samples.size, 8000), drop=0.3, overlap=0.25)


def test_a_call_holds_at_most_its_limits(files):
  tracks = [streaming.decode_whole(files[2])] * 2
  mean = np.zeros((audio_features.PATCH_FRAMES, audio_features.N_BINS),
                  np.float32)
  calls = list(device_windows.standardised_windows(
      tracks, mean, np.ones_like(mean), max_tracks=1))
  assert [sorted(set(o.tolist())) for o, _ in calls] == [[0], [1]]

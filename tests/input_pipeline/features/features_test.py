"""Tests of input_pipeline/features/ (audio, image, text) on small files."""

import json

import librosa
import numpy as np
from PIL import Image
import pytest
import soundfile as sf

from helpers import signals
from input_pipeline import features
from input_pipeline.features import audio as audio_features
from input_pipeline.features import image as image_features
from input_pipeline.features import text as text_features

SR = audio_features.SAMPLE_RATE


def _tone(freq, seconds, sr=SR, amplitude=0.5):
  return (amplitude * librosa.tone(freq, sr=sr, duration=seconds)).astype(
      np.float32)


# --- Audio --------------------------------------------------------------------


def test_constants_follow_spec():
  assert audio_features.PATCH_FRAMES == 322
  assert audio_features.FMIN_HZ == pytest.approx(32.703, abs=1e-3)
  assert (audio_features.HOP_LENGTH, audio_features.N_BINS,
          audio_features.BINS_PER_OCTAVE) == (1024, 96, 12)


@pytest.mark.parametrize('freq,expected_bin', [(440.0, 45), (220.0, 33)])
def test_pure_tone_lands_in_its_cqt_bin(freq, expected_bin):
  # Bin of f from C1: 12 * log2(f / 32.703); A4 = 45, A3 = 33.
  assert round(12 * np.log2(freq / audio_features.FMIN_HZ)) == expected_bin
  spec = audio_features.cqt_db(_tone(freq, 3.0))
  assert spec.shape == (1 + int(3.0 * SR) // 1024, 96)
  assert spec.dtype == np.float32
  middle = spec[10:-10]
  assert np.all(middle.argmax(axis=1) == expected_bin)
  assert spec.max() == 0.0 and spec.min() >= -audio_features.TOP_DB
  # Energy two octaves away is far below the peak.
  assert middle[:, expected_bin - 24].max() < -40


def test_silence_is_valid_audio_at_the_floor(tmp_path):
  spec = audio_features.cqt_db(np.zeros(SR, dtype=np.float32))
  np.testing.assert_array_equal(spec, -audio_features.TOP_DB)
  path = tmp_path / 'silent.flac'
  sf.write(path, np.zeros((20 * 8000, 2), dtype=np.float32), 8000)
  np.testing.assert_array_equal(audio_features.audio_patch(path, seed=0), -80.0)


def test_audio_patch_shape_range_and_tone_bin(tmp_path):
  path = tmp_path / 'a4.wav'
  sf.write(path, _tone(440.0, 20.0), SR)
  patch = audio_features.audio_patch(path, seed=3)
  assert patch.shape == (322, 96) and patch.dtype == np.float32
  # 0 dB is the track's maximum: a steady tone reaches it in every crop.
  assert -0.1 < patch.max() <= 0.0
  assert patch.min() >= -80.0
  assert np.all(patch.argmax(axis=1) == 45)


def test_short_track_is_padded_with_silence(tmp_path):
  path = tmp_path / 'short.wav'
  sf.write(path, _tone(440.0, 5.0), SR)
  patch = audio_features.audio_patch(path, seed=0)
  assert patch.shape == (322, 96)
  signal_frames = int(5.0 * SR / 1024)  # 107
  assert np.all(patch[5:signal_frames - 5].argmax(axis=1) == 45)
  # After the tone (plus the C1 filter's half length) only the floor.
  np.testing.assert_array_equal(patch[signal_frames + 10:], -80.0)
  # Every seed gives the same patch: there is only one crop of a short track.
  np.testing.assert_array_equal(patch, audio_features.audio_patch(path, seed=7))


def test_crop_is_deterministic_by_seed_and_matches_whole_track(tmp_path):
  path = tmp_path / 'music.wav'
  sf.write(path, signals.music(35.0), SR)
  a = audio_features.audio_patch(path, seed=1)
  np.testing.assert_array_equal(a, audio_features.audio_patch(path, seed=1))
  b = audio_features.audio_patch(path, seed=2)
  assert np.abs(a - b).mean() > 1.0
  # The patch is the same 15 s of the track-referenced whole-track CQT.
  spec = audio_features.track_spectrogram(path)
  n = int(35.0 * SR)
  for seed, patch in ((1, a), (2, b)):
    start = audio_features.patch_offset(n, sr=SR, seed=seed)
    assert start % 1024 == 0 and 0 <= start <= n - 15 * SR
    frame = start // 1024
    assert frame == audio_features.patch_frame(n, sr=SR, seed=seed)
    np.testing.assert_array_equal(patch, spec[frame:frame + 322])


def test_patch_offset_is_uniform_over_valid_starts():
  starts = {audio_features.patch_offset(int(16 * SR), sr=SR, seed=s)
            for s in range(300)}
  last_frame = int((16 * SR - 15 * SR) // 1024)  # 21
  assert starts == {k * 1024 for k in range(last_frame + 1)}
  assert audio_features.patch_offset(5 * SR, sr=SR, seed=9) == 0
  # 44.1 kHz: the same frame grid, 2048 native samples per hop.
  assert audio_features.patch_offset(30 * 44100, sr=44100, seed=4) % 2048 == 0


@pytest.mark.parametrize('ext', ['wav', 'flac', 'ogg', 'mp3'])
@pytest.mark.parametrize('native_sr,channels', [(44100, 2), (22050, 1)])
def test_each_format_loads_at_22k_mono(tmp_path, ext, native_sr, channels):
  seconds = 2.0
  tone = _tone(440.0, seconds, sr=native_sr, amplitude=0.4)
  data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
  path = tmp_path / f'tone_{native_sr}_{channels}.{ext}'
  sf.write(path, data, native_sr)
  y = audio_features.load_audio(path)
  assert y.ndim == 1 and y.dtype == np.float32
  assert y.size == int(seconds * SR)
  spectrum = np.abs(np.fft.rfft(y))
  peak_hz = spectrum.argmax() * SR / y.size
  assert peak_hz == pytest.approx(440.0, abs=1.0)
  # Lossy codecs change the waveform, not its level.
  assert np.sqrt(np.mean(y[SR // 4:-SR // 4] ** 2)) == pytest.approx(
      0.4 / np.sqrt(2), rel=0.05)


def test_load_audio_reads_a_range(tmp_path):
  path = tmp_path / 'ramp.flac'
  ramp = np.linspace(-0.9, 0.9, 4 * 44100).astype(np.float32)
  sf.write(path, ramp, 44100)
  y = audio_features.load_audio(path, sr=44100, offset_s=1.0, duration_s=0.5)
  np.testing.assert_allclose(y, ramp[44100:44100 + 22050], atol=1e-4)
  tail = audio_features.load_audio(path, sr=44100, offset_s=3.5)
  assert tail.size == 22050
  with pytest.raises(features.FeatureError, match='past the end'):
    audio_features.load_audio(path, offset_s=10.0)


def test_bad_audio_raises_feature_error_naming_the_file(tmp_path):
  corrupt = tmp_path / 'corrupt.wav'
  corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
  empty = tmp_path / 'empty.mp3'
  empty.write_bytes(b'')
  no_samples = tmp_path / 'no_samples.wav'
  sf.write(no_samples, np.zeros((0, 1), dtype=np.float32), SR)
  nan = tmp_path / 'nan.wav'
  sf.write(nan, np.full(SR, np.nan, dtype=np.float32), SR, subtype='FLOAT')
  cases = {corrupt: 'corrupt', empty: '0 bytes', no_samples: 'no samples',
           nan: 'NaN', tmp_path / 'missing.ogg': 'not found'}
  for path, reason in cases.items():
    for fn in (audio_features.load_audio,
               lambda p: audio_features.audio_patch(p, seed=0),
               lambda p: audio_features.audio_patch_and_windows(p, seed=0)):
      with pytest.raises(features.FeatureError, match=reason) as info:
        fn(path)
      assert str(path) in str(info.value)
      assert isinstance(info.value, ValueError)


def test_truncated_mp3_falls_back_to_its_true_length(tmp_path):
  # A truncated mp3's header still claims 30 s; only ~10 s decode.
  full = tmp_path / 'full.mp3'
  sf.write(full, _tone(440.0, 30.0, sr=44100), 44100)
  cut = tmp_path / 'cut.mp3'
  data = full.read_bytes()
  cut.write_bytes(data[:len(data) // 3])
  with sf.SoundFile(cut) as handle:
    assert handle.frames == 30 * 44100
  decodable = audio_features.load_audio(cut).size / SR
  assert 8.0 < decodable < 12.0
  patch = audio_features.audio_patch(cut, seed=5)
  assert patch.shape == (322, 96) and patch.max() == 0.0
  end = int(decodable * SR / 1024)
  assert np.all(patch[5:end - 5].argmax(axis=1) == 45)
  np.testing.assert_array_equal(patch[end + 10:], -80.0)


def test_track_windows_counts_and_positions():
  rng = np.random.default_rng(0)
  spec = -80.0 * rng.random((1000, 96)).astype(np.float32)
  # 15 % of 1000 dropped at each end: 700 frames, hop 161 -> 3 windows.
  # The windows are crops, values unchanged (not re-referenced: the spec
  # is already relative to the track's maximum).
  windows = audio_features.track_windows(spec)
  assert windows.shape == (3, 322, 96) and windows.dtype == np.float32
  for i, window in enumerate(windows):
    np.testing.assert_array_equal(window, spec[150 + 161 * i:472 + 161 * i])
  assert audio_features.track_windows(spec, overlap=0.0).shape[0] == 2
  assert audio_features.track_windows(spec, drop=0.0).shape[0] == 1 + (
      1000 - 322) // 161
  assert audio_features.window_hop(0.5) == 161
  # The kept middle (400 - 2 * 60 = 280) is shorter than a patch: one
  # window centred in the whole spec.
  middle = audio_features.track_windows(spec[:400])
  np.testing.assert_array_equal(middle, spec[None, 39:361])


def test_window_starts_match_track_windows():
  for frames in (322, 323, 400, 431, 700, 2000, 12345):
    spec = np.random.default_rng(frames).normal(
        size=(frames, audio_features.N_BINS)).astype(np.float32)
    starts = audio_features.window_starts(frames)
    windows = audio_features.track_windows(spec)
    assert len(starts) == len(windows)
    for s, w in zip(starts, windows):
      np.testing.assert_array_equal(spec[s:s + audio_features.PATCH_FRAMES], w)
  # input_pipeline.features.streaming cuts a file at the same starts.
  assert audio_features.window_starts(1000) == [150, 311, 472]
  with pytest.raises(ValueError, match='>= 322 frames'):
    audio_features.window_starts(321)
  with pytest.raises(ValueError, match='overlap'):
    audio_features.window_starts(1000, overlap=1.0)


def test_track_windows_pads_a_short_spec_with_the_floor():
  spec = np.zeros((100, 96), dtype=np.float32) - 30.0
  spec[:, 45] = -10.0
  windows = audio_features.track_windows(spec)
  assert windows.shape == (1, 322, 96)
  np.testing.assert_array_equal(windows[0, :100], spec)  # Not re-referenced.
  np.testing.assert_array_equal(windows[0, 100:], -80.0)
  with pytest.raises(ValueError, match='frames, 96'):
    audio_features.track_windows(np.zeros((10, 84)))


def test_track_spectrogram_pads_to_one_patch(tmp_path):
  path = tmp_path / 'short.ogg'
  sf.write(path, _tone(220.0, 4.0), SR)
  spec = audio_features.track_spectrogram(path)
  assert spec.shape == (1 + audio_features.PATCH_SAMPLES // 1024, 96)
  windows = audio_features.track_windows(spec)
  assert windows.shape == (1, 322, 96)
  assert np.all(windows[0, 5:80].argmax(axis=1) == 33)


@pytest.mark.parametrize('ext,native_sr', [('wav', SR), ('flac', 44100),
                                            ('ogg', 16000), ('mp3', 44100)])
def test_patch_and_windows_from_one_decode(tmp_path, ext, native_sr):
  # 35 s: 754 frames, 528 kept after dropping 15 % at each end, 2 windows.
  path = tmp_path / f'music.{ext}'
  sf.write(path, librosa.resample(signals.music(35.0), orig_sr=SR,
                                         target_sr=native_sr), native_sr)
  patch, windows = audio_features.audio_patch_and_windows(path, seed=4)
  want = audio_features.track_windows(audio_features.track_spectrogram(path))
  assert windows.shape == (2, 322, 96) and windows.dtype == np.float32
  np.testing.assert_array_equal(windows, want)
  # audio_patch decodes the whole file too (mp3 included: no seek).
  np.testing.assert_array_equal(patch, audio_features.audio_patch(path, seed=4))


def test_patch_and_windows_of_a_short_track(tmp_path):
  path = tmp_path / 'short.wav'
  sf.write(path, _tone(440.0, 5.0), SR)
  patch, windows = audio_features.audio_patch_and_windows(path, seed=0)
  np.testing.assert_array_equal(patch, audio_features.audio_patch(path, seed=0))
  assert windows.shape == (1, 322, 96)
  np.testing.assert_array_equal(windows, audio_features.track_windows(
      audio_features.track_spectrogram(path)))


def _authors_log_cqt(y, res_type='soxr_hq'):
  """The authors' code, in librosa directly: the whole track's CQT in dB
  against the track's maximum (top_db=80), before any crop; its octaves
  downsampled with `res_type` (the front end's resampler)."""
  c = librosa.cqt(y, sr=SR, hop_length=1024, fmin=librosa.note_to_hz('C1'),
                  n_bins=96, bins_per_octave=12, window='hann',
                  res_type=res_type)
  return librosa.power_to_db(np.abs(c) ** 2, ref=np.max, top_db=80).T


# (front end, librosa's res_type that it reproduces, dB tolerance). JAX
# polyphase equals librosa's polyphase CQT within 7e-7 of the track's
# maximum in magnitude (cqt_jax_test.py): < 0.002 dB down to the -80 dB
# floor. librosa soxr_hq is librosa itself.
_REFERENCES = {'jax_polyphase': ('polyphase', 2e-3),
               'librosa_soxr_hq': ('soxr_hq', 1e-4)}


def _loud_and_quiet(seconds=60.0, loud=(26.0, 36.0), sr=SR):
  """Music 40 dB down except for a loud stretch `loud` (seconds)."""
  y = signals.music(seconds, sr=sr)
  t = np.arange(y.size) / sr
  return (y * np.where((t >= loud[0]) & (t < loud[1]), 1.0, 0.01)).astype(
      np.float32)


@pytest.mark.parametrize('ext,native_sr,frontend', [
    ('wav', SR, 'jax_polyphase'), ('flac', 44100, 'jax_polyphase'),
    ('flac', 44100, 'librosa_soxr_hq')])
def test_patch_is_a_crop_of_the_track_referenced_cqt(tmp_path, ext,
                                                     native_sr, frontend):
  path = tmp_path / f'loud_and_quiet.{ext}'
  sf.write(path, _loud_and_quiet(sr=native_sr), native_sr)
  res_type, atol = _REFERENCES[frontend]
  want = _authors_log_cqt(
      audio_features.load_audio(path, frontend=frontend), res_type)
  spec = audio_features.track_spectrogram(path, frontend=frontend)
  np.testing.assert_allclose(spec, want, atol=atol)
  n = 60 * native_sr
  frame_of = lambda seed: audio_features.patch_frame(n, sr=native_sr,
                                                     seed=seed)
  # Seeds whose crop is all quiet (ends before 24 s, frame 516) and whose
  # crop holds the whole loud stretch (frames 559-775).
  quiet = next(s for s in range(10000) if frame_of(s) <= 180)
  loud = next(s for s in range(10000) if 460 <= frame_of(s) <= 550)
  for seed in (quiet, loud):
    patch, windows = audio_features.audio_patch_and_windows(
        path, seed=seed, frontend=frontend)
    frame = frame_of(seed)
    np.testing.assert_allclose(patch, want[frame:frame + 322], atol=atol)
    np.testing.assert_array_equal(
        patch, audio_features.audio_patch(path, seed=seed,
                                          frontend=frontend))
    assert patch.min() >= -80.0
  # Not re-normalised to its own maximum: the quiet crop stays ~40 dB down,
  # the loud one holds the track's 0 dB.
  assert audio_features.audio_patch(path, seed=quiet,
                                    frontend=frontend).max() < -30.0
  assert audio_features.audio_patch(path, seed=loud,
                                    frontend=frontend).max() == 0.0
  # The windows, concatenated, are the same frames of the same spectrogram.
  starts = audio_features.window_starts(want.shape[0])
  assert starts == [193, 354, 515, 676] and windows.shape == (4, 322, 96)
  np.testing.assert_allclose(
      np.concatenate(windows),
      np.concatenate([want[s:s + 322] for s in starts]), atol=atol)
  # Window 0 (9-24 s) is quiet; window 2 (24-39 s) holds the loud stretch.
  assert windows[0].max() < -30.0 and windows[2].max() == 0.0


def test_the_floor_is_80_db_below_the_track_maximum():
  y = _loud_and_quiet(30.0, loud=(0.0, 5.0))
  spec = audio_features.cqt_db(y)
  frame = int(12 * SR / 1024)  # Quiet from here on.
  quiet = spec[frame:]
  assert spec.max() == 0.0 and quiet.max() < -30.0
  # Clipped 80 dB below the track's maximum: a crop of the quiet part goes
  # down to -80, not to its own maximum - 80 (power_to_db(top_db) of the
  # crop alone, even with the track's ref).
  assert quiet.min() == -80.0
  power = audio_features.cqt_power(y)
  alone = librosa.power_to_db(power[frame:], ref=power.max(), top_db=80)
  assert alone.min() < -90.0
  np.testing.assert_array_equal(
      audio_features.power_db(power[frame:], ref=power.max()), quiet)
  # Digital silence: the floor everywhere, no NaN, whatever the reference.
  zeros = np.zeros((10, 96), dtype=np.float32)
  for ref in (None, 0.0):
    np.testing.assert_array_equal(audio_features.power_db(zeros, ref=ref),
                                  -80.0)
  np.testing.assert_array_equal(
      audio_features.power_db(zeros, ref=power.max()), -80.0)


# --- Images -------------------------------------------------------------------


def _cover(width=320, height=240):
  """Blue cover, red square in the middle, green strip on the left edge."""
  a = np.zeros((height, width, 3), dtype=np.uint8)
  a[...] = (0, 0, 255)
  a[:, :width // 8] = (0, 255, 0)
  cy, cx = height // 2, width // 2
  a[cy - 40:cy + 40, cx - 40:cx + 40] = (255, 0, 0)
  return Image.fromarray(a)


def test_load_image_rgb_crops_the_centre(tmp_path):
  path = tmp_path / 'cover.png'
  _cover().save(path)
  image = image_features.load_image(path)
  assert image.shape == (224, 224, 3) and image.dtype == np.uint8
  # 240 -> 256 rows, 320 -> 341 columns; the crop keeps the centre square
  # (80 px -> ~85 px) and cuts off the green strip (40 px -> 43 px; the crop
  # starts at column 58).
  np.testing.assert_array_equal(image[112, 112], (255, 0, 0))
  np.testing.assert_array_equal(image[112, 0], (0, 0, 255))
  red = np.all(image == (255, 0, 0), axis=-1)
  assert 80 * 80 < red.sum() < 88 * 88
  assert not np.any(np.all(image == (0, 255, 0), axis=-1))
  small = image_features.load_image(path, size=32)
  assert small.shape == (32, 32, 3)


@pytest.mark.parametrize('mode,ext', [
    ('L', 'png'), ('P', 'png'), ('RGBA', 'png'), ('LA', 'png'),
    ('CMYK', 'jpg'), ('I;16', 'png'), ('I', 'tiff'), ('1', 'png'),
    ('F', 'tiff'), ('RGB', 'jpg')])
def test_load_image_any_mode_to_rgb(tmp_path, mode, ext):
  cover = _cover(200, 300)
  if mode == 'I;16':
    grey = np.asarray(cover.convert('L'), dtype=np.uint16) * 257
    image = Image.fromarray(grey)
  elif mode == 'I':
    grey = np.asarray(cover.convert('L'), dtype=np.int32) * 257
    image = Image.fromarray(grey)
  elif mode == 'F':
    grey = np.asarray(cover.convert('L'), dtype=np.float32) / 255.0
    image = Image.fromarray(grey)
  else:
    image = cover.convert(mode)
  assert image.mode == mode
  path = tmp_path / f'cover.{ext}'
  image.save(path)
  out = image_features.load_image(path)
  assert out.shape == (224, 224, 3) and out.dtype == np.uint8
  centre, corner = out[112, 112].astype(int), out[10, 200].astype(int)
  if mode in ('L', 'I;16', 'I', 'F', 'LA'):
    # Grey: red (L = 76) in the middle, blue (L = 29) around it.
    assert np.all(centre == centre[0]) and np.all(corner == corner[0])
    assert abs(centre[0] - 76) <= 2 and abs(corner[0] - 29) <= 2
  elif mode == '1':
    # Dithered black and white: red (L = 76) dithers to more white dots
    # than blue (L = 29).
    assert np.all(out[..., 0] == out[..., 2])
    assert out[92:132, 92:132].mean() > out[:30, :].mean() + 20
  else:
    assert centre[0] > 200 and centre[1] < 60 and centre[2] < 60
    assert corner[2] > 200 and corner[0] < 60


def test_transparent_pixels_become_white(tmp_path):
  a = np.zeros((64, 64, 4), dtype=np.uint8)
  a[16:48, 16:48] = (255, 0, 0, 255)  # Opaque red square; the rest clear.
  path = tmp_path / 'clear.png'
  Image.fromarray(a, mode='RGBA').save(path)
  out = image_features.load_image(path, size=56)
  np.testing.assert_array_equal(out[28, 28], (255, 0, 0))
  np.testing.assert_array_equal(out[0, 0], (255, 255, 255))


def test_exif_orientation_is_applied(tmp_path):
  a = np.zeros((200, 200, 3), dtype=np.uint8)
  a[:, :100] = (0, 255, 0)  # Stored: green left half, blue right half.
  a[:, 100:] = (0, 0, 255)
  exif = Image.Exif()
  exif[0x0112] = 6  # Display rotated 90 degrees clockwise.
  path = tmp_path / 'rotated.jpg'
  Image.fromarray(a).save(path, exif=exif, quality=95)
  out = image_features.load_image(path, size=64).astype(int)
  # Displayed, the stored left half is the top half.
  assert out[10, 32, 1] > 200 and out[10, 32, 2] < 60
  assert out[54, 32, 2] > 200 and out[54, 32, 1] < 60


def test_bad_images_raise_feature_error_naming_the_file(tmp_path):
  corrupt = tmp_path / 'corrupt.jpg'
  corrupt.write_bytes(b'\xff\xd8\xff' + np.random.default_rng(1).bytes(999))
  empty = tmp_path / 'empty.png'
  empty.write_bytes(b'')
  truncated = tmp_path / 'truncated.png'
  _cover().save(tmp_path / 'whole.png')
  whole = (tmp_path / 'whole.png').read_bytes()
  truncated.write_bytes(whole[:len(whole) // 2])
  cases = {corrupt: 'corrupt', empty: '0 bytes', truncated: 'corrupt',
           tmp_path / 'missing.jpg': 'not found'}
  for path, reason in cases.items():
    with pytest.raises(features.FeatureError, match=reason) as info:
      image_features.load_image(path)
    assert str(path) in str(info.value)


def test_normalize_image():
  images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
  images[1] = 255
  out = image_features.normalize_image(images)
  assert out.shape == (2, 4, 4, 3) and out.dtype == np.float32
  mean = np.asarray(image_features.IMAGENET_MEAN)
  std = np.asarray(image_features.IMAGENET_STD)
  np.testing.assert_allclose(out[0, 0, 0], -mean / std, rtol=1e-6)
  np.testing.assert_allclose(out[1, 3, 3], (1 - mean) / std, rtol=1e-6)
  with pytest.raises(ValueError, match='uint8'):
    image_features.normalize_image(images.astype(np.float32))


# --- Text ---------------------------------------------------------------------


def test_truncate_at_the_last_sentence_end():
  text = 'One. Two! Three? Four five six'
  assert text_features.truncate_text(text, 20) == 'One. Two! Three?'
  # The limit falls right after a sentence end.
  assert text_features.truncate_text(text, 16) == 'One. Two! Three?'
  assert text_features.truncate_text(text, 15) == 'One. Two!'
  # A decimal point or an abbreviation glued to a word is no sentence end.
  assert text_features.truncate_text('It is 3.5 stars. Great stuff here',
                                12) == 'It is 3.5'
  # Closing quotes stay with their sentence.
  assert text_features.truncate_text('He said "wow!" and left', 16) == (
      'He said "wow!"')
  # No sentence end: cut at the last whitespace; none either: hard cut.
  assert text_features.truncate_text('aaa bbb ccc ddd', 10) == 'aaa bbb'
  assert text_features.truncate_text('aaa bbb ccc', 7) == 'aaa bbb'
  assert text_features.truncate_text('abcdefghij', 4) == 'abcd'
  assert text_features.truncate_text('Short one', 1500) == 'Short one'


def test_aggregate_reviews_joins_in_order_and_truncates():
  reviews = ['First review.\nGreat  album!', '', '  Second one.  ',
             'Third.']
  assert text_features.aggregate_reviews(reviews) == (
      'First review. Great album! Second one. Third.')
  long_reviews = ['This album is wonderful. ' * 80, 'Never read.']
  text = text_features.aggregate_reviews(long_reviews)
  assert len(text) <= text_features.MAX_TEXT_CHARS
  assert len(text) > text_features.MAX_TEXT_CHARS - 30
  assert text.endswith('wonderful.')
  assert text_features.aggregate_reviews([]) == ''
  assert text_features.aggregate_reviews(['a b c d.'], max_chars=5) == 'a b c'
  with pytest.raises(TypeError):
    text_features.aggregate_reviews('one string')


def test_enrichment_read_and_apply(tmp_path):
  path = tmp_path / 'enrichment.tsv'
  path.write_text(
      '# entity\tcategories\n'
      'Miles Davis\tJazz trumpeters,American jazz musicians\n'
      'Davis\tSurnames\n'
      'New York\tCities in New York\n'
      'rock\tRock music\n'
      '\n'
      'miles davis\tJazz-funk musicians,Jazz trumpeters\n', encoding='utf-8')
  dictionary = text_features.read_enrichment(path)
  assert dictionary['Miles Davis'] == ['Jazz trumpeters',
                                       'American jazz musicians']
  assert dictionary['New York'] == ['Cities in New York']
  text = 'MILES  davis played in new york. Not rocky, but rock.'
  enriched = text_features.enrich(text, dictionary)
  # The longest mention wins ("Miles Davis", not "Davis"); both spellings of
  # the entity contribute; "rocky" is no whole-word match of "rock".
  assert enriched == (
      text + ' Jazz_trumpeters American_jazz_musicians Jazz_funk_musicians '
      'Cities_in_New_York Rock_music')
  assert text_features.enrich('Nothing here.', dictionary) == 'Nothing here.'
  assert text_features.enrich('Davis alone',
                             dictionary) == 'Davis alone Surnames'
  bad = tmp_path / 'bad.tsv'
  bad.write_text('Miles Davis\tJazz\nno tab here\n', encoding='utf-8')
  with pytest.raises(features.FeatureError, match=r'bad\.tsv: line 2'):
    text_features.read_enrichment(bad)


def _texts():
  genres = ['jazz trumpet swing', 'rock guitar riff', 'techno synth beat',
            'folk banjo song']
  return [f'{genres[i % 4]} album number{i} is {"great" if i % 2 else "ok"}.'
          f' The {genres[(i + 1) % 4].split()[0]} influence shows.'
          for i in range(12)]


def test_tfidf_fit_settings_and_json_round_trip(tmp_path):
  train = _texts()
  vectorizer = text_features.fit_tfidf(train)
  params = vectorizer.get_params()
  assert params['sublinear_tf'] is True
  assert params['max_df'] == 0.5 and params['max_features'] == 10000
  # "album", "is", "the", "influence", "shows" appear everywhere: dropped.
  assert 'album' not in vectorizer.vocabulary_
  assert 'trumpet' in vectorizer.vocabulary_
  path = tmp_path / 'text_vectorizer.json'
  text_features.save_vectorizer(vectorizer, path)
  payload = json.loads(path.read_text(encoding='utf-8'))
  assert payload['settings']['max_df'] == 0.5
  assert len(payload['terms']) == len(payload['idf']) == len(
      vectorizer.vocabulary_)
  loaded = text_features.load_vectorizer(path)
  test = ['jazz swing riff with a banjo solo', 'number3 number3 techno',
          'words never seen']
  for texts in (train, test):
    expected = vectorizer.transform(texts)
    got = loaded.transform(texts)
    assert got.shape == expected.shape
    assert (got != expected).nnz == 0
  assert loaded.transform(test[2:]).nnz == 0
  row = loaded.transform(test[:1]).toarray()[0]
  assert np.linalg.norm(row) == pytest.approx(1.0)


def test_tfidf_errors(tmp_path):
  with pytest.raises(features.FeatureError, match='no training texts'):
    text_features.fit_tfidf([])
  with pytest.raises(features.FeatureError, match='max_df'):
    text_features.fit_tfidf(['same words', 'same words'])
  bad = tmp_path / 'vectorizer.json'
  bad.write_text('{"format": "other"}', encoding='utf-8')
  with pytest.raises(features.FeatureError, match='vectorizer.json'):
    text_features.load_vectorizer(bad)
  with pytest.raises(features.FeatureError, match='cannot read'):
    text_features.load_vectorizer(tmp_path / 'missing.json')

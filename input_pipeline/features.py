"""Per-item features: CQT audio patches, cover images, review texts.

SPEC §2 (Oramas et al. 2018, Sec 6.1 / 5.2 / 5.3):

- Audio: 22,050 Hz mono, constant-Q transform (hop 1024, 96 bins of 12 per
  octave from C1, Hann window), `power_to_db(|C|^2, ref=max)`, as
  [frames, 96]. One seeded random 15 s patch (322 frames) per track for
  training; whole-track windows (15 % dropped at each end, 50 % overlap) for
  prediction.
- Images: any PIL mode to RGB, shorter side resized to 256 (for 224), centre
  crop 224 x 224, uint8; ImageNet mean/std applied later.
- Text: the reviews of an album joined in order, truncated at about 1,500
  characters at a sentence end; optional semantic enrichment (categories of
  linked entities appended as words); tf-idf fitted on the training split.

Every reader raises `FeatureError` (a ValueError) naming the file and the
reason, so `mmgenre prepare` can skip the item and report why.
"""

import json
import os
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import librosa
import numpy as np
from PIL import Image
from PIL import ImageOps
from sklearn.feature_extraction import text as sklearn_text
import soundfile as sf

from input_pipeline import fileio

# --- Audio (SPEC §2; paper Sec 6.1) ------------------------------------------

SAMPLE_RATE = 22050
HOP_LENGTH = 1024
N_BINS = 96
BINS_PER_OCTAVE = 12
FMIN_NOTE = 'C1'
FMIN_HZ = float(librosa.note_to_hz(FMIN_NOTE))  # 32.70 Hz.
# A patch is 15 s of audio: int(15 * 22050 / 1024) = 322 CQT frames.
PATCH_SECONDS = 15.0
PATCH_FRAMES = int(PATCH_SECONDS * SAMPLE_RATE / HOP_LENGTH)  # = 322
PATCH_SAMPLES = int(round(PATCH_SECONDS * SAMPLE_RATE))  # 330,750 at 22.05k.
# librosa.power_to_db's default dynamic range: everything more than 80 dB
# below the maximum is clipped, so silence (and the zero padding of a short
# track) sits at this floor.
TOP_DB = 80.0
# Audio read on each side of a patch's crop so that the CQT frames of the
# crop see the same signal as in a whole-track CQT. The longest filter (C1,
# Hann, Q = 1 / (2^(1/12) - 1)) is ~11,700 samples (0.53 s) long, so its half
# support is ~0.27 s; 16 frames (0.74 s) covers it with room for librosa's
# resampling filters. A whole number of hops keeps the frame grid aligned.
CONTEXT_FRAMES = 16
# Resampler (SPEC §2 loads everything at 22,050 Hz); soxr_hq is librosa's
# default, fast and close to band-limited.
RES_TYPE = 'soxr_hq'
# Whole-track prediction windows (SPEC §2, [code]).
WINDOW_DROP = 0.15
WINDOW_OVERLAP = 0.5


class FeatureError(ValueError):
  """An input file cannot be turned into a feature.

  The message names the file and the reason; `mmgenre prepare` writes it to
  skipped.tsv.
  """


def _error(path, reason: str) -> FeatureError:
  return FeatureError(f'{os.fspath(path)}: {reason}')


def to_mono_float32(data: np.ndarray) -> np.ndarray:
  """[n, channels] -> [n] mean over channels (librosa.to_mono)."""
  return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else (
      data[:, 0].astype(np.float32, copy=False))


def resample(y: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
  """[n] at orig_sr -> [n * sr / orig_sr] float32 at sr (RES_TYPE)."""
  if orig_sr == sr:
    return y
  return librosa.resample(y, orig_sr=orig_sr, target_sr=sr,
                          res_type=RES_TYPE).astype(np.float32, copy=False)


def open_audio(path) -> sf.SoundFile:
  """Opens an audio file for block reads; FeatureError names a bad file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise _error(path, 'audio file not found')
  if os.path.getsize(path) == 0:
    raise _error(path, 'empty audio file (0 bytes)')
  try:
    return sf.SoundFile(path)
  except (sf.LibsndfileError, RuntimeError, TypeError) as e:
    raise _error(path, f'unreadable or corrupt audio ({e}); supported '
                 'formats: wav, flac, ogg, mp3') from e


def read_frames(handle: sf.SoundFile, path, start: int,
                count: int) -> np.ndarray:
  """Reads up to `count` frames from `start` as [n, channels] float32."""
  try:
    if start:
      handle.seek(start)
    return handle.read(count, dtype='float32', always_2d=True)
  except (sf.LibsndfileError, RuntimeError) as e:
    raise _error(path, f'cannot decode audio ({e})') from e


def _check_samples(y: np.ndarray, path) -> np.ndarray:
  if y.size == 0:
    raise _error(path, 'the audio has no samples (zero length)')
  if not np.all(np.isfinite(y)):
    raise _error(path, 'the audio contains NaN or infinite samples')
  return y


def load_audio(path, *, sr: int = SAMPLE_RATE, offset_s: float = 0.0,
               duration_s: Optional[float] = None) -> np.ndarray:
  """Loads a mono signal at `sr` Hz, reading only the requested range.

  Args:
    path: wav, flac, ogg or mp3 file; any sample rate, any channel count.
    sr: target sample rate > 0 [scalar].
    offset_s: start of the range in seconds >= 0 [scalar].
    duration_s: length of the range in seconds > 0, or None for the rest of
      the file.

  Returns:
    y: np.ndarray [shape=(n,), dtype=float32], the mean of the channels,
      resampled with soxr_hq. n is shorter than `duration_s * sr` when the
      file ends first.

  Raises:
    FeatureError: missing, empty, corrupt or undecodable file, a range with
      no samples, or NaN/inf samples.
  """
  if offset_s < 0 or (duration_s is not None and duration_s <= 0):
    raise ValueError(f'offset_s ({offset_s}) must be >= 0 and duration_s '
                     f'({duration_s}) > 0 or None.')
  with open_audio(path) as handle:
    native_sr = handle.samplerate
    start = int(round(offset_s * native_sr))
    count = -1 if duration_s is None else int(round(duration_s * native_sr))
    if start and handle.frames > 0 and start >= handle.frames:
      raise _error(path, f'offset {offset_s} s is past the end of the audio '
                   f'({handle.frames / native_sr:.3f} s)')
    data = read_frames(handle, path, start, count)
  y = _check_samples(to_mono_float32(data), path)
  return resample(y, native_sr, sr)


def cqt_db(y: np.ndarray, *, sr: int = SAMPLE_RATE,
           top_db: Optional[float] = TOP_DB) -> np.ndarray:
  """Log-power constant-Q spectrogram (SPEC §2).

  `librosa.cqt(hop_length=1024, fmin=C1, n_bins=96, bins_per_octave=12,
  window='hann')`, then `power_to_db(|C|^2, ref=np.max, top_db=80)`: the
  loudest bin is 0 dB and everything is in [-80, 0]. Digital silence (all
  zeros), for which ref=max is undefined, gives the floor -80 dB everywhere,
  the value a silent stretch gets inside a louder track.

  Args:
    y: np.ndarray [shape=(n,)], mono audio at `sr`; n > 0, finite.
    sr: sample rate > 0 [scalar].
    top_db: dynamic range kept below the maximum, or None to keep all (down
      to power 1e-10; `track_spectrogram` does, so that `track_windows` can
      re-reference each window without losing its quiet bins).

  Returns:
    spec: np.ndarray [shape=(1 + n // 1024, 96), dtype=float32], dB.
  """
  return power_db(cqt_power(y, sr=sr), top_db=top_db)


def cqt_power(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> np.ndarray:
  """|CQT|^2 as [frames, 96] float32."""
  y = np.asarray(y, dtype=np.float32)
  if y.ndim != 1 or y.size == 0:
    raise ValueError(f'cqt_db needs a non-empty mono signal [n]; got shape '
                     f'{y.shape}.')
  if not np.all(np.isfinite(y)):
    raise ValueError('cqt_db got NaN or infinite samples.')
  c = librosa.cqt(y, sr=sr, hop_length=HOP_LENGTH, fmin=FMIN_HZ,
                  n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE,
                  window='hann', res_type=RES_TYPE)
  return (np.abs(c) ** 2).T.astype(np.float32)


def power_db(power: np.ndarray,
              top_db: Optional[float] = TOP_DB) -> np.ndarray:
  if not np.any(power > 0):
    return np.full(power.shape, -(top_db or TOP_DB), dtype=np.float32)
  return librosa.power_to_db(power, ref=np.max,
                             top_db=top_db).astype(np.float32)


def track_spectrogram(path, *, sr: int = SAMPLE_RATE) -> np.ndarray:
  """The whole-track CQT, zero-padded to at least one patch (for prediction).

  In dB relative to the track's maximum without the 80 dB clipping
  (`cqt_db(top_db=None)`): `track_windows` re-references each window to its
  own maximum and clips there, which reproduces `audio_patch` of the same
  15 s (to ~0.002 dB).

  Args:
    path: audio file (see `load_audio`).
    sr: sample rate [scalar].

  Returns:
    spec: np.ndarray [shape=(frames >= 322, 96), dtype=float32], dB; feed it
      to `track_windows`.
  """
  return _padded_spectrogram(load_audio(path, sr=sr), sr=sr)


def _padded_spectrogram(y: np.ndarray, *, sr: int) -> np.ndarray:
  """`track_spectrogram` of a decoded mono signal at `sr`."""
  min_samples = int(round(PATCH_SECONDS * sr))
  if y.size < min_samples:
    # Silence, like `audio_patch`: the pad becomes the dB floor.
    y = np.pad(y, (0, min_samples - y.size))
  return cqt_db(y, sr=sr, top_db=None)


def patch_offset(num_samples: int, *, sr: int, seed: int) -> int:
  """The seeded random start of a 15 s crop, on the CQT frame grid.

  The start is a whole number of hops (1024 samples at 22,050 Hz) from the
  track start, drawn uniformly over the starts that keep the crop inside the
  track, so the patch's frames are frames of the whole-track CQT.

  Args:
    num_samples: length of the track at `sr` > 0 [scalar].
    sr: the track's sample rate > 0 [scalar].
    seed: any int >= 0.

  Returns:
    start: in samples at `sr`, in [0, max(0, num_samples - 15 s)].
  """
  hop = HOP_LENGTH * sr / SAMPLE_RATE
  last = max(0, int((num_samples - PATCH_SECONDS * sr) // hop))
  frame = int(np.random.default_rng(seed).integers(0, last + 1))
  return int(round(frame * hop))


def _crop_patch(y: np.ndarray, start: int, native_sr: int) -> np.ndarray:
  """CQT patch of `y[start: start + 15 s]` (native rate), with context.

  The segment [start - margin, start + 15 s + margin] is taken with zeros
  outside the track: exactly what a whole-track CQT sees there, since
  librosa.cqt pads with zeros too.
  """
  margin = CONTEXT_FRAMES * HOP_LENGTH  # At 22,050 Hz.
  seg_len = PATCH_FRAMES * HOP_LENGTH + 2 * margin
  native = lambda n: int(round(n * native_sr / SAMPLE_RATE))
  lo, hi = start - native(margin), start - native(margin) + native(seg_len)
  segment = np.zeros(hi - lo, dtype=np.float32)
  src_lo, src_hi = max(lo, 0), min(hi, y.size)
  if src_hi > src_lo:
    segment[src_lo - lo:src_hi - lo] = y[src_lo:src_hi]
  segment = resample(segment, native_sr, SAMPLE_RATE)
  power = cqt_power(segment)
  return power_db(power[CONTEXT_FRAMES:CONTEXT_FRAMES + PATCH_FRAMES])


def audio_patch(path, *, seed: int) -> np.ndarray:
  """One seeded random 15 s patch of a track (SPEC §2, [code]).

  Reads only the crop plus `CONTEXT_FRAMES` of context on each side (seeking
  in the file), resamples it to 22,050 Hz mono and returns the 322 CQT frames
  of the crop in dB relative to the patch's own maximum (so the maximum is
  0 dB). A track shorter than 15 s is zero-padded at its end (silence, so the
  pad is the -80 dB floor). The crop start is uniform over the track and
  depends only on the track length and `seed`.

  Args:
    path: wav, flac, ogg or mp3 file.
    seed: crop seed, an int >= 0 (`prepare.track_seed` derives one per
      track).

  Returns:
    patch: np.ndarray [shape=(322, 96), dtype=float32], dB in [-80, 0].

  Raises:
    FeatureError: see `load_audio`.
  """
  with open_audio(path) as handle:
    native_sr = handle.samplerate
    total = handle.frames
    patch_native = int(round(PATCH_SECONDS * native_sr))
    margin_native = int(round(
        (CONTEXT_FRAMES + 1) * HOP_LENGTH * native_sr / SAMPLE_RATE))
    start = patch_offset(total, sr=native_sr, seed=seed)
    read_lo = max(0, start - margin_native)
    want = min(total, start + patch_native + margin_native) - read_lo
    data = read_frames(handle, path, read_lo, want)
  if data.shape[0] < want or total <= 0:
    # The header's length was wrong (truncated file, odd mp3): decode the
    # whole file and draw the crop from its true length.
    y = load_audio(path, sr=native_sr)
    start = patch_offset(y.size, sr=native_sr, seed=seed)
    return _crop_patch(y, start, native_sr)
  y = _check_samples(to_mono_float32(data), path)
  # Index the crop inside the piece read: y[0] is sample `read_lo`.
  padded = np.zeros(start - read_lo + patch_native + margin_native,
                    dtype=np.float32)
  n = min(y.size, padded.size)
  padded[:n] = y[:n]
  return _crop_patch(padded, start - read_lo, native_sr)


def audio_patch_and_windows(path, *, seed: int) -> Tuple[np.ndarray,
                                                         np.ndarray]:
  """`audio_patch` and the `track_windows` of a track, decoding it once.

  The patch is not cut from the whole-track spectrogram: that is equal only
  to ~0.05 dB (resampling and CQT edges differ), and the training patches and
  audio_stats.npz should not depend on whether windows are written. Instead
  the whole file is decoded once and both features are computed from the
  samples: the patch as `audio_patch` computes it from the same crop
  (`audio_patch`'s own fallback for files whose header length is wrong does
  the same), the windows exactly as `track_windows(track_spectrogram(path))`.
  For wav, flac and ogg the patch equals `audio_patch` bit for bit; mp3 seeks
  are not sample-exact, so there `audio_patch`'s seeked read differs from the
  whole decode by a few thousandths of a dB (< 0.01 dB seen).

  Args:
    path: wav, flac, ogg or mp3 file.
    seed: crop seed of the patch, an int >= 0.

  Returns:
    patch: np.ndarray [shape=(322, 96), dtype=float32], dB in [-80, 0].
    windows: np.ndarray [shape=(n_windows, 322, 96), dtype=float32], dB in
      [-80, 0], n_windows >= 1.

  Raises:
    FeatureError: see `load_audio`.
  """
  with open_audio(path) as handle:
    native_sr = handle.samplerate
    data = read_frames(handle, path, 0, -1)
  y = _check_samples(to_mono_float32(data), path)
  start = patch_offset(y.size, sr=native_sr, seed=seed)
  patch = _crop_patch(y, start, native_sr)
  spec = _padded_spectrogram(resample(y, native_sr, SAMPLE_RATE),
                             sr=SAMPLE_RATE)
  return patch, track_windows(spec)


def track_windows(spec: np.ndarray, *, drop: float = WINDOW_DROP,
                  overlap: float = WINDOW_OVERLAP,
                  relative: bool = True) -> np.ndarray:
  """Whole-track prediction windows (SPEC §2, [code]).

  Drops `drop` of the frames at each end, then cuts 322-frame windows with
  `overlap`; the network's outputs are averaged over them. When the kept
  middle is shorter than a patch the window is centred in the whole spec
  instead; a spec shorter than one patch gives one window padded at its end
  with the -80 dB floor (as `audio_patch` pads with silence).

  Args:
    spec: np.ndarray [shape=(frames, 96)], dB (`cqt_db`, `track_spectrogram`).
    drop: fraction of frames dropped at each end, in [0, 0.5).
    overlap: fraction of a window shared with the next, in [0, 1).
    relative: re-reference each window to its own maximum (0 dB, floor
      -80 dB), which makes a window computed from a whole-track spectrogram
      equal the `audio_patch` of the same 15 s; the training statistics
      (audio_stats.npz) are of such patches.

  Returns:
    windows: np.ndarray [shape=(n_windows, 322, 96), dtype=float32],
      n_windows = 1 + (kept - 322) // hop, hop = int(322 * (1 - overlap)).
  """
  spec = np.asarray(spec, dtype=np.float32)
  if spec.ndim != 2 or spec.shape[1] != N_BINS or spec.shape[0] == 0:
    raise ValueError(f'track_windows needs a [frames, {N_BINS}] spectrogram; '
                     f'got shape {spec.shape}.')
  if not 0 <= drop < 0.5 or not 0 <= overlap < 1:
    raise ValueError(f'drop ({drop}) must be in [0, 0.5) and overlap '
                     f'({overlap}) in [0, 1).')
  frames = spec.shape[0]
  cut = int(frames * drop)
  lo, hi = cut, frames - cut
  hop = max(1, int(PATCH_FRAMES * (1 - overlap)))
  if frames < PATCH_FRAMES:
    floor = spec.max() - TOP_DB if not relative else -TOP_DB
    windows = np.full((1, PATCH_FRAMES, N_BINS), floor, dtype=np.float32)
    windows[0, :frames] = spec - (spec.max() if relative else 0.0)
  else:
    if hi - lo < PATCH_FRAMES:
      lo = (frames - PATCH_FRAMES) // 2
      hi = lo + PATCH_FRAMES
    starts = range(lo, hi - PATCH_FRAMES + 1, hop)
    windows = np.stack([spec[s:s + PATCH_FRAMES] for s in starts])
    if relative:
      windows = windows - windows.max(axis=(1, 2), keepdims=True)
  if relative:
    windows = np.maximum(windows, -TOP_DB)
  return windows.astype(np.float32)


# --- Images (SPEC §2; paper Sec 6.2, ResNet preprocessing) --------------------

IMAGE_SIZE = 224
# ResNet evaluation preprocessing resizes the shorter side to 256 for a 224
# crop: the crop keeps 224/256 of the shorter side.
RESIZE_RATIO = 256 / 224
# ImageNet statistics on [0, 1] RGB (torchvision / the authors' Lua Torch
# fb.resnet code).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Transparent pixels are composited on white: their stored colour is
# arbitrary (often black) and album covers are printed on white.
BACKGROUND = (255, 255, 255)


def _rgb(image: Image.Image, path) -> Image.Image:
  """Any PIL mode -> RGB."""
  mode = image.mode
  if mode == 'RGB':
    return image
  if mode.startswith('I') or mode == 'F':
    # 16/32-bit integer or float grey: PIL's convert clips at 255, so scale
    # by the range the pixel type can hold instead.
    a = np.asarray(image, dtype=np.float64)
    if mode.startswith('I;16'):
      a = a / 257.0
    elif mode == 'F' and a.size and np.nanmax(a) <= 1.0:
      a = a * 255.0
    elif a.size and np.nanmax(a) > 255:
      a = a * (255.0 / (65535.0 if np.nanmax(a) <= 65535 else np.nanmax(a)))
    a = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.stack([a] * 3, axis=-1))
  if mode == 'P':
    image = image.convert('RGBA' if 'transparency' in image.info else 'RGB')
  elif mode in ('LA', 'La', 'PA', 'RGBa'):
    image = image.convert('RGBA')
  if image.mode == 'RGBA':
    background = Image.new('RGBA', image.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, image).convert('RGB')
  try:
    return image.convert('RGB')
  except (ValueError, OSError) as e:
    raise _error(path, f'cannot convert image mode {mode} to RGB ({e})') from e


def load_image(path, *, size: int = IMAGE_SIZE) -> np.ndarray:
  """An album cover as a centre-cropped RGB array (ResNet evaluation crop).

  Applies the EXIF orientation, converts any mode (1, L, P, LA, RGBA, CMYK,
  I;16, I, F, ...) to RGB, resizes the shorter side to round(size * 256 / 224)
  with Pillow's antialiased bilinear filter and crops the centre.

  Args:
    path: jpg, png or any format Pillow reads.
    size: side of the output > 0 [scalar].

  Returns:
    image: np.ndarray [shape=(size, size, 3), dtype=uint8].

  Raises:
    FeatureError: missing, empty, unreadable, truncated or corrupt image.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise _error(path, 'image file not found')
  if os.path.getsize(path) == 0:
    raise _error(path, 'empty image file (0 bytes)')
  short = int(round(size * RESIZE_RATIO))
  try:
    with Image.open(path) as image:
      # JPEG can decode straight at a reduced scale (still >= `short`).
      image.draft(None, (short, short))
      image.load()
      image = ImageOps.exif_transpose(image)
      image = _rgb(image, path)
  except FeatureError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
          EOFError) as e:
    raise _error(path, f'unreadable or corrupt image ({e})') from e
  width, height = image.size
  if width == 0 or height == 0:
    raise _error(path, f'image has no pixels ({width} x {height})')
  scale = short / min(width, height)
  new_size = (max(short, int(round(width * scale))),
              max(short, int(round(height * scale))))
  image = image.resize(new_size, Image.Resampling.BILINEAR)
  left = int(round((new_size[0] - size) / 2))
  top = int(round((new_size[1] - size) / 2))
  image = image.crop((left, top, left + size, top + size))
  return np.asarray(image, dtype=np.uint8)


def normalize_image(images_uint8: np.ndarray) -> np.ndarray:
  """ImageNet standardisation of uint8 RGB images.

  Args:
    images_uint8: np.ndarray [shape=(..., H, W, 3), dtype=uint8].

  Returns:
    images: np.ndarray [shape=(..., H, W, 3), dtype=float32],
      (x / 255 - IMAGENET_MEAN) / IMAGENET_STD.
  """
  images = np.asarray(images_uint8)
  if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
    raise ValueError('normalize_image needs uint8 [..., H, W, 3] images; got '
                     f'{images.dtype} {images.shape}.')
  mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
  std = np.asarray(IMAGENET_STD, dtype=np.float32)
  return (images.astype(np.float32) / 255.0 - mean) / std


# --- Text (SPEC §2; paper Sec 5.2) --------------------------------------------

MAX_TEXT_CHARS = 1500
# tf-idf settings of the authors' code ([code], SPEC §2).
TFIDF_SETTINGS = {'sublinear_tf': True, 'max_df': 0.5, 'max_features': 10000}
VECTORIZER_FORMAT = 'mmgenre_jax.tfidf'
VECTORIZER_VERSION = 1
# A sentence ends with . ! or ? (possibly repeated, possibly followed by a
# closing quote or bracket) before whitespace: "3.5" and "U2.0" are not ends.
_SENTENCE_END = re.compile(r'[.!?]+[\'")\]\u2019\u201d]*(?=\s)')
_WHITESPACE = re.compile(r'\s+')
_WORD = re.compile(r'\w+')
_NON_WORD = re.compile(r'\W+')


def truncate_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
  """Cuts `text` to at most `max_chars`, dropping the unfinished sentence.

  Cuts after the last sentence end ([.!?]) at or before `max_chars`; with no
  sentence end there, at the last whitespace; with no whitespace either, at
  `max_chars` exactly. A text that fits is returned unchanged.
  """
  if len(text) <= max_chars:
    return text
  # One character more, so a sentence end or a space at the limit counts.
  head = text[:max_chars + 1]
  ends = [m.end() for m in _SENTENCE_END.finditer(head)
          if m.end() <= max_chars]
  if ends:
    return head[:ends[-1]]
  space = max(head.rfind(' '), max((m.start() for m in
                                    _WHITESPACE.finditer(head)), default=-1))
  if space > 0:
    return head[:space].rstrip()
  return text[:max_chars]


def aggregate_reviews(reviews: Sequence[str], *,
                      max_chars: int = MAX_TEXT_CHARS) -> str:
  """The text of an album: its reviews in order, truncated (SPEC §2).

  Each review's whitespace runs (newlines, tabs) become single spaces and
  empty reviews are skipped; the reviews are joined with a space, then
  `truncate_text` keeps at most `max_chars` characters ending at a sentence
  end.

  Args:
    reviews: the review texts of one album, in file order.
    max_chars: the length limit (paper: about 1,500 characters).

  Returns:
    text: str, '' when every review is empty.
  """
  if isinstance(reviews, str):
    raise TypeError('aggregate_reviews takes a sequence of review strings, '
                    'not one string.')
  parts = [_WHITESPACE.sub(' ', r).strip() for r in reviews if r]
  return truncate_text(' '.join(p for p in parts if p), max_chars)


def read_enrichment(path) -> Dict[str, List[str]]:
  """Reads an entity-linking dictionary (docs/data_formats.md §1).

  Each line is `entity<TAB>category1,category2,...`; blank lines and lines
  starting with '#' are skipped. An entity listed twice gets the union of its
  categories (first-seen order).

  Args:
    path: enrichment.tsv.

  Returns:
    dictionary: {entity: [category, ...]}.

  Raises:
    FeatureError: a missing file or a malformed line (names the line).
  """
  path = os.fspath(path)
  try:
    with open(path, encoding='utf-8') as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise _error(path, f'cannot read the enrichment dictionary ({e})') from e
  dictionary: Dict[str, List[str]] = {}
  for number, line in enumerate(lines, start=1):
    if not line.strip() or line.startswith('#'):
      continue
    if '\t' not in line:
      raise _error(path, f'line {number}: expected "entity<TAB>category1,'
                   f'category2,..." but found no tab in {line!r}')
    entity, categories = line.split('\t', 1)
    entity = entity.strip()
    if not entity:
      raise _error(path, f'line {number}: empty entity in {line!r}')
    if not _WORD.search(entity):
      logging.warning('%s: line %d: entity %r has no word characters and can '
                      'never match; ignored.', path, number, entity)
      continue
    cats = [c.strip() for c in categories.split(',') if c.strip()]
    known = dictionary.setdefault(entity, [])
    known.extend(c for c in cats if c not in known)
  return dictionary


class _EntityIndex:
  """Entities as lower-case word tuples, for word-sequence lookup.

  Matching word n-grams in a hash table costs O(text words x longest entity)
  whatever the dictionary size (Babelfy-sized dictionaries have ~10^5
  entities, too many for one regex alternation).
  """

  def __init__(self, dictionary: Mapping[str, Sequence[str]]):
    self.categories: Dict[Tuple[str, ...], List[str]] = {}
    for entity, cats in dictionary.items():
      key = tuple(w.lower() for w in _WORD.findall(entity))
      if key:
        known = self.categories.setdefault(key, [])
        known.extend(c for c in cats if c not in known)
    self.longest = max(map(len, self.categories), default=0)

  def find(self, text: str) -> List[Tuple[str, ...]]:
    """Entities found, longest match first at each word, in text order."""
    words = [w.lower() for w in _WORD.findall(text)]
    found, i = [], 0
    while i < len(words):
      for n in range(min(self.longest, len(words) - i), 0, -1):
        key = tuple(words[i:i + n])
        if key in self.categories:
          found.append(key)
          i += n
          break
      else:
        i += 1
    return found


# One cached index: prepare enriches every album with the same dictionary.
_INDEX_CACHE: List = [None, None, -1]  # [dictionary, index, len(dictionary)]


def _entity_index(dictionary) -> _EntityIndex:
  if isinstance(dictionary, _EntityIndex):
    return dictionary
  cached, index, size = _INDEX_CACHE
  if cached is not dictionary or size != len(dictionary):
    index = _EntityIndex(dictionary)
    _INDEX_CACHE[:] = [dictionary, index, len(dictionary)]
  return index


def category_word(category: str) -> str:
  """A category as one token: 'Jazz fusion' -> 'Jazz_fusion'."""
  return _NON_WORD.sub('_', category.strip()).strip('_')


def enrich(text: str, dictionary: Mapping[str, Sequence[str]]) -> str:
  """Appends the categories of the entities mentioned in `text` (SPEC §2).

  An entity matches case-insensitively as a whole word or phrase (its words
  in sequence, any punctuation or spacing between them); overlapping
  mentions go to the longest entity. The categories of the distinct entities
  found are appended once each, in order of first mention, as single words
  (non-word characters become underscores: 'Rock and roll' ->
  'Rock_and_roll'), so tf-idf sees them as vocabulary terms.

  Args:
    text: album text (`aggregate_reviews`).
    dictionary: {entity: [category, ...]} (`read_enrichment`).

  Returns:
    text, followed by a space and the category words when any entity is
    found; otherwise `text` unchanged.
  """
  index = _entity_index(dictionary)
  words: List[str] = []
  for key in index.find(text):
    for category in index.categories[key]:
      word = category_word(category)
      if word and word not in words:
        words.append(word)
  return f'{text} {" ".join(words)}' if words else text


def fit_tfidf(train_texts: Iterable[str], *,
              max_features: int = TFIDF_SETTINGS['max_features'],
              max_df: float = TFIDF_SETTINGS['max_df'],
              sublinear_tf: bool = TFIDF_SETTINGS['sublinear_tf']
              ) -> sklearn_text.TfidfVectorizer:
  """Fits the tf-idf vector space model on the training texts only.

  Args:
    train_texts: the album texts of the training split.
    max_features: vocabulary size (the most frequent terms).
    max_df: terms in more than this fraction of the texts are dropped.
    sublinear_tf: use 1 + log(tf).

  Returns:
    A fitted sklearn TfidfVectorizer; `.transform(texts)` gives a sparse
    [n_texts, vocabulary] matrix with L2-normalised rows.

  Raises:
    FeatureError: no texts, or no term survives the max_df pruning (too few
      or too similar texts).
  """
  texts = list(train_texts)
  if not texts:
    raise FeatureError('fit_tfidf: no training texts to fit the tf-idf '
                       'vectorizer on.')
  vectorizer = sklearn_text.TfidfVectorizer(
      sublinear_tf=sublinear_tf, max_df=max_df, max_features=max_features)
  try:
    vectorizer.fit(texts)
  except ValueError as e:
    raise FeatureError(
        f'fit_tfidf: cannot fit on {len(texts)} training texts ({e}); '
        f'max_df={max_df} drops every term found in more than that fraction '
        'of the texts, so a handful of texts, or identical ones, leave no '
        'vocabulary: use more training albums.') from e
  return vectorizer


_SAVED_PARAMS = ('sublinear_tf', 'max_df', 'min_df', 'max_features',
                 'lowercase', 'token_pattern', 'ngram_range', 'analyzer',
                 'strip_accents', 'stop_words', 'norm', 'use_idf',
                 'smooth_idf', 'binary', 'encoding', 'decode_error')


def save_vectorizer(vectorizer: sklearn_text.TfidfVectorizer, path) -> None:
  """Writes a fitted vectorizer as JSON (vocabulary, idf, settings), atomically.

  The JSON holds `terms` (the vocabulary, ordered by column), `idf` (float64
  values, which JSON round-trips exactly) and the settings needed by
  `.transform`, so `load_vectorizer` gives identical output. Custom
  callables (tokenizer, preprocessor) cannot be saved.
  """
  params = vectorizer.get_params()
  for name in ('tokenizer', 'preprocessor'):
    if params.get(name) is not None:
      raise ValueError(f'save_vectorizer cannot save a custom {name}.')
  if not hasattr(vectorizer, 'vocabulary_'):
    raise ValueError('save_vectorizer needs a fitted vectorizer; call '
                     'fit_tfidf first.')
  settings = {name: params[name] for name in _SAVED_PARAMS}
  settings['ngram_range'] = list(settings['ngram_range'])
  if settings['stop_words'] is not None and not isinstance(
      settings['stop_words'], str):
    settings['stop_words'] = sorted(settings['stop_words'])
  settings['dtype'] = np.dtype(params['dtype']).name
  terms = [''] * len(vectorizer.vocabulary_)
  for term, column in vectorizer.vocabulary_.items():
    terms[int(column)] = term
  payload = {
      'format': VECTORIZER_FORMAT,
      'version': VECTORIZER_VERSION,
      'settings': settings,
      'terms': terms,
      'idf': [float(v) for v in vectorizer.idf_] if settings['use_idf']
             else None,
  }
  # Atomic: prepare's output directory never holds half a vectorizer.
  fileio.write_atomic(path, json.dumps(payload, ensure_ascii=False).encode(
      'utf-8'))


def load_vectorizer(path) -> sklearn_text.TfidfVectorizer:
  """Reads a `save_vectorizer` JSON file into a ready-to-use vectorizer.

  Raises:
    FeatureError: missing file, not JSON, or not a saved vectorizer.
  """
  path = os.fspath(path)
  try:
    with open(path, encoding='utf-8') as f:
      payload = json.load(f)
  except (OSError, ValueError) as e:
    raise _error(path, f'cannot read the tf-idf vectorizer ({e})') from e
  if not isinstance(payload, dict) or payload.get(
      'format') != VECTORIZER_FORMAT:
    raise _error(path, f'not a tf-idf vectorizer file (expected "format": '
                 f'"{VECTORIZER_FORMAT}"); write it with save_vectorizer')
  if payload.get('version') != VECTORIZER_VERSION:
    raise _error(path, f'vectorizer file version {payload.get("version")} is '
                 f'not {VECTORIZER_VERSION}; re-run mmgenre prepare')
  try:
    settings = dict(payload['settings'])
    terms = payload['terms']
    idf = payload['idf']
    settings['ngram_range'] = tuple(settings['ngram_range'])
    if isinstance(settings['stop_words'], list):
      settings['stop_words'] = frozenset(settings['stop_words'])
    settings['dtype'] = np.dtype(settings['dtype']).type
    vectorizer = sklearn_text.TfidfVectorizer(
        vocabulary={t: i for i, t in enumerate(terms)}, **settings)
    if settings['use_idf']:
      if len(idf) != len(terms):
        raise ValueError(f'{len(idf)} idf values for {len(terms)} terms')
      vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
    else:
      # Builds the fixed vocabulary; without idf there is nothing to learn.
      vectorizer.fit([' '.join(terms)])
  except (KeyError, TypeError, ValueError) as e:
    raise _error(path, f'malformed tf-idf vectorizer file ({e})') from e
  return vectorizer

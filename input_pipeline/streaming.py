"""Whole-track prediction windows read in blocks: memory bounded by the block.

`features.audio.track_windows(features.audio.track_spectrogram(path))` decodes
the whole file and computes one CQT over it, so its memory grows with the
track (a 60-minute 48 kHz stereo file is ~1.4 GB of float32 samples).
`stream_windows` gives the same windows (SPEC §2, [code]: 15 % dropped at each
end, 322-frame windows with 50 % overlap, each re-referenced to its own
maximum and clipped 80 dB below it) while holding only one block of a few
windows in memory:

  for windows in streaming.stream_windows('long_live_set.flac'):
    windows  # float32 [k <= windows_per_block, 322, 96], dB in [-80, 0]

How: the window starts (`features.audio.window_starts`, the function that
places the whole-track windows too) follow from the file's length alone (read
from the header), so each block of consecutive windows is computed
independently, as `features.audio.audio_patch` computes its crop: the block's
samples plus `features.audio.CONTEXT_FRAMES` of context on each side are read
with a seek (zeros outside the file, as librosa.cqt pads), resampled to
22,050 Hz, and transformed; the frames of the block then equal those of a
whole-track CQT (to ~0.01 dB; tests/streaming_test.py compares them).
"""

import math
import os
from typing import Iterator, Optional

from absl import logging
import numpy as np

from input_pipeline import features
from input_pipeline.features import audio

# Windows computed per block. One block of 8 windows at 50 % overlap covers
# 322 * 4.5 frames (~67 s of audio): a CQT over that is a few tens of MB,
# whatever the length of the track.
WINDOWS_PER_BLOCK = 8


def num_frames(num_samples: int, native_sr: int) -> int:
  """CQT frames of a whole track of `num_samples` at `native_sr`.

  librosa.resample (soxr) returns ceil(n * 22050 / sr) samples and
  librosa.cqt (centred) 1 + n // hop frames; a track shorter than one patch is
  zero-padded to PATCH_SAMPLES first (audio.track_spectrogram).
  """
  n = int(math.ceil(num_samples * audio.SAMPLE_RATE / native_sr))
  n = max(n, audio.PATCH_SAMPLES)
  return 1 + n // audio.HOP_LENGTH


def _read_block(handle, path, native_sr: int, total: int, first: int,
                last: int) -> np.ndarray:
  """Mono 22,050 Hz samples of frames [first - C, last + C) of the track.

  C = CONTEXT_FRAMES; frame f is centred on sample f * HOP_LENGTH (22.05 kHz),
  so sample 0 of the result is that of frame `first - C`.
  """
  hop = audio.HOP_LENGTH
  context = audio.CONTEXT_FRAMES
  lo22 = (first - context) * hop
  len22 = (last - first + 2 * context) * hop
  native = lambda n: int(round(n * native_sr / audio.SAMPLE_RATE))
  lo, length = native(lo22), native(len22)
  segment = np.zeros(length, dtype=np.float32)
  src_lo, src_hi = max(lo, 0), min(lo + length, total)
  if src_hi > src_lo:
    data = audio.read_frames(handle, path, src_lo, src_hi - src_lo)
    y = audio.to_mono_float32(data)
    if y.size < src_hi - src_lo:
      logging.warning('%s: the header promises %d samples but reading stopped '
                      'at %d; the rest is taken as silence.', path, total,
                      src_lo + y.size)
    if not np.all(np.isfinite(y)):
      raise features.FeatureError(
          f'{os.fspath(path)}: the audio contains NaN or infinite samples')
    segment[src_lo - lo:src_lo - lo + y.size] = y
  return audio.resample(segment, native_sr, audio.SAMPLE_RATE)


def stream_windows(path, *, drop: float = audio.WINDOW_DROP,
                   overlap: float = audio.WINDOW_OVERLAP,
                   windows_per_block: int = WINDOWS_PER_BLOCK
                   ) -> Iterator[np.ndarray]:
  """The whole-track prediction windows of an audio file, block by block.

  Equal (to ~0.01 dB) to
  `audio.track_windows(audio.track_spectrogram(path), drop=drop,
  overlap=overlap)`, with memory bounded by `windows_per_block` instead of the
  track length. A track shorter than one patch gives one window padded with
  the -80 dB floor (it is small, so the whole-track functions are used).

  Args:
    path: wav, flac, ogg or mp3; any sample rate, any channel count.
    drop: fraction of frames dropped at each end (config.eval.track_trim).
    overlap: window overlap (config.eval.window_overlap).
    windows_per_block: windows computed together (memory ~ this).

  Yields:
    windows: np.ndarray [shape=(k, 322, 96), dtype=float32], dB in [-80, 0],
      1 <= k <= windows_per_block, in track order.

  Raises:
    FeatureError: missing, empty, corrupt or undecodable file (raised by the
      first `next`, before anything is yielded, for unreadable headers).
  """
  if windows_per_block < 1:
    raise ValueError(f'windows_per_block must be >= 1; got '
                     f'{windows_per_block}.')
  with audio.open_audio(path) as handle:
    native_sr, total = handle.samplerate, handle.frames
    short = total * audio.SAMPLE_RATE < audio.PATCH_SAMPLES * native_sr
    if total <= 0 or short or not handle.seekable():
      # Tiny, or no usable length in the header: decode it whole (a file
      # without a length cannot be planned in blocks).
      if total > 0 and not short:
        logging.warning('%s is not seekable; decoding it whole.', path)
      spec = audio.track_spectrogram(path)
      yield audio.track_windows(spec, drop=drop, overlap=overlap)
      return
    starts = audio.window_starts(num_frames(total, native_sr), drop=drop,
                                 overlap=overlap)
    for i in range(0, len(starts), windows_per_block):
      block = starts[i:i + windows_per_block]
      first, last = block[0], block[-1] + audio.PATCH_FRAMES
      y = _read_block(handle, path, native_sr, total, first, last)
      power = audio.cqt_power(y)
      offset = audio.CONTEXT_FRAMES - first
      frames = audio.PATCH_FRAMES
      yield np.stack([audio.power_db(power[s + offset:s + offset + frames])
                      for s in block]).astype(np.float32)


def track_windows(path, **kwargs) -> np.ndarray:
  """All the windows of `stream_windows`, [n_windows, 322, 96] (tests)."""
  return np.concatenate(list(stream_windows(path, **kwargs)))


def audio_duration(path) -> Optional[float]:
  """Length in seconds from the header, None when unknown."""
  with audio.open_audio(path) as handle:
    return handle.frames / handle.samplerate if handle.frames > 0 else None

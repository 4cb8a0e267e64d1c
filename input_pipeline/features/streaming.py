"""Whole-track prediction windows read in blocks: memory bounded by the block.

`features.audio.track_windows(features.audio.track_spectrogram(path))` decodes
the whole file and computes one CQT over it, so its memory grows with the
track (a 60-minute 48 kHz stereo file is ~1.4 GB of float32 samples).
`stream_windows` gives the same windows (docs/fidelity.md: 15 % dropped at each
end, 322-frame windows with 50 % overlap, in dB relative to the maximum of the
WHOLE track's CQT and clipped 80 dB below it, as the authors' code and
`features.audio.audio_patch` do) while holding only one block of a few
windows in memory:

  for windows in streaming.stream_windows('long_live_set.flac'):
    windows  # float32 [k <= windows_per_block, 322, 96], dB in [-80, 0]

How: two passes over the file, block by block. The first computes the CQT
of every frame of the track (the dropped ends too) and keeps only its
maximum power, the track's 0 dB reference; the second computes the windows'
blocks and converts them to dB against it. The window starts
(`features.audio.window_starts`, the function that places the whole-track
windows too) follow from the file's length alone (read from the header), so
each block of consecutive frames is computed independently: its samples plus
`features.audio.CONTEXT_FRAMES` of context on each side (none before the
track's start) are read with a seek from a sample where the native and
22,050 Hz grids meet (zeros past the end, as the whole track is padded),
resampled to 22,050 Hz, cut at the whole track's resampled length, and
transformed with the track's end given (`FrontEnd.cqt_power(length=)`).
With the JAX polyphase front end (the default) the frames of the block
then equal those of a whole-track CQT to float32 precision: both filters
are finite and the context covers them; with librosa soxr_hq to ~0.01 dB
(tests/input_pipeline/features/streaming_test.py compares both, and checks
that a 40-minute file needs no more memory than a 4-minute one). The
first pass covers every frame, the second the 70 % the windows span: the
reference costs ~1.4 times the windows' own CQT.

What the reader observed is a `features.audio_info.AudioInfo` (the facts
tagging words as warnings):

  stream = streaming.WindowStream('song.mp3')
  for windows in stream: ...
  stream.info.duration_s, stream.info.silent, stream.info.channels

The header's length is checked before any window is placed (the last samples
it promises must decode): a truncated file (the first kilobytes of an mp3
whose header still claims minutes) is measured by decoding it in blocks, and
its windows are placed over what decodes (and its reference taken over
that). Its level facts (clipping, NaN, silence) are over the samples read
for the windows, what the network hears. NaN and infinite samples are set to
0 (counted in the info) in both passes.
"""

import dataclasses
import math
import os
from typing import Iterator, List, Optional, Tuple

from absl import logging
import numpy as np

from input_pipeline import features
from input_pipeline.features import audio
from input_pipeline.features import audio_info
from input_pipeline.features import frontends

# Windows computed per block. One block of 8 windows at 50 % overlap covers
# 322 * 4.5 frames (~67 s of audio): a CQT over that is a few tens of MB,
# whatever the length of the track.
WINDOWS_PER_BLOCK = 8
# Frames read at the end of the header's length to check that it decodes,
# and per read when a file that does not is measured.
PROBE_FRAMES = 1024
MEASURE_FRAMES = 1 << 18
# Longer tracks are streamed, not decoded whole (decode_whole): 10 minutes
# of 48 kHz mono is 115 MB of float32 samples.
WHOLE_TRACK_MAX_SECONDS = 600.0


def num_frames(num_samples: int, native_sr: int) -> int:
  """CQT frames of a whole track of `num_samples` at `native_sr`.

  librosa.resample (soxr) returns ceil(n * 22050 / sr) samples and
  librosa.cqt (centred) 1 + n // hop frames; a track shorter than one patch is
  zero-padded to PATCH_SAMPLES first (audio.track_spectrogram).
  """
  n = int(math.ceil(num_samples * audio.SAMPLE_RATE / native_sr))
  n = max(n, audio.PATCH_SAMPLES)
  return 1 + n // audio.HOP_LENGTH


@dataclasses.dataclass(frozen=True)
class _Block:
  """Mono 22,050 Hz samples y [n] from the centre of frame `first` on.

  length: the track's samples in y (the rest is past its end, zeros).
  """
  y: np.ndarray
  first: int
  length: int

  def power(self, frontend, frames: slice) -> np.ndarray:
    """|CQT|^2 [frames, 96] of the track's frames `frames` (track indices)."""
    power = audio.cqt_power(self.y, frontend=frontend, length=self.length)
    return power[frames.start - self.first:frames.stop - self.first]


def _grid(native_sr: int) -> Tuple[int, int]:
  """(up, down): 22,050 Hz sample k * up is native sample k * down."""
  gcd = math.gcd(native_sr, audio.SAMPLE_RATE)
  return audio.SAMPLE_RATE // gcd, native_sr // gcd


def _block_span(native_sr: int, first: int, last: int
                ) -> Tuple[int, int, int, int, int, int]:
  """Where `_read_block` reads the frames [first, last) from.

  Returns:
    (lo_frame: the first frame with its context, lo22 and hi22: the
    22,050 Hz samples kept, shift: resampled samples before lo22, lo and
    length: the native samples read, lo possibly < 0 (zeros)).
  """
  hop = audio.HOP_LENGTH
  lo_frame = max(first - audio.CONTEXT_FRAMES, 0)
  lo22, hi22 = lo_frame * hop, (last + audio.CONTEXT_FRAMES) * hop
  up, down = _grid(native_sr)
  shift = lo22 % up
  lo = (lo22 - shift) // up * down
  length = -(-(hi22 - lo22 + shift) * down // up)
  return lo_frame, lo22, hi22, shift, lo, length


def _read_block(handle, path, native_sr: int, total: int, first: int,
                last: int, stats: audio_info.SampleStats,
                stops: Optional[List[int]], frontend) -> _Block:
  """The samples of frames [max(first - C, 0), last + C) of the track.

  C = CONTEXT_FRAMES; frame f is centred on sample f * HOP_LENGTH (22.05
  kHz). The read starts where the native and 22,050 Hz sample grids meet,
  so the block's resampled samples are the whole track's (a polyphase
  filter's outputs sit on a grid fixed by the track's first sample), and the
  samples past the whole track's resampled length are zeroed, as they are
  past its end. The samples read are added to `stats`; where a read stops
  short of `total` is appended to `stops` and logged (stops=None: neither,
  the reference pass).
  """
  lo_frame, lo22, hi22, shift, lo, length = _block_span(
      native_sr, first, last)
  up, down = _grid(native_sr)
  segment = np.zeros(length, dtype=np.float32)
  src_lo, src_hi = max(lo, 0), min(lo + length, total)
  if src_hi > src_lo:
    if src_lo == 0 and handle.tell() != 0:
      handle.seek(0)  # read_frames seeks only to start > 0.
    data = audio.read_frames(handle, path, src_lo, src_hi - src_lo)
    if data.shape[0] < src_hi - src_lo and stops is not None:
      logging.warning('%s: the header promises %d samples but reading stopped '
                      'at %d; the rest is taken as silence.', path, total,
                      src_lo + data.shape[0])
      stops.append(src_lo + data.shape[0])
    y = audio.to_mono_float32(stats.add(data, src_lo))
    segment[src_lo - lo:src_lo - lo + y.size] = y
  y = audio.resample(segment, native_sr, audio.SAMPLE_RATE,
                     frontend=frontend)[shift:shift + hi22 - lo22].copy()
  y[max(0, -(-total * up // down) - lo22):] = 0.0
  n22 = int(math.ceil(total * audio.SAMPLE_RATE / native_sr))
  return _Block(y, lo_frame, n22 - lo22)


def _decodes_to(path, total: int) -> bool:
  """Whether the last of the `total` frames the header promises decode.

  On a handle of its own: the blocks' handle stays at frame 0 unsought (an
  mp3 sought back to 0 decodes ~1e-7 differently from a fresh one).
  """
  count = min(total, PROBE_FRAMES)
  with audio.open_audio(path) as handle:
    try:
      return audio.read_frames(handle, path, total - count,
                               count).shape[0] == count
    except features.FeatureError:
      return False  # A seek past the decodable end can fail outright.


def _measure(path) -> int:
  """Frames that decode, reading from the start MEASURE_FRAMES at a time."""
  frames = 0
  with audio.open_audio(path) as handle:
    while True:
      # start=0: read_frames does not seek, so each read continues the last.
      got = audio.read_frames(handle, path, 0, MEASURE_FRAMES).shape[0]
      frames += got
      if got < MEASURE_FRAMES:
        return frames


def _short(frames: int, native_sr: int) -> bool:
  """Shorter than one patch at 22,050 Hz (padded: one window)."""
  return frames * audio.SAMPLE_RATE < audio.PATCH_SAMPLES * native_sr


class WindowStream:
  """The whole-track prediction windows of an audio file, block by block.

  Equal (to ~0.01 dB) to
  `audio.track_windows(audio.track_spectrogram(path), drop=drop,
  overlap=overlap)`, dB relative to the whole track's maximum, with memory
  bounded by `windows_per_block` instead of the track length (two passes:
  the reference, then the windows). A track shorter than one patch gives one
  window padded with the -80 dB floor (it is small, so the whole-track
  functions are used).

  Iterating yields windows: np.ndarray [shape=(k, 322, 96), dtype=float32],
  dB in [-80, 0], 1 <= k <= windows_per_block, in track order; it raises
  FeatureError for a missing, empty, corrupt or undecodable file (before
  anything is yielded when the header cannot be read).

  Attributes:
    path: the file.
    info: audio_info.AudioInfo of what was read, set once the windows are
      all yielded (None before).
  """

  def __init__(self, path, *, drop: float = audio.WINDOW_DROP,
               overlap: float = audio.WINDOW_OVERLAP,
               windows_per_block: int = WINDOWS_PER_BLOCK, frontend=None):
    """Args: path (wav, flac, ogg or mp3; any rate, any channels), drop and
    overlap (config.eval track_trim / window_overlap), windows_per_block
    (windows computed together; memory ~ this), frontend (a
    frontends.FrontEnd or its name; None: frontends.DEFAULT)."""
    if windows_per_block < 1:
      raise ValueError(f'windows_per_block must be >= 1; got '
                       f'{windows_per_block}.')
    self.path = path
    self.drop, self.overlap = drop, overlap
    self.windows_per_block = windows_per_block
    self.frontend = frontends.get(frontend)
    self.info = None

  def __iter__(self) -> Iterator[np.ndarray]:
    path = self.path
    with audio.open_audio(path) as handle:
      native_sr, header = handle.samplerate, handle.frames
      total = header
      seekable = handle.seekable()
      if (total > 0 and seekable and not _short(total, native_sr) and
          not _decodes_to(path, total)):
        total = _measure(path)
        logging.warning('%s: the header promises %d samples but %d decode; '
                        'the windows are placed over those.', path, header,
                        total)
      if total <= 0 or _short(total, native_sr) or not seekable:
        # Tiny, or no usable length in the header: decode it whole (a file
        # without a length cannot be planned in blocks).
        if total > 0 and not _short(total, native_sr):
          logging.warning('%s is not seekable; decoding it whole.', path)
        y, self.info = audio.decode(path)
        spec = audio.padded_spectrogram(
            audio.resample(y, native_sr, audio.SAMPLE_RATE,
                           frontend=self.frontend), frontend=self.frontend)
        yield audio.track_windows(spec, drop=self.drop, overlap=self.overlap)
        return
      yield from self._blocks(handle, native_sr, total, header)

  def _blocks(self, handle, native_sr: int, total: int,
              header: int) -> Iterator[np.ndarray]:
    """The windows of a seekable file of `total` frames, then self.info."""
    stats = audio_info.SampleStats()
    stops: List[int] = []
    frames = num_frames(total, native_sr)
    starts = audio.window_starts(frames, drop=self.drop, overlap=self.overlap)
    ref = self._track_max_power(handle, native_sr, total, frames)
    for i in range(0, len(starts), self.windows_per_block):
      block = starts[i:i + self.windows_per_block]
      first, last = block[0], block[-1] + audio.PATCH_FRAMES
      power = _read_block(handle, self.path, native_sr, total, first, last,
                          stats, stops, self.frontend).power(
                              self.frontend, slice(first, last))
      size = audio.PATCH_FRAMES
      yield np.stack([audio.power_db(power[s - first:s - first + size],
                                     ref=ref) for s in block])
    self.info = stats.info(duration_s=min([total] + stops) / native_sr,
                           source_sr=native_sr, channels=handle.channels,
                           header_duration_s=header / native_sr)

  def _track_max_power(self, handle, native_sr: int, total: int,
                       frames: int) -> float:
    """Max |CQT|^2 over all `frames` of the track: the 0 dB reference.

    In blocks as long as the windows' (windows_per_block windows), so the
    first pass needs no more memory than the second.
    """
    span = ((self.windows_per_block - 1) * audio.window_hop(self.overlap) +
            audio.PATCH_FRAMES)
    stats = audio_info.SampleStats()  # Zeroes NaN; the info is pass two's.
    ref = 0.0
    for first in range(0, frames, span):
      last = min(first + span, frames)
      power = _read_block(handle, self.path, native_sr, total, first, last,
                          stats, None, self.frontend).power(
                              self.frontend, slice(first, last))
      ref = max(ref, float(power.max()))
    return ref


@dataclasses.dataclass(frozen=True)
class DecodedTrack:
  """A whole track decoded for its windows to be computed elsewhere (on
  the JAX device, in batches: input_pipeline.features.device_windows).

  Attributes:
    path: the file.
    samples: float32 [n] mono at `sample_rate`, NaN and Inf set to 0: the
      whole file (the frames that decode, where the header promises more,
      as the stream measures them).
    sample_rate: the file's rate, Hz.
    info: what `WindowStream(path, drop=drop, overlap=overlap).info` says
      of the file (its level facts over the same samples).
    drop, overlap: the window placement `info` was observed for.
  """
  path: str
  samples: np.ndarray
  sample_rate: int
  info: audio_info.AudioInfo
  drop: float
  overlap: float

  def window_starts(self) -> List[int]:
    """The first frame of each whole-track window (as WindowStream's)."""
    frames = num_frames(self.samples.size, self.sample_rate)
    return audio.window_starts(frames, drop=self.drop, overlap=self.overlap)


def decode_whole(path, *, drop: float = audio.WINDOW_DROP,
                 overlap: float = audio.WINDOW_OVERLAP,
                 max_seconds: float = WHOLE_TRACK_MAX_SECONDS
                 ) -> Optional[DecodedTrack]:
  """The whole file decoded, when WindowStream's windows can be cut from
  it: a DecodedTrack, else None (the stream must read it).

  None, and nothing else, for what the stream treats apart or words as an
  error: a file longer than `max_seconds` (memory), shorter than a patch,
  unseekable, whose header length does not decode (truncated), or that
  cannot be opened or decoded at all. Runs in a decoding worker (imports
  no JAX).
  """
  try:
    with audio.open_audio(path) as handle:
      native_sr, header = handle.samplerate, handle.frames
      if (header <= 0 or not handle.seekable() or _short(header, native_sr)
          or header > max_seconds * native_sr):
        return None
      data = audio.read_frames(handle, path, 0, header)
      channels = handle.channels
    # Fewer frames than promised: the stream measures what decodes and
    # places the windows over it, unless the header's end still decodes.
    total = data.shape[0]
    if total < header and (_decodes_to(path, header) or
                           _short(total, native_sr)):
      return None
    if total < header:
      logging.warning('%s: the header promises %d samples but %d decode; '
                      'the windows are placed over those.', path, header,
                      total)
  except features.FeatureError:
    return None
  stats = audio_info.SampleStats()
  frames = num_frames(total, native_sr)
  starts = audio.window_starts(frames, drop=drop, overlap=overlap)
  # The samples the stream reads for the windows: its level facts' span.
  _, _, _, _, lo, length = _block_span(native_sr, starts[0],
                                       starts[-1] + audio.PATCH_FRAMES)
  lo, hi = max(lo, 0), min(lo + length, total)
  stats.add(data[lo:hi], lo)
  finite = np.isfinite(data)
  if not finite.all():
    data = np.where(finite, data, np.float32(0.0))
  info = stats.info(duration_s=total / native_sr, source_sr=native_sr,
                    channels=channels, header_duration_s=header / native_sr)
  return DecodedTrack(os.fspath(path), audio.to_mono_float32(data),
                      native_sr, info, drop, overlap)


def stream_windows(path, *, drop: float = audio.WINDOW_DROP,
                   overlap: float = audio.WINDOW_OVERLAP,
                   windows_per_block: int = WINDOWS_PER_BLOCK,
                   frontend=None) -> Iterator[np.ndarray]:
  """The windows of `WindowStream(path, ...)`, without its info."""
  return iter(WindowStream(path, drop=drop, overlap=overlap,
                           windows_per_block=windows_per_block,
                           frontend=frontend))


def track_windows(path, **kwargs) -> np.ndarray:
  """All the windows of `stream_windows`, [n_windows, 322, 96] (tests)."""
  return np.concatenate(list(stream_windows(path, **kwargs)))

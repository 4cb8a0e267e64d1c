"""Audio features: CQT patches and whole-track windows (paper Sec 3.1).

22,050 Hz mono, constant-Q transform (hop 1024, 96 bins of 12 per octave from
C1, Hann window) of the whole decoded track, then
`power_to_db(|C|^2, ref=max, top_db=80)` with the maximum over the WHOLE
track (the authors' code: the track's spectrogram is converted to dB, then
cropped), as [frames, 96]: the track's loudest bin is 0 dB, its floor -80 dB,
and a quiet passage stays quiet in every crop of it. `track_spectrogram` is
that track-referenced log-CQT; both features are crops of it: one seeded
random 15 s patch (322 frames) per track for training (`audio_patch`), and
whole-track windows (15 % dropped at each end, 50 % overlap) for prediction
(`track_windows`, and `window_starts`, their positions, which
input_pipeline.features.streaming also cuts by, with the same track reference).

The resampling and the CQT are a front end's (input_pipeline.features.
frontends): JAX polyphase by default (`frontends.DEFAULT`), librosa soxr_hq
by name; every function that computes features takes `frontend=` (a
FrontEnd or its name), and a model's features must come from the front end
it was trained on (the shards' manifest records it).

Every reader raises `features.FeatureError` naming the file and the reason.
What decoding observed (length, rate, channels, clipping, NaN, silence) is an
`audio_info.AudioInfo` (`decode`, `audio_patch_and_windows(return_info=True)`,
input_pipeline.features.streaming); observing never changes the features.
"""

import os
from typing import List, Optional, Tuple

import numpy as np
import soundfile as sf

from input_pipeline import features
from input_pipeline.features import audio_info
from input_pipeline.features import cqt_params
from input_pipeline.features import frontends

# path, reason -> a features.FeatureError naming the file.
_error = features.error

SAMPLE_RATE = cqt_params.SAMPLE_RATE
HOP_LENGTH = cqt_params.HOP_LENGTH
N_BINS = cqt_params.N_BINS
BINS_PER_OCTAVE = cqt_params.BINS_PER_OCTAVE
FMIN_NOTE = cqt_params.FMIN_NOTE
FMIN_HZ = cqt_params.FMIN_HZ  # 32.70 Hz.
# A patch is 15 s of audio: int(15 * 22050 / 1024) = 322 CQT frames.
PATCH_SECONDS = 15.0
PATCH_FRAMES = int(PATCH_SECONDS * SAMPLE_RATE / HOP_LENGTH)  # = 322
PATCH_SAMPLES = int(round(PATCH_SECONDS * SAMPLE_RATE))  # 330,750 at 22.05k.
# The dB floor below the track's maximum, and the least power (cqt_params).
TOP_DB = cqt_params.TOP_DB
AMIN = cqt_params.AMIN
# Audio read on each side of a block of frames
# (input_pipeline.features.streaming) so that its CQT frames see the same signal
# as in a whole-track CQT. The lowest octave is transformed at 22,050 / 128 Hz
# with a 128-point frame (the C1 filter, Q = 1 / (2^(1/12) - 1), is ~11,700
# samples long at 22,050 Hz), so a frame reads 8,192 samples on each side;
# the seven 2:1 polyphase downsamplings before it add 20 * (1 + ... + 64)
# = 2,540, the 41-tap filters of the resampling to 22,050 Hz a few tens:
# ~10,800 samples, under the 16,384 of 16 frames (0.74 s), which leaves
# room for soxr's filters too. A whole number of hops keeps the frame grid
# (and each octave's 2:1 grid) aligned.
CONTEXT_FRAMES = 16
# Whole-track prediction windows (the authors' code; docs/fidelity.md).
WINDOW_DROP = 0.15
WINDOW_OVERLAP = 0.5


def to_mono_float32(data: np.ndarray) -> np.ndarray:
  """[n, channels] -> [n] mean over channels (librosa.to_mono)."""
  return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else (
      data[:, 0].astype(np.float32, copy=False))


def resample(y: np.ndarray, orig_sr: int, sr: int, *,
             frontend=None) -> np.ndarray:
  """[n] at orig_sr -> [ceil(n * sr / orig_sr)] float32 at sr.

  With `frontend`'s resampler (a frontends.FrontEnd or its name; None:
  frontends.DEFAULT, JAX polyphase).
  """
  return frontends.get(frontend).resample(y, orig_sr, sr)


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
               duration_s: Optional[float] = None,
               frontend=None) -> np.ndarray:
  """Loads a mono signal at `sr` Hz, reading only the requested range.

  Args:
    path: wav, flac, ogg or mp3 file; any sample rate, any channel count.
    sr: target sample rate > 0 [scalar].
    offset_s: start of the range in seconds >= 0 [scalar].
    duration_s: length of the range in seconds > 0, or None for the rest of
      the file.
    frontend: whose resampler (see `resample`).

  Returns:
    y: np.ndarray [shape=(n,), dtype=float32], the mean of the channels,
      resampled. n is shorter than `duration_s * sr` when the file ends
      first.

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
  return resample(y, native_sr, sr, frontend=frontend)


def decode(path, *, nonfinite: str = 'zero'
           ) -> Tuple[np.ndarray, audio_info.AudioInfo]:
  """The whole file as mono at its own rate, and what decoding observed.

  Args:
    path: wav, flac, ogg or mp3 file; any sample rate, any channel count.
    nonfinite: 'zero' (tagging) sets NaN and infinite samples to 0, counted
      in the info; 'raise' (training, as `load_audio`) refuses them.

  Returns:
    y: np.ndarray [shape=(n,), dtype=float32] at info.source_sr, n > 0, the
      mean of the channels.
    info: AudioInfo over the whole file.

  Raises:
    FeatureError: see `load_audio`.
  """
  if nonfinite not in ('zero', 'raise'):
    raise ValueError(f"nonfinite must be 'zero' or 'raise'; got {nonfinite!r}")
  with open_audio(path) as handle:
    native_sr, header = handle.samplerate, handle.frames
    data = read_frames(handle, path, 0, -1)
  stats = audio_info.SampleStats()
  data = stats.add(data, 0)
  if stats.nonfinite and nonfinite == 'raise':
    raise _error(path, 'the audio contains NaN or infinite samples')
  y = _check_samples(to_mono_float32(data), path)
  return y, stats.info(duration_s=y.size / native_sr, source_sr=native_sr,
                       channels=data.shape[1],
                       header_duration_s=header / native_sr if header > 0
                       else None)


def cqt_db(y: np.ndarray, *, sr: int = SAMPLE_RATE,
           top_db: Optional[float] = TOP_DB, frontend=None) -> np.ndarray:
  """Log-power constant-Q spectrogram of a whole signal (Sec 3.1).

  `librosa.cqt(hop_length=1024, fmin=C1, n_bins=96, bins_per_octave=12,
  window='hann')`, then `power_to_db(|C|^2, ref=np.max, top_db=80)` with the
  maximum over all of `y` (pass the whole track: the features are crops of
  this): its loudest bin is 0 dB and everything is in [-80, 0]. Digital
  silence (all zeros), for which ref=max is undefined, gives the floor -80 dB
  everywhere, the value a silent stretch gets inside a louder track.

  Args:
    y: np.ndarray [shape=(n,)], mono audio at `sr`; n > 0, finite.
    sr: sample rate > 0 [scalar].
    top_db: dynamic range kept below the maximum, or None to keep all (down
      to power AMIN).
    frontend: whose CQT (see `cqt_power`).

  Returns:
    spec: np.ndarray [shape=(1 + n // 1024, 96), dtype=float32], dB.
  """
  return power_db(cqt_power(y, sr=sr, frontend=frontend), top_db=top_db)


def cqt_power(y: np.ndarray, *, sr: int = SAMPLE_RATE, frontend=None,
              length: Optional[int] = None) -> np.ndarray:
  """|CQT|^2 of mono y [n] as [1 + n // 1024, 96] float32.

  By `frontend` (a frontends.FrontEnd or its name; None: frontends.DEFAULT,
  JAX polyphase); `length`: FrontEnd.cqt_power's.
  """
  return frontends.get(frontend).cqt_power(y, sr=sr, length=length)


def power_db(power: np.ndarray, top_db: Optional[float] = TOP_DB,
             ref: Optional[float] = None) -> np.ndarray:
  """`librosa.power_to_db(power, ref, top_db)`, the floor relative to `ref`.

  Args:
    power: np.ndarray [any shape] >= 0, |CQT|^2.
    top_db: the floor is `top_db` dB below `ref` (librosa clips below the
      maximum of `power` instead; the same when `ref` is that maximum), or
      None for no floor (down to AMIN).
    ref: the reference power, 0 dB: the maximum over the whole track when
      `power` is a crop of it (input_pipeline.features.streaming); None: the
      maximum of `power`. Values are capped at 0 dB, which a crop computed apart
      from the track's reference may pass by a few thousandths of a dB.

  Returns:
    np.ndarray [power.shape, dtype=float32], dB in [-top_db, 0]; the floor
    everywhere when ref is 0 (digital silence).
  """
  power = np.asarray(power, dtype=np.float32)
  if ref is None:
    ref = float(power.max()) if power.size else 0.0
  if not ref > 0:
    return np.full(power.shape, -(top_db or TOP_DB), dtype=np.float32)
  # Both logs in float32, so the reference bin itself is exactly 0 dB.
  ref = np.float32(max(float(ref), AMIN))
  db = 10.0 * (np.log10(np.maximum(power, np.float32(AMIN))) - np.log10(ref))
  return np.clip(db, None if top_db is None else -top_db, 0.0).astype(
      np.float32)


def track_spectrogram(path, *, sr: int = SAMPLE_RATE,
                      frontend=None) -> np.ndarray:
  """The track-referenced log-CQT of a whole file, padded to one patch.

  `cqt_db` of the whole decoded file (every sample of it: the reference is
  the maximum over the whole track, the 15 % that the windows drop at each
  end included), in dB relative to that maximum, floor -80 dB. The training
  patch (`audio_patch`) and the prediction windows (`track_windows`) are
  crops of it.

  Args:
    path: audio file (see `load_audio`).
    sr: sample rate [scalar].
    frontend: a frontends.FrontEnd or its name; None: frontends.DEFAULT.

  Returns:
    spec: np.ndarray [shape=(frames >= 322, 96), dtype=float32], dB in
      [-80, 0]; feed it to `track_windows`.
  """
  return padded_spectrogram(load_audio(path, sr=sr, frontend=frontend),
                            sr=sr, frontend=frontend)


def padded_spectrogram(y: np.ndarray, *, sr: int = SAMPLE_RATE,
                       frontend=None) -> np.ndarray:
  """`track_spectrogram` of a decoded mono signal y [n] at `sr`."""
  min_samples = int(round(PATCH_SECONDS * sr))
  if y.size < min_samples:
    # Silence, like `audio_patch`: the pad becomes the dB floor.
    y = np.pad(y, (0, min_samples - y.size))
  return cqt_db(y, sr=sr, frontend=frontend)


def patch_frame(num_samples: int, *, sr: int, seed: int) -> int:
  """The seeded random first CQT frame of a 15 s crop.

  Drawn uniformly over the frames that keep the crop inside the track.

  Args:
    num_samples: length of the track at `sr` > 0 [scalar].
    sr: the track's sample rate > 0 [scalar].
    seed: any int >= 0.

  Returns:
    frame: in [0, max(0, (num_samples - 15 s) // hop)], hop = 1024 samples
      at 22,050 Hz.
  """
  hop = HOP_LENGTH * sr / SAMPLE_RATE
  last = max(0, int((num_samples - PATCH_SECONDS * sr) // hop))
  return int(np.random.default_rng(seed).integers(0, last + 1))


def patch_offset(num_samples: int, *, sr: int, seed: int) -> int:
  """`patch_frame` in samples at `sr`: the crop's start on the frame grid.

  Returns:
    start: in samples at `sr`, in [0, max(0, num_samples - 15 s)].
  """
  hop = HOP_LENGTH * sr / SAMPLE_RATE
  return int(round(patch_frame(num_samples, sr=sr, seed=seed) * hop))


def _decoded_spectrogram(path, frontend) -> Tuple[np.ndarray, int, int,
                                                  audio_info.AudioInfo]:
  """(track_spectrogram, native length, native rate, info) of one decode."""
  y, info = decode(path, nonfinite='raise')
  spec = padded_spectrogram(
      resample(y, info.source_sr, SAMPLE_RATE, frontend=frontend),
      frontend=frontend)
  return spec, y.size, info.source_sr, info


def audio_patch(path, *, seed: int, frontend=None) -> np.ndarray:
  """One seeded random 15 s patch of a track (Sec 3.1).

  The 322 frames from `patch_frame` of the track-referenced log-CQT
  (`track_spectrogram`): the whole file is decoded and transformed, as the
  authors' code does, so the patch is in dB relative to the WHOLE track's
  maximum (a crop of a quiet passage stays well below 0 dB) with the floor
  80 dB below it. A track shorter than 15 s is zero-padded at its end
  (silence, so the pad is the -80 dB floor). The crop depends only on the
  track length and `seed`.

  Args:
    path: wav, flac, ogg or mp3 file.
    seed: crop seed, an int >= 0 (`prepare_workers.track_seed` derives one
      per track).
    frontend: a frontends.FrontEnd or its name; None: frontends.DEFAULT.

  Returns:
    patch: np.ndarray [shape=(322, 96), dtype=float32], dB in [-80, 0].

  Raises:
    FeatureError: see `load_audio`.
  """
  spec, num_samples, native_sr, _ = _decoded_spectrogram(path, frontend)
  frame = patch_frame(num_samples, sr=native_sr, seed=seed)
  return spec[frame:frame + PATCH_FRAMES].copy()


def audio_patch_and_windows(path, *, seed: int, return_info: bool = False,
                            frontend=None) -> Tuple[np.ndarray, ...]:
  """`audio_patch` and the `track_windows` of a track, decoding it once.

  Both are crops of one track-referenced spectrogram (`track_spectrogram`),
  so the patch equals `audio_patch` and the windows
  `track_windows(track_spectrogram(path))`, bit for bit: the training
  patches and audio_stats.npz do not depend on whether windows are written.

  Args:
    path: wav, flac, ogg or mp3 file.
    seed: crop seed of the patch, an int >= 0.
    return_info: also return the file's AudioInfo (features unchanged).
    frontend: a frontends.FrontEnd or its name; None: frontends.DEFAULT.

  Returns:
    patch: np.ndarray [shape=(322, 96), dtype=float32], dB in [-80, 0].
    windows: np.ndarray [shape=(n_windows, 322, 96), dtype=float32], dB in
      [-80, 0], n_windows >= 1.
    info: AudioInfo over the whole file, with return_info only.

  Raises:
    FeatureError: see `load_audio` (NaN samples too).
  """
  spec, num_samples, native_sr, info = _decoded_spectrogram(path, frontend)
  frame = patch_frame(num_samples, sr=native_sr, seed=seed)
  patch = spec[frame:frame + PATCH_FRAMES].copy()
  windows = track_windows(spec)
  return (patch, windows, info) if return_info else (patch, windows)


def _check_window_args(drop: float, overlap: float) -> None:
  if not 0 <= drop < 0.5 or not 0 <= overlap < 1:
    raise ValueError(f'drop ({drop}) must be in [0, 0.5) and overlap '
                     f'({overlap}) in [0, 1).')


def window_hop(overlap: float = WINDOW_OVERLAP) -> int:
  """Frames between consecutive window starts: int(322 * (1 - overlap))."""
  return max(1, int(PATCH_FRAMES * (1 - overlap)))


def window_starts(frames: int, *, drop: float = WINDOW_DROP,
                  overlap: float = WINDOW_OVERLAP) -> List[int]:
  """First frame of each whole-track prediction window (docs/fidelity.md).

  Drops `drop` of the frames at each end, then places 322-frame windows
  with `overlap` over the kept middle; when the middle is shorter than a
  patch, one window centred in the whole track. `track_windows` cuts a
  spectrogram there, and input_pipeline.features.streaming a file, block by
  block.

  Args:
    frames: CQT frames of the track (>= PATCH_FRAMES).
    drop: fraction of frames dropped at each end, in [0, 0.5).
    overlap: fraction shared by consecutive windows, in [0, 1).

  Returns:
    The starts, ascending: 1 + (kept - 322) // hop of them, `window_hop`.
  """
  if frames < PATCH_FRAMES:
    raise ValueError(f'window_starts needs >= {PATCH_FRAMES} frames; '
                     f'got {frames}.')
  _check_window_args(drop, overlap)
  cut = int(frames * drop)
  lo, hi = cut, frames - cut
  hop = window_hop(overlap)
  if hi - lo < PATCH_FRAMES:
    lo = (frames - PATCH_FRAMES) // 2
    hi = lo + PATCH_FRAMES
  return list(range(lo, hi - PATCH_FRAMES + 1, hop))


def track_windows(spec: np.ndarray, *, drop: float = WINDOW_DROP,
                  overlap: float = WINDOW_OVERLAP) -> np.ndarray:
  """Whole-track prediction windows (docs/fidelity.md).

  Cuts 322-frame windows at `window_starts` (`drop` of the frames dropped
  at each end, `overlap` between windows); the network's outputs are
  averaged over them. The values are kept as they are: each window stays in
  dB relative to the whole track's maximum, like the training patch
  (`audio_patch`), whose statistics (audio_stats.npz) standardise both. A
  spec shorter than one patch gives one window padded at its end with the
  -80 dB floor (as `audio_patch` pads with silence).

  Args:
    spec: np.ndarray [shape=(frames, 96)], dB relative to the track's
      maximum (`track_spectrogram`).
    drop: fraction of frames dropped at each end, in [0, 0.5).
    overlap: fraction of a window shared with the next, in [0, 1).

  Returns:
    windows: np.ndarray [shape=(n_windows, 322, 96), dtype=float32],
      n_windows = 1 + (kept - 322) // hop, hop = `window_hop(overlap)`.
  """
  spec = np.asarray(spec, dtype=np.float32)
  if spec.ndim != 2 or spec.shape[1] != N_BINS or spec.shape[0] == 0:
    raise ValueError(f'track_windows needs a [frames, {N_BINS}] spectrogram; '
                     f'got shape {spec.shape}.')
  _check_window_args(drop, overlap)
  frames = spec.shape[0]
  if frames < PATCH_FRAMES:
    windows = np.full((1, PATCH_FRAMES, N_BINS), -TOP_DB, dtype=np.float32)
    windows[0, :frames] = spec
    return windows
  starts = window_starts(frames, drop=drop, overlap=overlap)
  return np.stack([spec[s:s + PATCH_FRAMES] for s in starts]).astype(
      np.float32)

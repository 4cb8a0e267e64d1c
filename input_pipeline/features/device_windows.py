"""Whole-track windows of decoded tracks, computed on the JAX device in batches.

`streaming.WindowStream` computes a file's prediction windows a block at a
time on the host side of the front end, one track after another. Here the
tracks arrive decoded whole at their own rates (`streaming.decode_whole`,
in decoding worker processes) and everything after decoding runs on the
default JAX device: the polyphase resampling to 22,050 Hz, the CQT, the dB
conversion against each track's maximum, the cut into windows and their
standardisation, several tracks per call. The windows are the stream's with
the JAX polyphase front end (`frontends.JAX_POLYPHASE`), to float32
precision (tests/input_pipeline/features/device_windows_test.py): the
stream's blocks equal the whole-track CQT, and the windows start at the
same frames (`DecodedTrack.window_starts`).

  for owners, x in device_windows.standardised_windows(tracks, mean, std):
    owners   # int [W]: the index in `tracks` of each window
    x        # jax.Array float32 [W, 322, 96, 1] on the device

Tracks are grouped by rate and padded length (cqt_jax.bucket_length), at
most `max_tracks` a call and `max_samples` samples a call, the batch padded
to a power of two: a corpus compiles a few programs per rate (the CQT
program for a 4-minute 44.1 kHz track takes ~1 s to compile on a CPU core;
JAX's persistent compilation cache keeps them between runs).
"""

import collections
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.features import audio
from input_pipeline.features import cqt_jax
from input_pipeline.features import streaming

# A call's batch: at most this many tracks and this many (padded) samples,
# 128 MiB of float32 input (4 tracks of 4 minutes at 44.1 kHz).
MAX_TRACKS_PER_CALL = 16
MAX_SAMPLES_PER_CALL = 1 << 25


def _power_of_two(n: int) -> int:
  return 1 << max(0, n - 1).bit_length()


@jax.jit
def _cut(spec: jax.Array, rows: jax.Array, starts: jax.Array,
         mean: jax.Array, std: jax.Array) -> jax.Array:
  """Standardised windows [W, 322, 96, 1] of spec [B, F, 96] at (rows,
  starts) [W]; mean and std [322, 96]."""
  frames = starts[:, None] + jnp.arange(audio.PATCH_FRAMES)[None, :]
  windows = spec[rows[:, None], frames]
  return ((windows - mean) / std)[..., None]


def _groups(tracks: Sequence[streaming.DecodedTrack], max_tracks: int,
            max_samples: int) -> Iterator[Tuple[int, int, List[int]]]:
  """(rate, padded length, track indices) of each call, in track order of
  each group's first track."""
  by_shape: Dict[Tuple[int, int], List[int]] = collections.defaultdict(list)
  for index, track in enumerate(tracks):
    key = (track.sample_rate, cqt_jax.bucket_length(track.samples.size))
    by_shape[key].append(index)
  for (rate, length), indices in by_shape.items():
    per_call = max(1, min(max_tracks, max_samples // length))
    for lo in range(0, len(indices), per_call):
      yield rate, length, indices[lo:lo + per_call]


def standardised_windows(tracks: Sequence[streaming.DecodedTrack],
                         mean: np.ndarray, std: np.ndarray, *,
                         max_tracks: int = MAX_TRACKS_PER_CALL,
                         max_samples: int = MAX_SAMPLES_PER_CALL,
                         padded_rows: Callable[[int], int] = int
                         ) -> Iterator[Tuple[np.ndarray, jax.Array]]:
  """The standardised windows of decoded tracks, a call's tracks at a time.

  Args:
    tracks: DecodedTracks (not shorter than a patch: decode_whole's).
    mean, std: float32 [322, 96], the training split's statistics.
    max_tracks, max_samples: a call's limits (module docstring).
    padded_rows: W -> the rows of x (>= W): the batch sizes of the
      network that takes them, so that slicing x compiles nothing new.

  Yields:
    (owners int [W]: each window's index in `tracks`, in track then time
    order; x: jax.Array float32 [padded_rows(W), 322, 96, 1] on the
    default device, (window - mean) / std, the rows past W copies of the
    first window), one per call; every track's windows are in exactly one.
  """
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  for rate, length, indices in _groups(tracks, max_tracks, max_samples):
    batch = np.zeros((_power_of_two(len(indices)), length), np.float32)
    lengths = np.ones(len(batch), np.int64)  # Padding rows: 1 sample.
    owners, rows, starts = [], [], []
    for row, index in enumerate(indices):
      samples = tracks[index].samples
      batch[row, :samples.size] = samples
      lengths[row] = samples.size
      found = tracks[index].window_starts()
      owners += [index] * len(found)
      rows += [row] * len(found)
      starts += found
    spec = cqt_jax.cqt_db(batch, rate, length=lengths)
    pad = padded_rows(len(owners)) - len(owners)
    x = _cut(spec, np.asarray(rows + rows[:1] * pad, np.int32),
             np.asarray(starts + starts[:1] * pad, np.int32), mean, std)
    yield np.asarray(owners, np.int64), x

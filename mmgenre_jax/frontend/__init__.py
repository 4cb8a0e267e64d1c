"""The audio front end on the default JAX device: waveform -> log-CQT.

The project's features (input_pipeline.features.audio: 22,050 Hz mono,
constant-Q transform with hop 1024, 96 bins of 12 per octave from C1, Hann
window, dB relative to the whole track's maximum, floor -80 dB) computed
in JAX, numerically librosa's with `res_type='polyphase'`
(input_pipeline.features.cqt_jax and resample_jax hold the code):

  import mmgenre_jax.frontend as frontend
  mag = frontend.cqt(audio, 48000)       # [..., frames, 96] float32
  spec = frontend.power_db(mag ** 2)     # dB in [-80, 0], per track
  spec = frontend.cqt_db(audio, 48000)   # the same, one jitted call
  y = frontend.resample(audio, 48000)    # [..., ceil(n * 22050 / 48000)]
  specs = frontend.log_cqt([y1, y2], 44100)  # numpy [frames_i, 96] each

This is the project's audio front end: `mmgenre prepare` (training
patches, windows, statistics), the streaming reader and tagging compute
the same numbers through input_pipeline.features.frontends.JAX_POLYPHASE
('jax_polyphase', the default; 'librosa_soxr_hq' names librosa's, the
features of shards with no recorded front end), which the shards'
manifest records.

Audio is mono [..., samples] (average the channels first) at any positive
integer rate; leading axes are tracks. Everything is jittable and stays on
the device; the filters are built once per configuration on the host.
Compilation is per input shape and rate: tracks of other lengths share
one when padded and given their `length` (`log_cqt` does it, padding to
`bucket_length`, 4 lengths per octave).
"""

from typing import List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.features import audio as audio_features
from input_pipeline.features import cqt_jax
from input_pipeline.features import resample_jax

SAMPLE_RATE = audio_features.SAMPLE_RATE
N_BINS = audio_features.N_BINS
TOP_DB = audio_features.TOP_DB

power_db = cqt_jax.power_db
bucket_length = cqt_jax.bucket_length
frames_of = cqt_jax.frames_of


def _rate(sample_rate) -> int:
  """A positive integer rate in Hz; ValueError otherwise."""
  if (isinstance(sample_rate, bool) or int(sample_rate) != sample_rate
      or sample_rate <= 0):
    raise ValueError(f'sample rates must be positive integers (Hz); got '
                     f'{sample_rate!r}.')
  return int(sample_rate)


def _checked(audio) -> jax.Array:
  """audio as float32 [..., n >= 1]; ValueError naming the fix otherwise."""
  audio = jnp.asarray(audio, jnp.float32)
  if audio.ndim == 0 or audio.shape[-1] == 0:
    raise ValueError(f'audio must be mono [..., samples] with samples >= 1 '
                     f'(average the channels first); got shape '
                     f'{audio.shape}.')
  return audio


def cqt(audio, sample_rate: int, length=None) -> jax.Array:
  """|CQT| of mono audio, numerically librosa.cqt(res_type='polyphase').

  Args:
    audio: [..., samples] float mono audio (jax or numpy) at
      `sample_rate`; leading axes are tracks.
    sample_rate: the audio's rate, a positive integer [scalar].
    length: None, or host ints [...]: each track is audio[..., :length],
      the rest padding.

  Returns:
    magnitude: jax.Array [shape=(..., frames, 96), dtype=float32], frames
      = 1 + m // 1024 for the m = ceil(samples * 22050 / sample_rate)
      samples at 22,050 Hz; with `length`, a track's own frames are its
      first frames_of(length, sample_rate).
  """
  return cqt_jax.cqt(_checked(audio), _rate(sample_rate), length)


def cqt_db(audio, sample_rate: int, top_db: Optional[float] = TOP_DB,
           length=None) -> jax.Array:
  """The project's log-CQT of whole tracks: power_db(cqt(...) ** 2).

  Args:
    audio: [..., samples] float mono whole tracks at `sample_rate`.
    sample_rate: a positive integer [scalar].
    top_db: dynamic range kept below each track's maximum, or None.
    length: None, or host ints [...] (see `cqt`); the frames after a
      track's own are the floor.

  Returns:
    spec: jax.Array [shape=(..., frames, 96), dtype=float32], dB in
      [-top_db, 0] relative to each track's maximum.
  """
  return cqt_jax.cqt_db(_checked(audio), _rate(sample_rate), top_db, length)


def log_cqt(tracks: Sequence, sample_rate: int,
            top_db: Optional[float] = TOP_DB) -> List[np.ndarray]:
  """cqt_db of mono tracks of any lengths in one call, as numpy arrays.

  Args:
    tracks: mono float arrays [n_i >= 1] at `sample_rate`.
    sample_rate: a positive integer [scalar].
    top_db: dynamic range kept below each track's maximum, or None.

  Returns:
    One np.ndarray [shape=(frames_of(n_i), 96), dtype=float32] per track.
  """
  if not tracks or any(np.ndim(y) != 1 or np.size(y) == 0 for y in tracks):
    raise ValueError('log_cqt needs a non-empty list of mono tracks [n >= 1] '
                     '(average the channels first).')
  return cqt_jax.log_cqt(tracks, _rate(sample_rate), top_db)


def resample(audio, sample_rate: int,
             target_rate: int = SAMPLE_RATE) -> jax.Array:
  """librosa.resample(res_type='polyphase') = scipy's resample_poly.

  Args:
    audio: [..., samples] float audio at `sample_rate`.
    sample_rate: a positive integer [scalar].
    target_rate: a positive integer [scalar], 22,050 Hz by default.

  Returns:
    y: jax.Array [shape=(..., ceil(samples * target_rate / sample_rate)),
      dtype=float32].
  """
  return _resample(_checked(audio), _rate(sample_rate), _rate(target_rate))


@jax.jit
def _mono(audio):
  return jnp.mean(audio, axis=-1)


def to_mono(audio) -> jax.Array:
  """Decoded [..., samples, channels] -> mono [..., samples], their mean.

  The layout soundfile decodes to; the mean is audio.to_mono_float32's.
  """
  return _mono(jnp.asarray(audio, jnp.float32))


_resample = jax.jit(resample_jax.resample, static_argnums=(1, 2))

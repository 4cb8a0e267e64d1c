"""The audio front ends: the code that turns a waveform into the log-CQT.

The features (cqt_params: 22,050 Hz mono, constant-Q transform, dB relative
to the whole track's maximum) can be computed two ways, each a `FrontEnd`
named as manifests record it (BENCHMARKS.md §11):

- `JAX_POLYPHASE` ('jax_polyphase', the project's: `DEFAULT`): polyphase
  resampling and the CQT in JAX (resample_jax, cqt_jax), numerically
  librosa's with res_type='polyphase'; 4.5x faster than librosa on one
  core for the CQT of a 30-s track, and the same code runs on an
  accelerator.
- `LIBROSA_SOXR_HQ` ('librosa_soxr_hq'): librosa.resample and librosa.cqt
  with soxr_hq, the project's features until the JAX front end
  (`UNRECORDED`: shards and workdirs with no record were made with it),
  and the reference of the tests. The two differ by a median 0.01 dB, up
  to 1.5-3 dB in the lowest octaves (the resamplers), a model's scores by
  up to 0.005.

A model is fed by the front end its training shards were made with:
`recorded(manifest)` reads it, and `check_same` refuses another one.

  fe = frontends.named('librosa_soxr_hq')
  y22 = fe.resample(y, 44100, 22050)      # float32 [ceil(n / 2)]
  power = fe.cqt_power(y22)               # float32 [1 + n22 // 1024, 96]
"""

import dataclasses
from typing import Callable, Mapping, Optional

import librosa
import numpy as np

from input_pipeline import errors as input_errors
from input_pipeline.features import cqt_params

# The manifest's key (and a training workdir's) naming the front end.
MANIFEST_KEY = 'frontend'


class FrontEndMismatch(input_errors.UserError, ValueError):
  """A model would be fed features of another front end than its own."""


@dataclasses.dataclass(frozen=True)
class FrontEnd:
  """One way of computing the features.

  Attributes:
    name: how manifests and `--frontend` spell it.
    description: one line for errors and docs.
    resample_fn: (y [n] float32, orig_sr, sr) -> float32 [ceil(n * sr /
      orig_sr)], rates different.
    cqt_power_fn: (y [n] float32 at sr, sr, length) -> |CQT|^2 float32
      [1 + n // 1024, 96] of y[:length] zero-padded to n.
    on_device: its resampling and CQT are JAX programs, which can also
      take whole decoded tracks in batches on the default JAX device
      (input_pipeline.features.device_windows) with the same windows.
  """
  name: str
  description: str
  resample_fn: Callable[..., np.ndarray]
  cqt_power_fn: Callable[..., np.ndarray]
  on_device: bool = False

  def __reduce__(self):
    # Workers receive the registry's object (identity compares), not a copy.
    return named, (self.name,)

  def resample(self, y: np.ndarray, orig_sr: int,
               sr: int = cqt_params.SAMPLE_RATE) -> np.ndarray:
    """[n] at orig_sr -> float32 [ceil(n * sr / orig_sr)] at sr."""
    if orig_sr == sr:
      return y
    return self.resample_fn(np.asarray(y, np.float32), orig_sr, sr)

  def cqt_power(self, y: np.ndarray, *, sr: int = cqt_params.SAMPLE_RATE,
                length: Optional[int] = None) -> np.ndarray:
    """|CQT|^2 [1 + n // 1024, 96] float32 of mono y [n] at `sr`.

    Args:
      y: [n] finite mono audio, n >= 1.
      sr: its rate [scalar].
      length: None, or the samples of the track in y (the rest is zero
        padding, cut at every octave as the whole track's end is): a block
        at the end of a track (input_pipeline.features.streaming).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
      raise ValueError(f'the CQT needs a non-empty mono signal [n]; got '
                       f'shape {y.shape}.')
    if not np.all(np.isfinite(y)):
      raise ValueError('the CQT got NaN or infinite samples.')
    length = y.size if length is None else max(1, min(int(length), y.size))
    return self.cqt_power_fn(y, sr, length)


def _librosa_resample(y: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
  return librosa.resample(y, orig_sr=orig_sr, target_sr=sr,
                          res_type='soxr_hq').astype(np.float32, copy=False)


def _librosa_cqt_power(y: np.ndarray, sr: int, length: int) -> np.ndarray:
  c = librosa.cqt(y[:length], sr=sr, hop_length=cqt_params.HOP_LENGTH,
                  fmin=cqt_params.FMIN_HZ, n_bins=cqt_params.N_BINS,
                  bins_per_octave=cqt_params.BINS_PER_OCTAVE,
                  window='hann', res_type='soxr_hq')
  power = (np.abs(c) ** 2).T.astype(np.float32)
  frames = 1 + y.size // cqt_params.HOP_LENGTH
  # Past the track's end (length < n) a zero-padded CQT has no energy
  # worth a frame's; the callers crop inside the track.
  return np.pad(power, ((0, max(0, frames - power.shape[0])), (0, 0)))


def _jax_resample(y: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
  # Imported here: jax takes seconds to import, and only this front end
  # needs it (a prepare worker on librosa never loads it).
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import cqt_jax
  return cqt_jax.resample_host(y, orig_sr, sr)


def _jax_cqt_power(y: np.ndarray, sr: int, length: int) -> np.ndarray:
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import cqt_jax
  return cqt_jax.cqt_power_host(y, sr, length)


JAX_POLYPHASE = FrontEnd(
    'jax_polyphase', 'polyphase resampling and the CQT in JAX (librosa '
    "res_type='polyphase' within float32 precision)", _jax_resample,
    _jax_cqt_power, on_device=True)
LIBROSA_SOXR_HQ = FrontEnd(
    'librosa_soxr_hq', 'librosa.resample and librosa.cqt with soxr_hq (the '
    'features of shards with no recorded front end)', _librosa_resample,
    _librosa_cqt_power)
BY_NAME = {f.name: f for f in (JAX_POLYPHASE, LIBROSA_SOXR_HQ)}
# What `mmgenre prepare` uses unless told otherwise.
DEFAULT = JAX_POLYPHASE
# What made the shards and models that record no front end: all of them
# were prepared before the record existed, with librosa soxr_hq.
UNRECORDED = LIBROSA_SOXR_HQ


def named(name: str) -> FrontEnd:
  """The front end called `name`; ValueError listing the names otherwise."""
  try:
    return BY_NAME[name]
  except (KeyError, TypeError):
    raise ValueError(f'unknown audio front end {name!r}; expected one of '
                     f'{sorted(BY_NAME)}.') from None


def get(frontend) -> FrontEnd:
  """A FrontEnd from itself, its name, or None (`DEFAULT`)."""
  if frontend is None:
    return DEFAULT
  return frontend if isinstance(frontend, FrontEnd) else named(frontend)


def recorded(manifest: Optional[Mapping]) -> FrontEnd:
  """The front end a manifest (or a workdir's record) says made its data.

  A record without the key is from before the record: `UNRECORDED`.
  """
  name = (manifest or {}).get(MANIFEST_KEY)
  return UNRECORDED if name is None else named(name)


def check_same(model: FrontEnd, data: FrontEnd, *, model_what: str,
               data_what: str) -> None:
  """Raises FrontEndMismatch unless `data` is the front end of `model`.

  Args:
    model: the front end the model was trained on.
    data: the one that would feed it.
    model_what, data_what: what each is (a workdir, shards, a flag), named
      in the message.
  """
  if model is data:
    return
  raise FrontEndMismatch(
      f'{model_what} was trained on features of the {model.name!r} audio '
      f'front end ({model.description}), but {data_what} uses '
      f'{data.name!r} ({data.description}); a model must be fed the '
      f'features it was trained on. Use the model\'s front end (mmgenre '
      f'prepare --frontend {model.name}, or leave --frontend out where the '
      f'model is read), or retrain the model on shards prepared with '
      f'--frontend {data.name}.')

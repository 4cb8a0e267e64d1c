"""The project's constant-Q transform in JAX, computed as librosa computes it.

`cqt_magnitude(y)` is `abs(librosa.cqt(y, sr=22050, hop_length=1024,
fmin=C1, n_bins=96, bins_per_octave=12, window='hann',
res_type='polyphase'))`, transposed to [..., frames, 96], by librosa 0.11's
own algorithm (`librosa.vqt`): octave by octave from the top, each octave a
short-time transform of the signal at that octave's rate against its
filter basis, then a 2:1 polyphase downsample (times sqrt(2), librosa's
`scale=True`) for the next octave, with librosa's early downsampling when
its test asks for it, and each bin divided by sqrt of its filter length.

The filter bases are librosa's own (`__vqt_filter_fft`: Hann wavelets, L1
norm, sparsified at quantile 0.01, in the frequency domain), built once per
configuration on the host. Each octave's FFT-then-basis product is folded
into one real matrix (the basis times the DFT, and the octave's scale
factors) applied to the centred, zero-padded frames by a strided
convolution (resample_jax.strided_filter); everything on the device is
jittable and batched over leading axes.

`cqt(audio, sample_rate)` resamples any integer rate to 22,050 Hz with the
same polyphase filter first (librosa.resample(res_type='polyphase')), and
`power_db` is input_pipeline.features.audio.power_db on the device, the
reference being each track's maximum.

XLA compiles once per input shape. Tracks of other lengths can share one:
given each track's `length`, `cqt` and `cqt_db` zero every intermediate
signal past librosa's length for that track, so a padded track's frames are
its own; `log_cqt` pads tracks to `bucket_length` (4 lengths per octave)
and crops the results.
"""

import dataclasses
import functools
from typing import List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import librosa
from librosa import filters
from librosa.core import constantq
import numpy as np

from input_pipeline.features import cqt_params
from input_pipeline.features import resample_jax

# librosa.cqt's defaults that the project keeps (audio.cqt_power passes
# none of them): equal temperament, no tuning offset, unit filter scale,
# L1-normalised filters, 1 % of each basis row's mass sparsified away.
_WINDOW = 'hann'
_FILTER_SCALE = 1
_NORM = 1
_SPARSITY = 0.01
# librosa's private helpers, the single definition of the filters, their
# bandwidths and the early-downsampling rule (module-level names, so no
# mangling; librosa 0.11).
_vqt_filter_fft = vars(constantq)['__vqt_filter_fft']
_early_downsample_count = vars(constantq)['__early_downsample_count']
# pylint: disable-next=protected-access
_relative_bandwidth = filters._relative_bandwidth
_SR = cqt_params.SAMPLE_RATE
_HOP = cqt_params.HOP_LENGTH
_TOP_DB = cqt_params.TOP_DB
_AMIN = cqt_params.AMIN


@dataclasses.dataclass(frozen=True)
class Octave:
  """One octave's filter bank, applied every `hop` samples at its rate.

  kernel: [n_fft, 2 * bins] float32; column b is the real part of bin b's
    response to a frame, column bins + b its imaginary part.
  """
  kernel: np.ndarray
  hop: int

  @property
  def bins(self) -> int:
    return self.kernel.shape[1] // 2


# Compared by identity (cqt_plan caches one per configuration), which lets
# jax.jit take a plan as a static argument.
@dataclasses.dataclass(frozen=True, eq=False)
class CqtPlan:
  """What the device needs: early downsampling, then octaves, top first."""
  early_factor: int
  octaves: Tuple[Octave, ...]
  hop_length: int
  n_bins: int


def _octave_kernel(fft_basis, n_fft: int, gain: np.ndarray) -> np.ndarray:
  """[bins, n_fft // 2 + 1] frequency basis -> [n_fft, 2 * bins] real.

  librosa computes basis @ rfft(frame); that is frame @ (basis @ DFT).T,
  with the DFT's rows e^{-2 pi i k t / n_fft} for k <= n_fft / 2. `gain`
  [bins] multiplies each bin (librosa's sqrt(sr / octave sr), the sqrt(2)
  per downsampling, 1 / sqrt(filter length)); in float64, then float32.
  """
  basis = np.asarray(fft_basis.toarray(), np.complex128)
  k = np.arange(basis.shape[1])[:, None]
  t = np.arange(n_fft)[None, :]
  response = (basis @ np.exp(-2j * np.pi * k * t / n_fft)) * gain[:, None]
  return np.concatenate([response.real.T, response.imag.T],
                        axis=1).astype(np.float32)


@functools.lru_cache(maxsize=None)
def cqt_plan(sr: int = _SR, hop_length: int = _HOP,
             fmin: float = cqt_params.FMIN_HZ,
             n_bins: int = cqt_params.N_BINS,
             bins_per_octave: int = cqt_params.BINS_PER_OCTAVE) -> CqtPlan:
  """The host-side constants of librosa.vqt's loop for one configuration.

  Mirrors librosa.vqt with gamma=0, tuning=0 and the module's defaults:
  the same frequencies, bandwidths, filter lengths, early-downsampling
  count, octave slicing, basis scaling and final length normalisation.
  """
  n_octaves = int(np.ceil(n_bins / bins_per_octave))
  n_filters = min(bins_per_octave, n_bins)
  freqs = librosa.interval_frequencies(
      n_bins=n_bins, fmin=fmin, intervals='equal',
      bins_per_octave=bins_per_octave, sort=True)
  alpha = _relative_bandwidth(freqs=freqs)
  lengths, cutoff = filters.wavelet_lengths(
      freqs=freqs, sr=sr, window=_WINDOW, filter_scale=_FILTER_SCALE,
      gamma=0, alpha=alpha)
  if cutoff > sr / 2:
    raise ValueError(f'the top CQT filter ({cutoff:.0f} Hz) is above the '
                     f'Nyquist frequency of {sr} Hz; use fewer bins.')
  early = _early_downsample_count(sr / 2, cutoff, hop_length, n_octaves)
  factor = 2 ** early
  sr_early, hop = sr / factor, hop_length // factor
  if early:
    # librosa's final length normalisation uses the downsampled rate.
    lengths, _ = filters.wavelet_lengths(
        freqs=freqs, sr=sr_early, window=_WINDOW,
        filter_scale=_FILTER_SCALE, gamma=0, alpha=alpha)
  octaves, my_sr, downsampled = [], sr_early, 0
  for i in range(n_octaves):
    sl = slice(-n_filters * (i + 1), -n_filters * i if i else None)
    fft_basis, n_fft, _ = _vqt_filter_fft(
        my_sr, freqs[sl], _FILTER_SCALE, _NORM, _SPARSITY, window=_WINDOW,
        gamma=0, dtype=np.complex64, alpha=alpha[sl])
    # Early downsampling scales by sqrt(factor) (resample scale=True);
    # each octave's downsample by sqrt(2); the basis by sqrt(sr / my_sr).
    gain = (np.sqrt(factor) * np.sqrt(2.0) ** downsampled *
            np.sqrt(sr_early / my_sr) / np.sqrt(lengths[sl]))
    octaves.append(Octave(_octave_kernel(fft_basis, n_fft, gain), hop))
    if hop % 2 == 0:
      hop, my_sr, downsampled = hop // 2, my_sr / 2, downsampled + 1
  return CqtPlan(factor, tuple(octaves), hop_length, n_bins)


def _octave_response(y: jax.Array, octave: Octave, frames: int
                     ) -> jax.Array:
  """|basis @ stft(y, n_fft, hop, centred, zero padded)| [..., frames, bins]."""
  n_fft = octave.kernel.shape[0]
  out = resample_jax.strided_filter(y, octave.kernel, start=-(n_fft // 2),
                                    count=frames, stride=octave.hop)
  re, im = out[..., :octave.bins], out[..., octave.bins:]
  return jnp.sqrt(re * re + im * im)


def _zero_from(y: jax.Array, length) -> jax.Array:
  """y [..., n] with the samples at index >= length [...] set to 0."""
  if length is None:
    return y
  inside = jnp.arange(y.shape[-1]) < jnp.asarray(length)[..., None]
  return jnp.where(inside, y, 0.0)


def _ceil_div(length, factor: int):
  return None if length is None else -(-length // factor)


@functools.partial(jax.jit, static_argnames=('plan',))
def cqt_magnitude(y: jax.Array, *, plan: Optional[CqtPlan] = None,
                  length: Optional[jax.Array] = None) -> jax.Array:
  """|librosa.cqt(y, res_type='polyphase')| of the project's parameters.

  Args:
    y: [..., n] float32 mono audio at 22,050 Hz (plan's rate), n >= 1.
    plan: cqt_plan() by default (the project's features); static.
    length: None, or int [...]: each track is y[..., :length], the rest
      padding. Every downsampled signal is cut to librosa's length for the
      track, so its frames equal those of the unpadded track; tracks of
      many lengths padded to a few share compilations.

  Returns:
    magnitude: jax.Array [shape=(..., 1 + n // 1024, 96), dtype=float32];
      with `length`, the first 1 + length // 1024 frames of each track are
      its CQT, the others meaningless.
  """
  plan = plan or cqt_plan()
  y = _zero_from(jnp.asarray(y, jnp.float32), length)
  # librosa keeps the frames of the shortest octave; with frames counted
  # as 1 + length // hop, that is the top octave's.
  frames = 1 + y.shape[-1] // plan.hop_length
  if plan.early_factor > 1:
    y = resample_jax.resample_poly(y, 1, plan.early_factor)
    length = _ceil_div(length, plan.early_factor)
    y = _zero_from(y, length)
  responses = []
  for i, octave in enumerate(plan.octaves):
    if i:
      # The octave's sqrt(2) is in its kernel.
      y = resample_jax.resample_poly(y, 1, 2)
      length = _ceil_div(length, 2)
      y = _zero_from(y, length)
    responses.append(_octave_response(y, octave, frames))
  return jnp.concatenate(responses[::-1], axis=-1)[..., -plan.n_bins:]


@functools.partial(jax.jit, static_argnames=('sample_rate',))
def _cqt(audio_in, sample_rate: int, lengths):
  """`cqt`; lengths: None or (input, exact resampled, librosa's) [...]."""
  if lengths is None:
    y = resample_jax.resample(audio_in, sample_rate, _SR)
    return cqt_magnitude(y)
  length, exact, resampled = lengths
  y = resample_jax.resample(_zero_from(audio_in, length), sample_rate,
                            _SR)
  return cqt_magnitude(_zero_from(y, exact), length=resampled)


def _resampled_lengths(length, sample_rate: int):
  """(input, exact ceil(n * up / down), librosa's ceil(n * ratio)) [...].

  In int64 on the host: n * up overflows int32 for an hour at 48 kHz.
  librosa.resample pads its output to the float ceil with zeros, so the
  samples past the exact count are 0 and the signal is the float count.
  """
  length = np.asarray(length, np.int64)
  if sample_rate == _SR:
    return length, length, length
  up, down = resample_jax.reduced_ratio(sample_rate, _SR)
  exact = (length * up + down - 1) // down
  librosa_n = np.ceil(length * (_SR / sample_rate)).astype(
      np.int64)
  return length, exact, librosa_n


def cqt(audio_in: jax.Array, sample_rate: int, length=None) -> jax.Array:
  """The project's CQT magnitude of mono audio at any integer rate.

  Args:
    audio_in: [..., samples] float32 mono audio at `sample_rate`.
    sample_rate: a positive integer [scalar] (static under jit).
    length: None, or host ints [...]: each track is audio_in[...,
      :length] at `sample_rate`, padded (see `cqt_magnitude`).

  Returns:
    magnitude: jax.Array [shape=(..., frames, 96), dtype=float32], frames =
      1 + n // 1024 for the n samples at 22,050 Hz (librosa.resample's
      ceil(samples * 22050 / sample_rate)); with `length`, a track's first
      `frames_of(length, sample_rate)` frames are its own.
  """
  return _cqt(audio_in, sample_rate, _lengths(length, sample_rate))


def _lengths(length, sample_rate: int):
  """None, or _resampled_lengths as int32 device arguments."""
  if length is None:
    return None
  return tuple(np.asarray(n, np.int32)
               for n in _resampled_lengths(length, sample_rate))


def frames_of(length, sample_rate: int):
  """CQT frames of tracks of `length` samples at `sample_rate` [...]."""
  return 1 + _resampled_lengths(length, sample_rate)[2] // _HOP


def power_db(power: jax.Array, top_db: Optional[float] = _TOP_DB,
             ref: Optional[jax.Array] = None) -> jax.Array:
  """input_pipeline.features.audio.power_db on the device, per track.

  Args:
    power: [..., frames, bins] >= 0, |CQT|^2 of whole tracks.
    top_db: the floor, in dB below the reference, or None for none (down
      to AMIN).
    ref: the 0 dB power [...] or broadcastable to [..., 1, 1]; None: each
      track's maximum over its frames and bins.

  Returns:
    db: jax.Array [power.shape, dtype=float32] in [-top_db, 0]; the floor
      everywhere for a track whose reference is 0 (digital silence).
  """
  power = jnp.asarray(power, jnp.float32)
  amin = np.float32(_AMIN)
  log_power = jnp.log10(jnp.maximum(power, amin))
  if ref is None:
    # The maximum of the logs, not the log of the maximum: the same
    # vectorised log gives the reference bin exactly 0 dB.
    ref = jnp.max(power, axis=(-2, -1), keepdims=True)
    log_ref = jnp.max(log_power, axis=(-2, -1), keepdims=True)
  else:
    ref = jnp.asarray(ref, jnp.float32)
    ref = jnp.reshape(ref, ref.shape + (1, 1)[:power.ndim - ref.ndim])
    log_ref = jnp.log10(jnp.maximum(ref, amin))
  db = jnp.clip(10.0 * (log_power - log_ref),
                None if top_db is None else -top_db, 0.0)
  floor = -(top_db or _TOP_DB)
  return jnp.where(ref > 0, db, np.float32(floor)).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=('sample_rate', 'top_db'))
def _cqt_db(audio_in, sample_rate: int, top_db, lengths):
  power = jnp.square(_cqt(audio_in, sample_rate, lengths))
  if lengths is None:
    return power_db(power, top_db)
  # The reference is the maximum over each track's own frames.
  frames = 1 + lengths[2] // _HOP
  own = (jnp.arange(power.shape[-2]) < frames[..., None])[..., None]
  db = power_db(jnp.where(own, power, 0.0), top_db)
  return jnp.where(own, db, np.float32(-(top_db or _TOP_DB)))


def cqt_db(audio_in: jax.Array, sample_rate: int,
           top_db: Optional[float] = _TOP_DB,
           length=None) -> jax.Array:
  """power_db(cqt(audio_in, sample_rate) ** 2): the project's log-CQT.

  Args:
    audio_in: [..., samples] float32 mono whole tracks at `sample_rate`.
    sample_rate: a positive integer [scalar] (static under jit).
    top_db: dynamic range below each track's maximum (static under jit).
    length: None, or host ints [...]: each track is audio_in[...,
      :length], padded (see `cqt`); its reference is the maximum over its
      own frames and the frames after them are the floor.

  Returns:
    spec: jax.Array [shape=(..., frames, 96), dtype=float32], dB in
      [-top_db, 0], as audio.cqt_db with res_type='polyphase'.
  """
  return _cqt_db(audio_in, sample_rate, top_db,
                 _lengths(length, sample_rate))


# Padded lengths: 4 per octave, so padding adds at most 19 % and tracks of
# 2 to 8 minutes share 8 compilations.
_STEPS_PER_OCTAVE = 4


def bucket_length(n: int) -> int:
  """The padded length shared by tracks of about n samples (>= n)."""
  step = int(np.floor(_STEPS_PER_OCTAVE * np.log2(max(int(n), 1))))
  while (bucket := int(np.ceil(2.0 ** (step / _STEPS_PER_OCTAVE)))) < n:
    step += 1
  return bucket


def log_cqt(tracks: Sequence[np.ndarray], sample_rate: int,
            top_db: Optional[float] = _TOP_DB) -> List[np.ndarray]:
  """cqt_db of mono tracks of any lengths, padded to one bucket length.

  Args:
    tracks: mono float arrays [n_i] at `sample_rate`, n_i >= 1.
    sample_rate: a positive integer [scalar].
    top_db: dynamic range below each track's maximum.

  Returns:
    One np.ndarray [shape=(frames_of(n_i), 96), dtype=float32] per track,
    each equal to cqt_db of that track alone.
  """
  lengths = np.array([np.shape(y)[-1] for y in tracks], np.int64)
  padded = np.zeros((len(tracks), bucket_length(lengths.max())), np.float32)
  for row, y in zip(padded, tracks):
    row[:np.shape(y)[-1]] = y
  specs = np.asarray(cqt_db(padded, sample_rate, top_db, length=lengths))
  return [spec[:frames] for spec, frames in
          zip(specs, frames_of(lengths, sample_rate))]


# --- numpy in, numpy out: the jax_polyphase front end (frontends.py) ------

_resample_jit = jax.jit(resample_jax.resample, static_argnums=(1, 2))


def _padded(y: np.ndarray) -> np.ndarray:
  """y [n] zero-padded to bucket_length(n): one compilation per bucket."""
  padded = np.zeros(bucket_length(y.size), np.float32)
  padded[:y.size] = y
  return padded


def resample_host(y: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
  """librosa.resample(y, res_type='polyphase') on the default device.

  Args:
    y: np.ndarray [n >= 1] float32 at orig_sr.
    orig_sr, sr: positive integer rates [scalar].

  Returns:
    np.ndarray [shape=(ceil(n * sr / orig_sr),), dtype=float32]: the
    samples past the exact ceil(n * up / down) are 0, as librosa pads.
  """
  up, down = resample_jax.reduced_ratio(orig_sr, sr)
  n = y.size
  out = np.asarray(_resample_jit(_padded(y), orig_sr, sr))
  out = out[:resample_jax.resampled_length(n, orig_sr, sr)].copy()
  out[-(-n * up // down):] = 0.0
  return out


@functools.partial(jax.jit, static_argnames=('plan',))
def _power(y: jax.Array, length: jax.Array, plan: CqtPlan) -> jax.Array:
  return jnp.square(cqt_magnitude(y, plan=plan, length=length))


def cqt_power_host(y: np.ndarray, sr: int, length: int) -> np.ndarray:
  """|CQT|^2 of y[:length] zero-padded to n, numpy in and out.

  Args:
    y: np.ndarray [n >= 1] float32 mono at sr.
    sr: its rate; the plan's (cqt_plan(sr)) [scalar].
    length: the track's samples in y, 1 <= length <= n: each octave's
      signal is cut at librosa's length of y[:length], so a block ending
      at a track's end gets the whole track's frames.

  Returns:
    np.ndarray [shape=(1 + n // 1024, 96), dtype=float32].
  """
  power = _power(_padded(y), np.int32(length), plan=cqt_plan(int(sr)))
  return np.asarray(power)[:1 + y.size // _HOP]

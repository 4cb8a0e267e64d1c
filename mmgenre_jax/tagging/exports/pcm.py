"""The audio entry point from PCM: front end, windowing and networks in one
graph per length.

A call is one track: mono PCM at 22,050 Hz zero-padded to the graph's
length T, and its own length. Inside: graphs.frontend_fn, dB relative to
the maximum over the track's own frames (tracks under 15 s count as 15 s
of which the rest is silence, as `padded_spectrogram` pads them), the
whole-track windows of input_pipeline.features.audio.window_starts (every
possible window is cut, those past the track's count get weight 0), then
the audio entry point (graphs.py). Shapes are static, so that ONNX and
StableHLO take it; integer divisions are lax.div of non-negative values
(jnp's floor division lowers through a remainder that jax2onnx cannot give
a symbolic batch, which windowing_fn keeps for other callers).

  point = pcm.entry_point(tagger, points['audio'], seconds=60)
  point.fn(samples, lengths)      # [1, 60 * 22050] f32, [1] i32 -> [1, L]
"""

import fractions

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.features import audio as audio_features
from mmgenre_jax import errors
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging.exports import graphs

_SIZE = audio_features.PATCH_FRAMES
MIN_SAMPLES = int(round(audio_features.PATCH_SECONDS *
                        audio_features.SAMPLE_RATE))


def name(seconds: int) -> str:
  """The entry point's name for graphs of `seconds`: 'audio_pcm_60s'."""
  return f'audio_pcm_{int(seconds)}s'


def _trim_fraction(drop: float, frames: int) -> fractions.Fraction:
  """drop as p/q with int(f * drop) == f * p // q for f <= frames."""
  ratio = fractions.Fraction(drop).limit_denominator(10000)
  f = np.arange(1, frames + 1)
  if not np.array_equal((f * drop).astype(np.int64),
                        f * ratio.numerator // ratio.denominator):
    raise errors.TaggingError(
        f'track_trim={drop} cannot be cut in integer arithmetic; export '
        'without the PCM entry point (use the windows one).')
  return ratio


def windowing_fn(audio_fn, samples: int, drop: float, overlap: float):
  """fn(log_power [B, F, 96], lengths [B]) -> audio_fn's scores [B, L]."""
  frames_max = 1 + samples // audio_features.HOP_LENGTH
  hop = audio_features.window_hop(overlap)
  n_max = 1 + (frames_max - _SIZE) // hop
  ratio = _trim_fraction(drop, frames_max)
  floor = np.float32(-audio_features.TOP_DB)
  div = jax.lax.div

  def fn(log_power, lengths):
    n = jnp.maximum(lengths.astype(jnp.int32), MIN_SAMPLES)
    frames = 1 + div(n, audio_features.HOP_LENGTH)
    own = jnp.arange(frames_max)[None, :] < frames[:, None]
    ref = jnp.max(jnp.where(own[..., None], log_power, -jnp.inf),
                  axis=(1, 2), keepdims=True)
    db = jnp.maximum(10.0 * (log_power - ref), floor)
    db = jnp.where(ref > np.log10(audio_features.AMIN), db, floor)
    cut = div(frames * ratio.numerator, ratio.denominator)
    lo, hi = cut, frames - cut
    short = hi - lo < _SIZE
    lo = jnp.where(short, div(frames - _SIZE, 2), lo)
    hi = jnp.where(short, lo + _SIZE, hi)
    count = 1 + div(hi - _SIZE - lo, hop)
    index = jnp.arange(n_max)
    starts = jnp.clip(lo[:, None] + index[None, :] * hop, 0,
                      frames_max - _SIZE)
    rows = starts[:, :, None] + jnp.arange(_SIZE)[None, None, :]
    # Whole frames by row index (a gather of [96] slices): per-element
    # indices (take_along_axis) made onnxruntime's GatherND most of the
    # graph's time.
    windows = jax.vmap(lambda spec, frames: spec[frames])(db, rows)
    weights = jnp.where(index[None, :] < count[:, None],
                        1.0 / count[:, None], 0.0).astype(jnp.float32)
    return audio_fn(windows, weights)
  return fn


def entry_point(tagger, audio: graphs.EntryPoint,
                seconds: int) -> graphs.EntryPoint:
  """The PCM entry point of `seconds` over the audio entry point."""
  stage = next(tagger.stages[n] for n in tagger.order
               if tagger.stages[n].kind == 'audio')
  drop, overlap = inputs_lib.window_settings(stage)
  samples = int(seconds) * audio_features.SAMPLE_RATE
  if samples < MIN_SAMPLES:
    raise errors.TaggingError(f'PCM graphs of {seconds} s: give at least '
                              f'{audio_features.PATCH_SECONDS:g} s.')
  windowed = windowing_fn(audio.fn, samples, drop, overlap)

  def fn(pcm, lengths):
    return windowed(graphs.frontend_fn(pcm), lengths)
  # One track per call: with a symbolic batch jax2onnx turns the CQT's
  # strided slices into GatherND, 2.5x slower in onnxruntime; tracks of
  # other lengths would not share a call anyway.
  inputs = (graphs.Input('pcm', (1, samples), 'float32'),
            graphs.Input('lengths', (1,), 'int32'))
  return graphs.EntryPoint(name(seconds), audio.modalities, inputs, fn,
                           audio.model, audio.thresholds)

"""`mmgenre export --format onnx|stablehlo`: the model as portable graphs.

Writes into one directory (docs/tagging.md, "Export"):

  <entry point>.onnx | .stablehlo   one graph per entry point
                                    (graphs.ENTRY_POINTS), dynamic batch
  audio_pcm_<S>s.onnx | .stablehlo  PCM at 22,050 Hz, S seconds -> the audio
                                    scores (pcm.py), one track per call
  frontend_<S>s.onnx | .stablehlo   PCM at 22,050 Hz, S seconds -> the
                                    log10 CQT power (graphs.frontend_fn)
  text_vectorizer.json              the tf-idf vocabulary, idf and settings
                                    (input_pipeline.features.text)
  export.json                       labels, thresholds, taxonomy, the input
                                    contract, versions (written last)

  writer.write(tagger, 'out', 'onnx')   # -> pathlib.Path('out')

The PCM graphs (audio_pcm_<S>s, frontend_<S>s) compute the features of
graphs.FRONTEND (jax_polyphase) inside. A model whose audio was trained on
another front end's (librosa_soxr_hq) gets none (`pcm_note` says why, in
export.json's `pcm_graphs` and on the command's stderr), and asking for
them (`frontend_seconds`) is a FrontEndMismatch: the graphs would feed it
other features than its own.

ONNX goes through jax2onnx (opset ONNX_OPSET); StableHLO through
jax.export (serialised `Exported`, lowered for STABLEHLO_PLATFORMS), which
a JAX about 6 months newer still loads.
"""

import importlib.metadata
import logging
import math
import pathlib
import shutil
from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.features import audio as audio_features
from input_pipeline.features import frontends
from input_pipeline.features import image as image_features
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging.exports import graphs
from mmgenre_jax.tagging.exports import pcm

# The graph formats (`bundle` is tagging/model/bundle.py).
FORMATS = ('onnx', 'stablehlo')
SUFFIX = {'onnx': '.onnx', 'stablehlo': '.stablehlo'}
ONNX_OPSET = 23
STABLEHLO_PLATFORMS = ('cpu', 'cuda', 'tpu')
# Lengths of the PCM graphs (front end, audio_pcm entry point), seconds: a
# track is zero-padded to the shortest that holds it (each graph is a fixed
# length: the CQT's polyphase stages do not trace with a symbolic length).
FRONTEND_SECONDS = (30, 60, 120, 240, 480, 960)
PCM_GRAPHS = 'audio_pcm_<S>s, frontend_<S>s'
FORMAT_VERSION = 1
COMPATIBILITY = {
    'onnx': f'ONNX opset {ONNX_OPSET}: onnxruntime >= 1.20 (any language '
            'binding) runs it.',
    'stablehlo': 'jax.export serialisation: loadable by jax.export.'
                 'deserialize of a JAX release up to about 6 months newer '
                 'than the one that wrote it (StableHLO backward '
                 'compatibility) and about 1 month older; re-export after '
                 'that. A deployment format, not an archive.'}


def _specs(inputs: Sequence[graphs.Input]) -> list:
  """jax.ShapeDtypeStructs of the inputs, their str dims symbolic."""
  dims = sorted({d for i in inputs for d in i.shape if isinstance(d, str)})
  symbols = dict(zip(dims, jax.export.symbolic_shape(', '.join(dims))
                     if dims else ()))
  return [jax.ShapeDtypeStruct(tuple(symbols.get(d, d) for d in i.shape),
                               jnp.dtype(i.dtype)) for i in inputs]


def _stablehlo(fn, inputs: Sequence[graphs.Input]) -> bytes:
  exported = jax.export.export(jax.jit(fn), platforms=STABLEHLO_PLATFORMS)(
      *_specs(inputs))
  return bytes(exported.serialize())


def _onnx(fn, inputs: Sequence[graphs.Input], output: str,
          name: str) -> bytes:
  # jax2onnx logs the optional plugins it cannot import (equinox, dm_pix:
  # not installed, not used by these graphs) and untyped shape constants.
  quiet = [logging.getLogger(n) for n in ('jax2onnx', 'onnx_ir', 'root')]
  levels = [q.level for q in quiet]
  for q in quiet:
    q.setLevel(logging.CRITICAL)
  try:
    # pylint: disable-next=g-import-not-at-top
    from jax2onnx import to_onnx  # Only this format needs it.
    model = to_onnx(
        fn, _specs(inputs), model_name=name, opset=ONNX_OPSET,
        input_names=[i.name for i in inputs], output_names=[output])
  finally:
    for q, level in zip(quiet, levels):
      q.setLevel(level)
    # jax2onnx traces with its own stand-ins for some jnp and flax
    # functions; jitted functions it traced (the front end's) would keep
    # those traces in their caches and fail to compile afterwards.
    jax.clear_caches()
  return model.SerializeToString()


def _serialise(fmt: str, fn, inputs, output: str, name: str) -> bytes:
  if fmt == 'onnx':
    return _onnx(fn, inputs, output, name)
  return _stablehlo(fn, inputs)


def _input_json(i: graphs.Input) -> Dict[str, Any]:
  return {'name': i.name, 'shape': list(i.shape), 'dtype': i.dtype}


def _thresholds(values) -> Optional[list]:
  if values is None:
    return None
  return [None if math.isnan(v) else float(v)
          for v in np.asarray(values, np.float64)]


def _versions(fmt: str) -> Dict[str, str]:
  found = {'jax': jax.__version__}
  for package in ('mmgenre_jax', 'jaxlib', 'flax') + (
      ('jax2onnx', 'onnx') if fmt == 'onnx' else ()):
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = None
  return found


def _audio_front_ends(tagger) -> Dict[str, frontends.FrontEnd]:
  """Audio stage name -> the front end it was trained on."""
  return {n: tagger.feature_data(n).frontend for n in tagger.order
          if tagger.stages[n].kind == 'audio'}


def _pcm_mismatch(tagger) -> Optional[str]:
  """Why the PCM graphs would feed the model other features than its own
  (a clause naming both front ends), or None."""
  pcm_front_end = graphs.FRONTEND
  for name, front_end in _audio_front_ends(tagger).items():
    if front_end is not pcm_front_end:
      return (f'stage {name!r} was trained on features of the '
              f'{front_end.name!r} audio front end ({front_end.description}),'
              f' but the PCM graphs ({PCM_GRAPHS}) compute those of '
              f'{pcm_front_end.name!r} ({pcm_front_end.description})')
  return None


def pcm_note(tagger) -> Optional[str]:
  """Why an export of `tagger` has no PCM graphs by default (one sentence
  and the fix), or None when it has them (or has no audio network)."""
  why = _pcm_mismatch(tagger)
  if why is None:
    return None
  return (f'No PCM graphs ({PCM_GRAPHS}) written: {why}. The windows entry '
          'points (audio, fused) take log-CQT windows computed with the '
          "model's own front end (export.json's audio contract); for PCM "
          'graphs, retrain the model on shards prepared with --frontend '
          f'{graphs.FRONTEND.name}.')


def audio_contract(tagger) -> Optional[Dict[str, Any]]:
  """How PCM becomes the audio entry points' windows (docs/fidelity.md)."""
  stage = next((tagger.stages[n] for n in tagger.order
                if tagger.stages[n].kind == 'audio'), None)
  if stage is None:
    return None
  front_end = tagger.feature_data(stage.name).frontend
  drop, overlap = inputs_lib.window_settings(stage)
  return {
      'sample_rate': audio_features.SAMPLE_RATE,
      'mono': 'the mean of the channels',
      'frontend': {'name': front_end.name,
                   'description': front_end.description},
      'resampling': ("polyphase, scipy.signal.resample_poly's kernel "
                     "(librosa res_type='polyphase')"
                     if front_end is frontends.JAX_POLYPHASE else
                     "soxr HQ (librosa res_type='soxr_hq')"),
      'min_samples': int(round(audio_features.PATCH_SECONDS *
                               audio_features.SAMPLE_RATE)),
      'short_track': 'a track of fewer than min_samples samples is '
                     'zero-padded to min_samples',
      'cqt': {'hop_length': audio_features.HOP_LENGTH,
              'n_bins': audio_features.N_BINS,
              'bins_per_octave': audio_features.BINS_PER_OCTAVE,
              'fmin_hz': audio_features.FMIN_HZ, 'window': 'hann',
              'frames': '1 + samples // hop_length'},
      'db': {'amin': float(audio_features.AMIN),
             'top_db': audio_features.TOP_DB,
             'formula': 'max(10 * (log_power - max(log_power of the whole '
                        'track)), -top_db); -top_db everywhere for a track '
                        'whose maximum power is below amin'},
      'window_frames': audio_features.PATCH_FRAMES,
      'track_trim': drop, 'window_overlap': overlap,
      'window_hop': audio_features.window_hop(overlap),
      'window_starts': 'cut = int(frames * track_trim); windows start at '
                       'cut, cut + window_hop, ... while start + '
                       'window_frames <= frames - cut; when frames - 2 cut '
                       '< window_frames, one window at (frames - '
                       'window_frames) // 2',
      'weights': 'each window 1 / (its track\'s windows * the album\'s '
                 'tracks); rows padded with zero weights are ignored'}


def _frontend_files(fmt: str, out: pathlib.Path,
                    seconds: Sequence[int]) -> Dict[str, Any]:
  files = {}
  for s in seconds:
    samples = int(s) * audio_features.SAMPLE_RATE
    name = f'frontend_{int(s)}s{SUFFIX[fmt]}'
    inputs = (graphs.Input('samples', (1, samples), 'float32'),)
    fileio.write_atomic(out / name, _serialise(
        fmt, graphs.frontend_fn, inputs, 'log_power', f'frontend_{s}s'))
    files[str(samples)] = name
  return {'files': files,
          'input': {'name': 'samples', 'shape': [1, 'samples of the file '
                    'chosen'], 'dtype': 'float32',
                    'meaning': 'mono PCM at 22,050 Hz, zero-padded to the '
                    'length of the smallest graph that holds the track'},
          'output': {'name': 'log_power', 'shape': [1, 'frames', 96],
                     'dtype': 'float32',
                     'meaning': 'log10(max(|CQT|^2, amin)); keep the '
                     'track\'s own 1 + samples // 1024 frames'},
          'max_samples': (max(int(s) for s in seconds) *
                          audio_features.SAMPLE_RATE)}


def write(tagger, out, fmt: str,
          frontend_seconds: Optional[Sequence[int]] = None
          ) -> pathlib.Path:
  """Writes the model's graphs in `fmt` and export.json into `out`.

  Args:
    tagger: the loaded model (with its head, if any).
    out: the directory (created; files of an earlier export replaced).
    fmt: one of FORMATS.
    frontend_seconds: the lengths of the PCM graphs, front end and audio
      entry point (none without an audio network); None: FRONTEND_SECONDS
      when the model's audio front end is graphs.FRONTEND, else none
      (`pcm_note`).

  Raises:
    errors.TaggingError: an unknown format, or a model with no entry point.
    frontends.FrontEndMismatch: PCM graphs asked for (frontend_seconds) of
      a model trained on another front end's features; nothing written.
  """
  if fmt not in FORMATS:
    raise errors.TaggingError(f'unknown export format {fmt!r}; use one of '
                              f'{("bundle",) + FORMATS}.')
  points = graphs.entry_points(tagger)
  note = None
  if 'audio' in points:
    why = _pcm_mismatch(tagger)
    if why is not None and frontend_seconds:
      raise frontends.FrontEndMismatch(
          f'{tagger.source}: {why}; a model must be fed the features it '
          'was trained on. Export without the PCM graphs (the windows '
          'entry points stay), or retrain the model on shards prepared '
          f'with --frontend {graphs.FRONTEND.name}.')
    if frontend_seconds is None:
      frontend_seconds = () if why else FRONTEND_SECONDS
    note = pcm_note(tagger)
    points.update({pcm.name(s): pcm.entry_point(tagger, points['audio'], s)
                   for s in frontend_seconds})
  else:
    frontend_seconds = ()
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  entries = {}
  for name, point in points.items():
    file_name = name + SUFFIX[fmt]
    fileio.write_atomic(out / file_name, _serialise(
        fmt, point.fn, point.inputs, 'scores', name))
    entries[name] = {
        'file': file_name, 'modalities': list(point.modalities),
        'inputs': [_input_json(i) for i in point.inputs],
        'output': {'name': 'scores', 'shape': [graphs.BATCH,
                                               len(tagger.labels)],
                   'dtype': 'float32'},
        'model': point.model, 'thresholds': _thresholds(point.thresholds)}
  info: Dict[str, Any] = {
      'format': fmt, 'version': FORMAT_VERSION,
      'opset': ONNX_OPSET if fmt == 'onnx' else None,
      'stablehlo_platforms': (list(STABLEHLO_PLATFORMS)
                              if fmt == 'stablehlo' else None),
      'versions': _versions(fmt), 'compatibility': COMPATIBILITY[fmt],
      'source': str(tagger.source),
      'head': None if tagger.head is None else tagger.head.name,
      'labels': list(tagger.labels),
      'taxonomy': tagger.taxonomy, 'entry_points': entries}
  audio = audio_contract(tagger) if any(
      'audio' in p.modalities for p in points.values()) else None
  info['audio'] = audio
  info['frontend'] = (_frontend_files(fmt, out, frontend_seconds)
                      if audio is not None and frontend_seconds else None)
  info['pcm_graphs'] = None if audio is None else {
      'written': bool(frontend_seconds), 'note': note}
  info['cover'] = _cover_contract(tagger, points)
  info['text'] = _text_files(tagger, points, out)
  fileio.write_json_atomic(out / workdir_lib.EXPORT_JSON, info)
  return out


def _stage_of(tagger, kind: str):
  return next(tagger.stages[n] for n in tagger.order
              if tagger.stages[n].kind == kind)


def _cover_contract(tagger, points) -> Optional[Dict[str, Any]]:
  if not any('image' in p.modalities for p in points.values()):
    return None
  data = tagger.feature_data(_stage_of(tagger, 'image').name)
  stored = data.stored_image_size or image_features.stored_size(
      data.image_size)
  return {'side': int(data.image_size), 'resize_shorter_side_to':
          int(stored), 'resample': 'bilinear (PIL)',
          'then': 'centre crop side x side, RGB uint8 (the standardisation '
                  'is inside the graph)'}


def _text_files(tagger, points, out: pathlib.Path
                ) -> Optional[Dict[str, Any]]:
  if not any('text' in p.modalities for p in points.values()):
    return None
  data = tagger.feature_data(_stage_of(tagger, 'text').name)
  shutil.copyfile(data.data_dir / data.manifest['text_vectorizer'],
                  out / layout.TEXT_VECTORIZER_JSON)
  return {'vectorizer': layout.TEXT_VECTORIZER_JSON,
          'preprocess': 'the reviews joined by spaces (whitespace runs '
                        'become one space), truncated at a sentence end '
                        'near 1,500 characters (input_pipeline.features.'
                        'text.aggregate_reviews), then scikit-learn\'s '
                        'TfidfVectorizer with the vocabulary, idf and '
                        'settings of the vectorizer file',
          'enriched': bool(data.enrichment),
          'enrichment_note': 'the texts were enriched with entity '
                             'categories, which this export does not '
                             'carry: use the bundle format' if
                             data.enrichment else None}

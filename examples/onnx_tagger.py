"""Tags audio files with an ONNX export and onnxruntime alone.

  mmgenre export runs/mumu_cosine --format onnx --out mumu_onnx
  python examples/onnx_tagger.py mumu_onnx song.mp3 other.flac [--top-k 5]

Needs onnxruntime, numpy, soundfile (decoding) and soxr (resampling, as
training's librosa did): no JAX, TensorFlow or mmgenre_jax. Prints a JSON
list with one row per file, the `input`, `labels` ({label, score}, best
first), `decisions`, `model`, `duration_s` and `error` fields of `mmgenre
predict --format json`.

Each file is decoded, mono-mixed and resampled to 22,050 Hz here (export.json's
"audio" contract); the smallest audio_pcm_<S>s graph that holds it does
the rest (log-CQT, whole-track windows, networks); with --host-windows the
windows are cut here from the frontend_<S>s graph's output and go through
the `audio` graph (the same scores within 1e-6). Its front end is the
JAX one (polyphase resampling inside the CQT), that of models trained on
jax_polyphase shards; the whole file is resampled here with soxr: scores
differ from `mmgenre predict` by a few thousandths (docs/tagging.md,
"Export"). An export of a model trained on librosa_soxr_hq features has no
PCM graphs, and this example stops, saying so.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime
import soundfile
import soxr


def _quiet():
  options = onnxruntime.SessionOptions()
  options.log_severity_level = 3  # Errors only: not unused initializers.
  return options


def _sessions(export_dir):
  """export.json, and a cache of onnxruntime sessions by file name."""
  with open(os.path.join(export_dir, 'export.json'), encoding='utf-8') as f:
    info = json.load(f)
  if info.get('format') != 'onnx' or 'audio' not in info['entry_points']:
    raise SystemExit(f'{export_dir}: not an ONNX export with an audio entry '
                     'point (mmgenre export W --format onnx --out DIR).')
  if not info.get('frontend'):
    # A model trained on another front end's features than the graphs'.
    note = (info.get('pcm_graphs') or {}).get('note')
    raise SystemExit(f'{export_dir}: ' + (note or 'no PCM graphs.'))
  cache = {}

  def session(name):
    if name not in cache:
      cache[name] = onnxruntime.InferenceSession(
          os.path.join(export_dir, name),
          sess_options=_quiet(), providers=['CPUExecutionProvider'])
    return cache[name]
  return info, session


def read_mono(path, contract):
  """float32 [n] mono PCM at the contract's rate, and the decoded seconds."""
  data, rate = soundfile.read(path, dtype='float32', always_2d=True)
  if not data.size:
    raise ValueError('no audio samples')
  y = np.nan_to_num(data.mean(axis=1), nan=0.0, posinf=0.0, neginf=0.0)
  seconds = len(y) / rate
  if rate != contract['sample_rate']:
    y = soxr.resample(y, rate, contract['sample_rate'], quality='HQ')
  return np.asarray(y, np.float32), seconds


def pcm_scores(y, info, session):
  """float32 [L] of one track through the smallest PCM graph holding it."""
  fitting = sorted((entry['inputs'][0]['shape'][1], name)
                   for name, entry in info['entry_points'].items()
                   if name.startswith('audio_pcm_'))
  rate = info['audio']['sample_rate']
  chosen = [(samples, name) for samples, name in fitting
            if samples >= len(y)]
  if not chosen:
    raise ValueError(f'{len(y) / rate:.1f} s: longer than this export\'s '
                     f'PCM graphs ({fitting[-1][0] / rate:.0f} s)')
  samples, name = chosen[0]
  pcm = np.zeros((1, samples), np.float32)
  pcm[0, :len(y)] = y
  graph = session(info['entry_points'][name]['file'])
  return graph.run(None, {'pcm': pcm,
                          'lengths': np.array([len(y)], np.int32)})[0][0]


def log_cqt_db(y, info, session):
  """float32 [frames, 96] dB windows' source, relative to the track max."""
  audio, frontend = info['audio'], info['frontend']
  n = max(len(y), audio['min_samples'])
  lengths = sorted(int(k) for k in frontend['files'])
  fitting = [k for k in lengths if k >= n]
  if not fitting:
    rate = audio['sample_rate']
    raise ValueError(f'{n / rate:.1f} s: longer than this export\'s front '
                     f'end ({lengths[-1] / rate:.0f} s)')
  padded = np.zeros((1, fitting[0]), np.float32)
  padded[0, :len(y)] = y
  graph = session(frontend['files'][str(fitting[0])])
  log_power = graph.run(None, {'samples': padded})[0][0]
  frames = 1 + n // audio['cqt']['hop_length']
  log_power = log_power[:frames]
  top_db = audio['db']['top_db']
  ref = log_power.max()
  if ref <= np.log10(audio['db']['amin']):
    return np.full(log_power.shape, -top_db, np.float32)
  return np.maximum(10.0 * (log_power - ref), -top_db).astype(np.float32)


def host_scores(y, info, session):
  """float32 [L] of one track: the front-end graph, then the windows cut
  here and the `audio` graph (what an album's tracks would go through,
  their windows weighted 1 / (k_t T))."""
  x = windows(log_cqt_db(y, info, session), info['audio'])[None]
  weights = np.full(x.shape[:2], 1.0 / x.shape[1], np.float32)
  return session(info['entry_points']['audio']['file']).run(
      None, {'windows': x, 'weights': weights})[0][0]


def windows(spec, audio):
  """The whole-track windows [k, 322, 96] (export.json's window_starts)."""
  frames, size = len(spec), audio['window_frames']
  cut = int(frames * audio['track_trim'])
  lo, hi = cut, frames - cut
  if hi - lo < size:
    lo = (frames - size) // 2
    hi = lo + size
  starts = range(lo, hi - size + 1, audio['window_hop'])
  return np.stack([spec[s:s + size] for s in starts])


def decide(scores, labels, thresholds, taxonomy):
  """Labels past their thresholds and their ancestors, best first."""
  if thresholds is None:
    return None
  chosen = {labels[j] for j, t in enumerate(thresholds)
            if t is not None and scores[j] >= t}
  for label in list(chosen):
    parent = (taxonomy or {}).get(label)
    while parent is not None:
      if parent in labels:
        chosen.add(parent)
      parent = taxonomy.get(parent)
  return [labels[j] for j in np.argsort(-scores, kind='stable')
          if labels[j] in chosen]


def tag(export_dir, paths, top_k, host_windows=False):
  """One `mmgenre predict`-like row per audio file."""
  info, session = _sessions(export_dir)
  point = info['entry_points']['audio']  # its model and thresholds
  labels = info['labels']
  rows = []
  for path in paths:
    row = {'input': path, 'labels': [], 'decisions': None,
           'model': point['model'], 'duration_s': None, 'error': None}
    try:
      y, seconds = read_mono(path, info['audio'])
      row['duration_s'] = round(seconds, 4)
      score = host_scores if host_windows else pcm_scores
      scores = score(y, info, session)
    except (OSError, ValueError, RuntimeError, soundfile.LibsndfileError) as e:
      row['error'] = f'{path}: {e}'
      rows.append(row)
      continue
    order = np.argsort(-scores, kind='stable')[:top_k]
    row['labels'] = [{'label': labels[j], 'score': float(scores[j])}
                     for j in order]
    row['decisions'] = decide(scores, labels, point['thresholds'],
                              info['taxonomy'])
    rows.append(row)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('export_dir', help='mmgenre export --format onnx DIR')
  parser.add_argument('audio', nargs='+', help='Audio files.')
  parser.add_argument('--top-k', type=int, default=5)
  parser.add_argument('--host-windows', action='store_true',
                      help='Cut the windows here from the front-end graph '
                      'and run the audio graph, instead of audio_pcm_<S>s.')
  args = parser.parse_args(argv)
  rows = tag(args.export_dir, args.audio, args.top_k, args.host_windows)
  json.dump(rows, sys.stdout, indent=1)
  sys.stdout.write('\n')
  return 3 if any(r['error'] for r in rows) else 0


if __name__ == '__main__':
  sys.exit(main())

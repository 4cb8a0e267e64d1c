r"""Tagging with an ONNX export and onnxruntime vs `mmgenre predict` (issue 29).

  python benchmarks/exports.py [--workdir runs/mumu_cosine] [--rounds 3]

Exports the workdir's model (onnx, stablehlo, bundle) and prints each
format's file sizes, then tags the same real mp3s (Debian's asc-music:
/usr/share/games/asc/music, `apt-get install asc-music`; the whole
recordings and all their 30-s pieces) with `python examples/onnx_tagger.py`
(the audio_pcm graphs; and --host-windows: the front-end graph, windows
cut in numpy, the audio graph) and with `mmgenre predict --workdir W`,
each a fresh process as a user runs them, the three interleaved round by
round (median round), and compares their scores (top-5 labels, largest
difference).
"""

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import soundfile

REPO = pathlib.Path(__file__).resolve().parents[1]
MUSIC = pathlib.Path('/usr/share/games/asc/music')


def _tracks(root: pathlib.Path):
  """The recordings, and every whole 30-s piece of them (wav)."""
  whole = sorted(str(p) for p in MUSIC.glob('*.mp3'))
  cuts = []
  for path in whole:
    y, rate = soundfile.read(path, dtype='float32')
    for i in range(len(y) // (30 * rate)):
      cut = root / f'{pathlib.Path(path).stem}_{i:02d}.wav'
      soundfile.write(cut, y[i * 30 * rate:(i + 1) * 30 * rate], rate)
      cuts.append(str(cut))
  return {'whole': whole, '30s': cuts}


def _timed(argv):
  start = time.perf_counter()
  done = subprocess.run(argv, capture_output=True, text=True, check=True,
                        cwd=REPO)
  return time.perf_counter() - start, json.loads(done.stdout)


def _sizes(directory: pathlib.Path):
  return {p.name: p.stat().st_size for p in sorted(directory.rglob('*'))
          if p.is_file() and p.parent == directory} | {
              'total': sum(p.stat().st_size for p in directory.rglob('*')
                           if p.is_file())}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', default='runs/mumu_cosine')
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  root = pathlib.Path(tempfile.mkdtemp(prefix='exports_bench_'))
  for fmt in ('onnx', 'stablehlo', 'bundle'):
    start = time.perf_counter()
    subprocess.run(['mmgenre', 'export', args.workdir, '--format', fmt,
                    '--out', str(root / fmt)], check=True,
                   capture_output=True)
    print(json.dumps({'section': 'sizes', 'format': fmt,
                      'export_s': round(time.perf_counter() - start, 1),
                      'bytes': _sizes(root / fmt)}))
  for kind, tracks in _tracks(root).items():
    times = {'onnxruntime': [], 'onnxruntime_host_windows': [],
             'predict': []}
    for _ in range(args.rounds):
      example = [sys.executable, 'examples/onnx_tagger.py',
                 str(root / 'onnx'), *tracks, '--top-k', '1000']
      ort_s, rows = _timed(example)
      times['onnxruntime'].append(ort_s)
      times['onnxruntime_host_windows'].append(
          _timed(example + ['--host-windows'])[0])
      predict_s, want = _timed(['mmgenre', 'predict', '--workdir',
                                args.workdir, '--audio', *tracks,
                                '--top-k', '1000', '--no-progress'])
      times['predict'].append(predict_s)
    gaps, same = [], 0
    for r, w in zip(rows, want):
      mine = {x['label']: x['score'] for x in r['labels']}
      gaps.append(max(abs(mine[x['label']] - x['score'])
                      for x in w['labels']))
      same += ([x['label'] for x in r['labels'][:5]] ==
               [x['label'] for x in w['labels'][:5]])
    median = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        'section': 'tagging', 'tracks': kind, 'count': len(tracks),
        'seconds': round(sum(r['duration_s'] for r in want), 1),
        **{f'{k}_s': round(v, 2) for k, v in median.items()},
        **{f'{k}_tracks_per_s': round(len(tracks) / v, 2)
           for k, v in median.items()},
        'top5_equal': same, 'max_score_gap': round(max(gaps), 5),
        'rounds': {k: [round(t, 2) for t in v] for k, v in times.items()}}))
  shutil.rmtree(root)


if __name__ == '__main__':
  main()

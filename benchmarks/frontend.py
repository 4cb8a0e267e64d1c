r"""The JAX constant-Q front end against librosa on this CPU (issue 28).

  python benchmarks/frontend.py [--rounds 5] [--sections cqt,decode,gap]
  python benchmarks/frontend.py --sections scores [--workdirs W1,W2]
  python benchmarks/frontend.py --sections device   # on a GPU/TPU host
  python benchmarks/frontend.py --sections predict [--workdir W]

Real music: the three recordings of Debian's asc-music package
(/usr/share/games/asc/music, 22,050 Hz stereo mp3; `apt-get install
asc-music`), cut into 30-s and 4-min tracks. Each measurement runs in a
child process pinned to 1 core (taskset -c 0, XLA on one thread) or 2
(taskset -c 0,1, XLA's default threads), the variants interleaved round by
round and reported as the median round:

  cqt     the log-CQT of decoded mono tracks in memory, to a numpy array:
          librosa as the project computed it before issue 28's phase 2
          (audio.cqt_db with the librosa_soxr_hq front end, soxr_hq octave
          downsampling), librosa with res_type='polyphase' (what the JAX
          one reproduces), and mmgenre_jax.frontend.cqt_db one track per
          call and a batch of tracks per call.
  decode  decode an mp3 file + mono + resampling to 22,050 Hz + log-CQT:
          the librosa_soxr_hq path (audio.decode, soxr_hq, audio.cqt_db) vs
          audio.decode + frontend.cqt_db (polyphase resampling in JAX), for
          the recordings at their own 22,050 Hz and re-encoded at 44.1 kHz.
  gap     the dB difference of the JAX log-CQT from the librosa_soxr_hq
          features on the whole recordings (median, 99th percentile, max in
          bins within 60 and 40 dB of the track's peak).
  scores  a trained model's scores (mmgenre_jax.Tagger of each --workdirs
          pipeline, whole-track windows through the streaming reader) on
          the same tracks with either front end: the largest score
          difference and whether the top-5 labels agree. The model's
          recorded front end is overridden (`forced_front_end`, here
          only: tagging refuses another front end than the model's);
          tracks: 4 of each format of the embedded corpus that ./run.sh
          synthesises (runs/data/synthetic/audio) and the recordings.
  predict `mmgenre predict --workdir W --audio FOLDER` end to end on
          --pieces mp3 pieces of the recordings (--piece-seconds long, 30;
          at --piece-rate), by benchmarks/frontend_predict.py in
          children pinned to 1 core (XLA on one thread) and to 2, each
          variant of PREDICT_VARIANTS: the model's front end forced to
          librosa_soxr_hq (before issue 28: every file streamed, one at a
          time) or jax_polyphase, streamed (--decode-workers 0) or decoded
          whole and computed on the device in batches, decoding in the
          process (1) or in 2 workers ahead of the device; the children
          interleaved round by round; each runs the command twice: `cold`
          (the first run in a process: librosa's caches, XLA's
          compilations; the persistent compilation cache is off) and
          `warm`.
  device  the JAX log-CQT of 30-s tracks (synthetic music: no files needed)
          on the default JAX device, in batches of 1 to 256, against
          librosa (audio.cqt_db, single-threaded) on the host, and its largest
          difference from librosa's polyphase CQT there (relative to the
          track's maximum; the tests allow 1e-5), to check that the device
          keeps float32 precision.

JAX compiles once per input shape (jax_compile_s, not in the rates). Prints
one JSON line per measurement; the LAST line is {"librosa_tracks_per_s",
"jax_tracks_per_s", "ratio"} for 30-s tracks on one core: CQT only, or,
when the cqt section is not run, `mmgenre predict` (warm).
"""

import argparse
import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import librosa
import numpy as np
import soundfile as sf

from input_pipeline.features import audio
from input_pipeline.features import frontends
from input_pipeline.prepare import workers as prepare_workers
import mmgenre_jax.frontend as frontend
# pylint: enable=g-import-not-at-top,wrong-import-position

ASC_MUSIC = pathlib.Path('/usr/share/games/asc/music')
SR = audio.SAMPLE_RATE
ONE_CORE_XLA = prepare_workers.WORKER_XLA_FLAGS
# The project's front end before issue 28's phase 2, the "librosa" rates.
LIBROSA = frontends.LIBROSA_SOXR_HQ
CORES = {1: '0', 2: '0,1'}
PREDICT_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'frontend_predict.py')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--sections', default='cqt,decode,gap')
  parser.add_argument('--batch', type=int, default=6,
                      help='30-s tracks per batched JAX call (4-min: 2).')
  parser.add_argument('--workdirs',
                      default='runs/mumu_logistic,runs/mumu_cosine')
  parser.add_argument('--corpus', default='runs/data/synthetic/audio')
  parser.add_argument('--workdir', default='runs/mumu_cosine',
                      help='The predict section\'s model.')
  parser.add_argument('--pieces', type=int, default=24,
                      help='30-s pieces the predict section tags.')
  parser.add_argument('--piece-seconds', type=int, default=30,
                      help='Their length.')
  parser.add_argument('--piece-rate', type=int, default=SR,
                      help='Their sample rate (the recordings: 22,050 Hz).')
  # A child's measurement: section, track seconds; predict's front end
  # and folder.
  parser.add_argument('--child', nargs=2, metavar=('SECTION', 'SECONDS'))
  parser.add_argument('--frontend', help=argparse.SUPPRESS)
  parser.add_argument('--folder', help=argparse.SUPPRESS)
  parser.add_argument('--decode-workers', default='0', help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def recordings():
  """The asc-music recordings as mono float32 at 22,050 Hz."""
  paths = sorted(ASC_MUSIC.glob('*.mp3'))
  if not paths:
    sys.exit(f'No recordings in {ASC_MUSIC}: apt-get install asc-music.')
  out = []
  for path in paths:
    y, info = audio.decode(path)
    out.append(audio.resample(y, info.source_sr, SR, frontend=LIBROSA))
  return out


def tracks(seconds: int, count: int):
  """`count` tracks of `seconds`, cut in turn from the recordings."""
  music, n = recordings(), int(seconds * SR)
  cuts = []
  for i in range(count):
    y = music[i % len(music)]
    start = (i // len(music)) * n
    cuts.append(y[start:start + n] if start + n <= y.size else y[-n:])
  return cuts


def interleaved(fns, rounds: int):
  """{name: median seconds of one round} of each fn, round by round."""
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def jax_db(y, sr):
  return np.asarray(frontend.cqt_db(y, sr))


def librosa_polyphase_db(y):
  c = librosa.cqt(y, sr=SR, hop_length=audio.HOP_LENGTH, fmin=audio.FMIN_HZ,
                  n_bins=audio.N_BINS, bins_per_octave=audio.BINS_PER_OCTAVE,
                  window='hann', res_type='polyphase')
  return audio.power_db((np.abs(c) ** 2).T)


def compile_seconds(*example) -> float:
  start = time.perf_counter()
  jax_db(*example)
  return round(time.perf_counter() - start, 2)


def cqt_child(seconds: int, args) -> dict:
  batch = args.batch if seconds <= 60 else 2
  ys = tracks(seconds, batch)
  stacked = np.stack(ys)
  compile_s = compile_seconds(ys[0], SR)
  jax_db(stacked, SR)
  for y in ys[:1]:
    audio.cqt_db(y, frontend=LIBROSA), librosa_polyphase_db(y)  # caches
  median = interleaved({
      'librosa': lambda: [audio.cqt_db(y, frontend=LIBROSA) for y in ys],
      'librosa_polyphase': lambda: [librosa_polyphase_db(y) for y in ys],
      'jax': lambda: [jax_db(y, SR) for y in ys],
      'jax_batch': lambda: jax_db(stacked, SR),
  }, args.rounds)
  return {**{f'{k}_tracks_per_s': round(len(ys) / s, 2)
             for k, s in median.items()}, 'jax_compile_s': compile_s,
          'batch': len(ys)}


def mp3_files(seconds: int, folder: pathlib.Path):
  """Stereo mp3 tracks at 22,050 Hz (as recorded) and at 44.1 kHz."""
  music = [np.asarray(librosa.load(p, sr=None, mono=False)[0])
           for p in sorted(ASC_MUSIC.glob('*.mp3'))]
  files = {}
  for rate in (SR, 44100):
    files[rate] = []
    for i, y in enumerate(music):
      cut = y[:, :seconds * SR]
      if rate != SR:
        cut = librosa.resample(cut, orig_sr=SR, target_sr=rate)
      path = folder / f'{rate}_{seconds}_{i}.mp3'
      sf.write(path, cut.T, rate)
      files[rate].append(path)
  return files


def decode_child(seconds: int, args) -> dict:
  def project(path):
    y, info = audio.decode(path)
    return audio.cqt_db(audio.resample(y, info.source_sr, SR,
                                       frontend=LIBROSA), frontend=LIBROSA)

  def with_jax(path):
    y, info = audio.decode(path)
    return jax_db(y, info.source_sr)

  out = {}
  with tempfile.TemporaryDirectory() as folder:
    files = mp3_files(seconds, pathlib.Path(folder))
    for rate, paths in files.items():
      # Equal lengths here; a real corpus compiles once per length.
      for path in paths:
        with_jax(path), project(path)
      median = interleaved({
          'librosa': lambda paths=paths: [project(p) for p in paths],
          'jax': lambda paths=paths: [with_jax(p) for p in paths],
      }, max(2, args.rounds // 2))
      out.update({f'{k}_{rate}hz_tracks_per_s': round(len(paths) / s, 2)
                  for k, s in median.items()})
  return out


def run_child(section: str, seconds: int, cores: int, args,
              *extra: str) -> dict:
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  # Compilations counted: no persistent compilation cache.
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  env['JAX_ENABLE_COMPILATION_CACHE'] = 'false'
  if cores == 1:
    env['XLA_FLAGS'] = ONE_CORE_XLA
  # The predict child is a light script of its own (frontend_predict.py).
  script = PREDICT_CHILD if section == 'predict' else __file__
  cmd = ['taskset', '-c', CORES[cores], sys.executable, script,
         '--child', section, str(seconds), '--rounds', str(args.rounds),
         '--batch', str(args.batch), *extra]
  out = subprocess.run(cmd, env=env, check=True, capture_output=True,
                       text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def gap_section():
  for path in sorted(ASC_MUSIC.glob('*.mp3')):
    y, info = audio.decode(path)
    current = audio.cqt_db(audio.resample(y, info.source_sr, SR,
                                          frontend=LIBROSA), frontend=LIBROSA)
    diff = np.abs(jax_db(y, info.source_sr) - current)
    print(json.dumps({
        'section': 'gap', 'track': path.name,
        'seconds': round(info.duration_s, 1),
        'median_db': round(float(np.median(diff)), 4),
        'p99_db': round(float(np.percentile(diff, 99)), 3),
        'max_above_60_db': round(float(diff[current > -60].max()), 3),
        'max_above_40_db': round(float(diff[current > -40].max()), 3),
    }), flush=True)


@contextlib.contextmanager
def forced_front_end(front_end: frontends.FrontEnd):
  """Tagging computes every model's windows with `front_end`.

  For the measurements only: tagging otherwise uses the front end the
  model was trained on and refuses another (inputs.audio_frontend).
  """
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.tagging import inputs
  saved = inputs.audio_frontend
  inputs.audio_frontend = lambda stage, manifest: front_end
  try:
    yield
  finally:
    inputs.audio_frontend = saved


def scores_section(args):
  import mmgenre_jax  # pylint: disable=g-import-not-at-top
  corpus = pathlib.Path(args.corpus)
  files = [p for ext in ('flac', 'mp3', 'ogg', 'wav')
           for p in sorted(corpus.glob(f'*.{ext}'))[:4]]
  files += sorted(ASC_MUSIC.glob('*.mp3'))
  for workdir in args.workdirs.split(','):
    seconds, scores = {}, {}
    for name, front_end in (('librosa', LIBROSA),
                            ('jax', frontends.JAX_POLYPHASE)):
      start = time.perf_counter()
      with forced_front_end(front_end):
        tagger = mmgenre_jax.Tagger.from_workdir(workdir)
        scores[name] = np.stack([tagger.scores(audio=str(f))[0]
                                 for f in files])
      seconds[name] = round(time.perf_counter() - start, 1)
    diff = np.abs(scores['jax'] - scores['librosa'])
    top = {k: np.argsort(-v, axis=1, kind='stable')[:, :5]
           for k, v in scores.items()}
    print(json.dumps({
        'section': 'scores', 'workdir': workdir, 'tracks': len(files),
        'labels': scores['jax'].shape[1],
        'max_abs_diff': round(float(diff.max()), 5),
        'median_track_max_diff': round(float(np.median(diff.max(1))), 5),
        'top5_equal': int(np.sum(np.all(top['jax'] == top['librosa'],
                                        axis=1))),
        'top5_set_equal': int(np.sum(np.all(
            np.sort(top['jax'], 1) == np.sort(top['librosa'], 1), axis=1))),
        # Where the orders differ: the closest two of librosa's top 6 scores.
        'differing_top6_min_gap': [
            round(float(np.min(-np.diff(np.sort(s)[::-1][:6]))), 5)
            for s, a, b in zip(scores['librosa'], top['jax'], top['librosa'])
            if not np.array_equal(a, b)],
        'score_range': [round(float(scores['librosa'].min()), 3),
                        round(float(scores['librosa'].max()), 3)],
        'librosa_s': seconds['librosa'], 'jax_s_with_compiles': seconds['jax'],
    }), flush=True)


def write_pieces(folder: pathlib.Path, count: int, seconds: int = 30,
                 rate: int = SR):
  """`count` stereo mp3 pieces of the recordings, at `rate` Hz."""
  music = [np.asarray(librosa.load(p, sr=None, mono=False)[0])
           for p in sorted(ASC_MUSIC.glob('*.mp3'))]
  n = seconds * SR
  for i in range(count):
    y = music[i % len(music)]
    start = min((i // len(music)) * n, y.shape[1] - n)
    piece = y[:, start:start + n]
    if rate != SR:
      piece = librosa.resample(piece, orig_sr=SR, target_sr=rate)
    sf.write(folder / f'piece_{i:02d}.mp3', piece.T, rate)


# The predict section's variants: (name, front end, --decode-workers).
# Before issue 28: librosa, every file streamed; phase 2: the JAX front end
# streamed block by block; then whole tracks on the device in batches,
# decoded in this process (1) or by 2 workers ahead of the device.
PREDICT_VARIANTS = (('librosa', LIBROSA, 0),
                    ('jax_stream', frontends.JAX_POLYPHASE, 0),
                    ('jax_device', frontends.JAX_POLYPHASE, 1),
                    ('jax_device_2_workers', frontends.JAX_POLYPHASE, 2))


def predict_section(args) -> dict:
  """Tracks/s of `mmgenre predict` on mp3 pieces, each variant, 1 and 2
  cores."""
  if not (pathlib.Path(args.workdir) / 'pipeline.json').exists() and not (
      pathlib.Path(args.workdir) / 'config.json').exists():
    sys.exit(f'No model in {args.workdir}: run ./run.sh (or train one with '
             'configs/test.py) first.')
  headline = {}
  with tempfile.TemporaryDirectory() as folder:
    write_pieces(pathlib.Path(folder), args.pieces, args.piece_seconds,
                 args.piece_rate)
    for cores in (1, 2):
      runs = {name: [] for name, _, _ in PREDICT_VARIANTS}
      for _ in range(max(1, args.rounds // 2)):
        for name, front_end, workers in PREDICT_VARIANTS:
          runs[name].append(run_child(
              'predict', args.piece_seconds, cores, args, '--frontend', front_end.name,
              '--folder', folder, '--workdir', args.workdir,
              '--decode-workers', str(workers)))
      out = {'section': 'predict', 'track_s': args.piece_seconds,
             'rate': args.piece_rate,
             'cores': cores, 'tracks': args.pieces,
             'workdir': args.workdir, 'rounds': len(runs['librosa'])}
      for name, results in runs.items():
        for run in ('warm', 'cold'):
          seconds = statistics.median(r[f'{run}_s'] for r in results)
          suffix = '' if run == 'warm' else '_cold'
          out[f'{name}{suffix}_tracks_per_s'] = round(args.pieces / seconds,
                                                      2)
      for name, _, _ in PREDICT_VARIANTS[1:]:
        for suffix in ('', '_cold'):
          out[f'ratio_{name}{suffix}'] = round(
              out[f'{name}{suffix}_tracks_per_s'] /
              out[f'librosa{suffix}_tracks_per_s'], 2)
      print(json.dumps(out), flush=True)
      if cores == 1:
        headline = {'librosa_tracks_per_s': out['librosa_tracks_per_s'],
                    'jax_tracks_per_s': out['jax_device_tracks_per_s'],
                    'ratio': out['ratio_jax_device']}
  return headline


def synthetic_music(seconds: int, seed: int) -> np.ndarray:
  """Glides, beats and noise at 22,050 Hz [seconds * 22050] float32."""
  rng = np.random.default_rng(seed)
  t = np.arange(seconds * SR) / SR
  y = 0.3 * np.sin(2 * np.pi * (rng.uniform(40, 400) + 20 * t) * t)
  y *= 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
  y += 0.05 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.9)
  return y.astype(np.float32)


def device_section(args):
  import jax  # pylint: disable=g-import-not-at-top
  ys = np.stack([synthetic_music(30, seed) for seed in range(8)])
  start = time.perf_counter()
  for _ in range(args.rounds):
    audio.cqt_db(ys[0], frontend=LIBROSA)
  cpu = args.rounds / (time.perf_counter() - start)
  mag = np.asarray(frontend.cqt(ys[0], SR))
  ref = np.abs(librosa.cqt(ys[0], sr=SR, hop_length=audio.HOP_LENGTH,
                           fmin=audio.FMIN_HZ, n_bins=audio.N_BINS,
                           bins_per_octave=audio.BINS_PER_OCTAVE,
                           window='hann', res_type='polyphase')).T
  out = {'section': 'device', 'backend': jax.default_backend(),
         'device': str(jax.devices()[0]),
         'max_err_of_max': float(np.abs(mag - ref).max() / ref.max()),
         'librosa_1_core_tracks_per_s': round(cpu, 2)}
  for batch in (1, 16, 64, 256):
    x = jax.device_put(np.tile(ys, (batch // len(ys) + 1, 1))[:batch])
    start = time.perf_counter()
    jax.block_until_ready(frontend.cqt_db(x, SR))
    out[f'compile_s_{batch}'] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    for _ in range(args.rounds):
      jax.block_until_ready(frontend.cqt_db(x, SR))
    rate = batch * args.rounds / (time.perf_counter() - start)
    out[f'jax_tracks_per_s_{batch}'] = round(rate, 1)
    out[f'x_one_core_{batch}'] = round(rate / cpu, 1)
  print(json.dumps(out), flush=True)


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.child:
    section, seconds = args.child[0], int(args.child[1])
    child = cqt_child if section == 'cqt' else decode_child
    print(json.dumps(child(seconds, args)))
    return 0
  sections = args.sections.split(',')
  headline = None
  for section in ('cqt', 'decode'):
    if section not in sections:
      continue
    for seconds in (30, 240):
      for cores in (1, 2):
        result = run_child(section, seconds, cores, args)
        rates = {k: v for k, v in result.items() if 'tracks_per_s' in k}
        ratio = {k.replace('jax', 'ratio').replace('_tracks_per_s', ''):
                 round(v / rates[k.replace('jax_batch', 'jax').replace(
                     'jax', 'librosa')], 2)
                 for k, v in rates.items() if k.startswith('jax')}
        print(json.dumps({'section': section, 'track_s': seconds,
                          'cores': cores, **result, **ratio}), flush=True)
        if (section, seconds, cores) == ('cqt', 30, 1):
          headline = {'librosa_tracks_per_s': result['librosa_tracks_per_s'],
                      'jax_tracks_per_s': result['jax_tracks_per_s'],
                      'ratio': ratio['ratio']}
  if 'gap' in sections:
    gap_section()
  if 'scores' in sections:
    scores_section(args)
  if 'device' in sections:
    device_section(args)
  if 'predict' in sections:
    predict_headline = predict_section(args)
    headline = headline or predict_headline
  if headline:
    print(json.dumps(headline))
  return 0


if __name__ == '__main__':
  sys.exit(main())

r"""`mmgenre prepare`: the process pool vs Beam's local runner, in one run.

  python benchmarks/beam_prepare.py --work /tmp/beam_prepare --albums 60
  python benchmarks/beam_prepare.py --work /tmp/beam_prepare --albums 200

(The 60-album corpus, ~224 tracks, is quick but its ~15 s commands are a
third start-up; 200 albums, ~714 tracks, give steadier ratios.)

Writes (or reuses) a synthetic corpus of --albums albums (defects=1), then
times the whole `mmgenre prepare --dataset mumu` command (start-up, corpus
reading, features, shards, text; tracks/s = audio tracks read / wall time,
as benchmarks/input_pipeline.py's `prepare` section) with each executor:

  pool-1, pool-2  today's path: --workers 1 and 2 (2 is the default here)
  beam-1          --beam_pipeline_options runner=DirectRunner,
                  direct_num_workers=1 (in this process)
  beam-2          ... direct_num_workers=2,direct_running_mode=
                  multi_processing (two worker processes)
  pool-2-gcs      pool-2 with --data and --out in a bucket: a GCS emulator
                  on 127.0.0.1 (tests/helpers/gcs_emulator.py)
  dask-2-gcs      the same on Beam's DaskRunner: a scheduler and 2
                  single-threaded workers on 127.0.0.1, each in its own
                  empty folder (tests/helpers/dask_cluster.py)

(pool-2-gcs and dask-2-gcs are not in the default list:
--executors pool-2-gcs dask-2-gcs.)

--rounds rounds, each running every executor once, the order rotated from
round to round, so that a burst of background load hits them alike. Prints
one JSON line per run, {"section": "beam_prepare", ...}, then

  {"section": "beam_prepare_summary", "median_tracks_per_s": {...},
   "beam_2_vs_pool_2": ..., "beam_1_vs_pool_1": ..., "shards_equal": ...}

with the median tracks/s of each executor, the ratios the 0.9x goal of
issue 16 is about, whether every run wrote the same shards (the
manifests' shard files, record counts and sha256), and the runs that
failed (their line has "failed": true and the error's last line).
"""

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The emulator and the cluster are the tests' (tests/helpers).
sys.path.insert(1, os.path.join(ROOT, 'tests'))

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import bench_lib
from etils import epath
from input_pipeline import layout
from input_pipeline import synthetic
# pylint: enable=g-import-not-at-top,wrong-import-position

DIRECT = 'runner=DirectRunner,direct_num_workers='
# Executor name -> the `mmgenre prepare` flags that choose it.
EXECUTORS = {
    'pool-1': ['--workers', '1'],
    'pool-2': ['--workers', '2'],
    'beam-1': ['--beam_pipeline_options', DIRECT + '1'],
    'beam-2': ['--beam_pipeline_options',
               DIRECT + '2,direct_running_mode=multi_processing'],
    'pool-2-gcs': ['--workers', '2'],
    # {address}: the cluster's, known once it runs.
    'dask-2-gcs': ['--beam_pipeline_options',
                   'runner=DaskRunner,dask_client_address={address},'
                   'dask_npartitions=8'],
}
DEFAULT_EXECUTORS = ['pool-1', 'pool-2', 'beam-1', 'beam-2']
BUCKET = 'gs://b'


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work', default='/tmp/mmgenre_beam_prepare',
                      help='Scratch directory: the corpus and the shards.')
  parser.add_argument('--albums', type=int, default=60,
                      help='Albums of the synthetic corpus (~3.7 tracks '
                      'each).')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--executors', nargs='+', default=DEFAULT_EXECUTORS,
                      choices=list(EXECUTORS))
  return parser.parse_args(argv)


def emit(record) -> None:
  print(json.dumps(record), flush=True)


def progress(msg: str) -> None:
  print(f'[beam_prepare] {msg}', file=sys.stderr, flush=True)


def corpus_dir(work: pathlib.Path, albums: int) -> pathlib.Path:
  corpus = work / f'corpus{albums}'
  settings = dict(num_albums=albums, seed=0, defects=1)
  if not synthetic.is_complete(corpus, **settings):
    progress(f'writing a {albums}-album corpus to {corpus}')
    synthetic.generate_corpus(corpus, **settings, progress=False)
  return corpus


def shard_digests(out):
  """(kind, split) -> [(file, records, sha256)] of a manifest."""
  manifest = json.loads(
      (epath.Path(out) / layout.MANIFEST_JSON).read_text())
  return {(kind, split): [(s['file'], s['records'], s['sha256'])
                          for s in shards]
          for kind, entry in manifest['modalities'].items()
          for split, shards in entry['shards'].items()}, manifest


def prepare(corpus, out, executor: str, address: str = ''):
  """One timed `mmgenre prepare`; (its JSON record, its shard digests)."""
  out = epath.Path(out)
  if out.exists():
    out.rmtree()
  flags = [flag.format(address=address) for flag in EXECUTORS[executor]]
  # The venv's console script, also when the venv is not activated.
  mmgenre = (shutil.which('mmgenre', path=os.path.dirname(sys.executable))
             or shutil.which('mmgenre') or 'mmgenre')
  result = bench_lib.run_measured(
      [mmgenre, 'prepare', '--dataset', 'mumu', '--data', str(corpus),
       '--out', os.fspath(out), '--no-progress'] + flags)
  digests, manifest = shard_digests(out)
  tracks = sum(c['read'] for c in
               manifest['modalities']['audio']['counts'].values())
  return {'executor': executor, 'manifest_executor': manifest['executor'],
          'flags': ' '.join(flags), 'tracks': tracks,
          'wall_s': round(result['wall_s'], 2),
          'prepare_elapsed_s': manifest['elapsed_s'],
          'tracks_per_s': round(tracks / result['wall_s'], 3),
          'peak_rss_mib': round(result['peak_rss_mib'], 1)}, digests


def main(argv=None) -> int:
  args = parse_args(argv)
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  corpus = corpus_dir(work, args.albums)
  with contextlib.ExitStack() as stack:
    bucket_corpus, address = _bucket_and_cluster(
        stack, work, corpus, args.executors)
    rates, digests, failures = _rounds(args, work, corpus, bucket_corpus,
                                       address)
  _summary(args, rates, digests, failures)
  return 0


def _bucket_and_cluster(stack, work, corpus, executors):
  """Starts the emulator and the cluster the executors need; (the corpus
  in the bucket or None, the cluster's address or '')."""
  if not any(name.endswith('-gcs') for name in executors):
    return None, ''
  # pylint: disable=g-import-not-at-top
  from helpers import dask_cluster
  from helpers import gcs_emulator
  # pylint: enable=g-import-not-at-top
  server = stack.enter_context(gcs_emulator.running(bucket='b'))
  os.environ.update(server.env)
  bucket_corpus = f'{BUCKET}/{corpus.name}'
  progress(f'uploading {corpus} to {bucket_corpus}')
  gcs_emulator.upload(corpus, bucket_corpus)
  if 'dask-2-gcs' not in executors:
    return bucket_corpus, ''
  cluster_dir = work / 'cluster'
  if cluster_dir.exists():
    shutil.rmtree(cluster_dir)
  cluster = stack.enter_context(dask_cluster.running(
      cluster_dir, workers=2, env=server.env))
  return bucket_corpus, cluster.address


def _rounds(args, work, corpus, bucket_corpus, address):
  rates = {name: [] for name in args.executors}
  digests, failures = {}, {}
  for round_ in range(args.rounds):
    # Rotated, so that no executor always runs first (cold caches) or last.
    shift = round_ % len(args.executors)
    for name in args.executors[shift:] + args.executors[:shift]:
      progress(f'round {round_ + 1}/{args.rounds}: {name}')
      gcs = name.endswith('-gcs')
      try:
        record, digests[name] = prepare(
            bucket_corpus if gcs else corpus,
            f'{BUCKET}/out_{name}' if gcs else work / f'out_{name}', name,
            address)
      except RuntimeError as e:
        # A failed run is a result too (docs/scale.md: the runner lost
        # records once): its line says so and the others go on.
        failures[name] = failures.get(name, 0) + 1
        emit({'section': 'beam_prepare', 'round': round_, 'executor': name,
              'failed': True, 'error': str(e).strip().splitlines()[-1]})
        continue
      rates[name].append(record['tracks_per_s'])
      emit({'section': 'beam_prepare', 'round': round_, **record})
  return rates, digests, failures


def _summary(args, rates, digests, failures) -> None:
  medians = {name: round(statistics.median(r), 3) for name, r in
             rates.items() if r}
  summary = {'section': 'beam_prepare_summary', 'albums': args.albums,
             'rounds': args.rounds, 'cpus': os.cpu_count(),
             'median_tracks_per_s': medians, 'failed_runs': failures,
             'shards_equal': len({json.dumps(sorted(d.items()))
                                  for d in digests.values()}) == 1}
  for beam_name, pool_name in (('beam-2', 'pool-2'), ('beam-1', 'pool-1'),
                               ('dask-2-gcs', 'pool-2-gcs')):
    if beam_name in medians and pool_name in medians:
      summary[f'{beam_name.replace("-", "_")}_vs_'
              f'{pool_name.replace("-", "_")}'] = round(
                  medians[beam_name] / medians[pool_name], 3)
  emit(summary)


if __name__ == '__main__':
  sys.exit(main())

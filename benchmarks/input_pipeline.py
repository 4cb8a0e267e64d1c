r"""Input pipeline vs train step, end-to-end epochs, preparation and memory.

  mmgenre synth --out /tmp/h4/corpus --albums 150 --seed 0
  mmgenre synth --out /tmp/h4/corpus2x --albums 300 --seed 0
  python benchmarks/input_pipeline.py --corpus /tmp/h4/corpus \
      --corpus2x /tmp/h4/corpus2x --work /tmp/h4/bench

Sections (each prints one JSON line with "section"):
  prepare        `mmgenre prepare` of --corpus with --workers 1 and 2 (wall
                 time, tracks/s with CQT, covers and text included, peak RSS
                 of the process tree); the 2-worker shards feed the rest
                 unless --shards is given.
  prepare_memory peak RSS of preparing --corpus2x (twice the albums) vs
                 --corpus, both with 2 workers.
  train_memory   peak RSS of a subprocess training --model end to end from
                 the shards for --mem-steps and 2x --mem-steps steps.
  epoch          training epochs end to end (tf.data -> device -> step)
                 vs the same number of steps on an in-memory batch.
The last line is
  {"pipeline_ex_per_s":..., "step_ex_per_s":..., "headroom":...}
with the examples/s the pipeline delivers alone (training split, shuffled,
decoded and batched as the trainer asks), what the train step consumes, and
their ratio (goal >= 3).
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax

from benchmarks import bench_lib
from input_pipeline.records import shard_reader
from mmgenre_jax.data import sources as data_sources
from mmgenre_jax import sharding
# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--shards', default=None,
                      help='Prepared shards (default: prepare --corpus).')
  parser.add_argument('--corpus', default=None,
                      help='A `mmgenre synth` corpus to prepare and time.')
  parser.add_argument('--corpus2x', default=None,
                      help='The same generator with twice the albums.')
  parser.add_argument('--work', default='/tmp/mmgenre_bench',
                      help='Scratch directory for prepared shards.')
  parser.add_argument('--model', default='high-4x70-cosine',
                      choices=sorted(bench_lib.MODELS))
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--pipeline-batches', type=int, default=30,
                      help='Batches timed for the pipeline alone.')
  parser.add_argument('--step-steps', type=int, default=4,
                      help='Steps timed for the in-memory train step.')
  parser.add_argument('--jax-layout', default='freq', choices=('nhwc', 'freq'),
                      help='Audio CNN layout of the JAX step (see '
                      'models.audio.CONV_LAYOUTS).')
  parser.add_argument('--mem-model', default='high-4x70-cosine',
                      choices=sorted(bench_lib.MODELS),
                      help='Network of the training-memory comparison.')
  parser.add_argument('--mem-steps', type=int, default=4,
                      help='N of the N vs 2N steps memory comparison '
                      '(0 skips it).')
  parser.add_argument('--skip-epoch', action='store_true')
  parser.add_argument('--epoch-repeats', type=int, default=3,
                      help='Epochs timed (end to end and compute-only '
                      'alternately); the medians are reported.')
  parser.add_argument('--skip-throughput', action='store_true',
                      help='Stop after the memory sections.')
  parser.add_argument('--train-memory-child', type=int, default=None,
                      help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def emit(record) -> None:
  print(json.dumps(record), flush=True)


def progress(msg: str) -> None:
  print(f'[input_pipeline] {msg}', file=sys.stderr, flush=True)


def audio_tracks(shard_dir) -> int:
  """Tracks whose audio prepare read (all splits)."""
  manifest = shard_reader.load_manifest(shard_dir)
  counts = manifest['modalities']['audio']['counts']
  return int(sum(c['read'] for c in counts.values()))


def prepare(corpus, out: pathlib.Path, workers: int):
  if out.exists():
    shutil.rmtree(out)
  mmgenre = shutil.which('mmgenre') or 'mmgenre'
  result = bench_lib.run_measured(
      [mmgenre, 'prepare', '--dataset', 'mumu', '--data', str(corpus),
       '--out', str(out), '--workers', str(workers), '--no-progress'])
  tracks = audio_tracks(out)
  return {'corpus': str(corpus), 'workers': workers, 'tracks': tracks,
          'wall_s': round(result['wall_s'], 2),
          'tracks_per_s': round(tracks / result['wall_s'], 3),
          'peak_rss_mib': round(result['peak_rss_mib'], 1),
          'peak_proc_rss_mib': round(result['peak_proc_rss_mib'], 1)}


def bench_config(args, shards):
  config = bench_lib.get_config(args.model)
  config.train.batch_size = args.batch
  config.data.shard_dir = str(shards)
  manifest = shard_reader.load_manifest(shards)
  # The network's label count follows the shards, as data/facts.py reads it
  # makes it.
  config.data.num_labels = len(manifest['labels'])
  return config


def jax_bench(args, config):
  ns = argparse.Namespace(batch=args.batch, seed=0, jax_layout=args.jax_layout,
                          jax_step='train')
  return bench_lib.JaxBench(ns, config)


def train_memory_child(args) -> int:
  """Trains --model end to end for N steps (the memory subprocess)."""
  config = bench_config(args, args.shards)
  jb = jax_bench(args, config)
  source = data_sources.ShardSource(config)
  mesh = sharding.create_mesh()
  done, epoch = 0, 0
  while done < args.train_memory_child:
    for batch in source.batches('train', args.batch, seed=epoch):
      if done >= args.train_memory_child:
        break
      keep = {k: batch[k] for k in (jb.input_key, 'labels', 'mask')}
      jb.state, _ = jb.step(jb.state, sharding.to_global_batch(keep, mesh),
                            jb.label_factors, jb.rng)
      done += 1
    epoch += 1
  jax.block_until_ready(jb.state.params)
  return 0


def pipeline_rate(args, shards) -> float:
  ds = shard_reader.make_dataset(shards, 'audio', 'train',
                                 batch_size=args.batch, shuffle=True, seed=0,
                                 repeat=True)
  batches = shard_reader.as_numpy_batches(ds)
  for _ in range(3):  # Warm-up: tf.data builds its threads and buffers.
    next(batches)
  start = time.perf_counter()
  for _ in range(args.pipeline_batches):
    next(batches)
  return args.batch * args.pipeline_batches / (time.perf_counter() - start)


def epoch_times(args, config, jb):
  """(end-to-end s, compute-only s, first-batch s, steps) of one epoch.

  Runs --epoch-repeats rounds, each one epoch end to end (ShardSource:
  tf.data start-up included) then the same number of steps on the in-memory
  batch, and returns the median of each, so that a burst of background load
  hits both sides alike. First-batch s is the wait for the epoch's first
  batch (tf.data start-up and shuffle-buffer fill), a fixed cost per epoch.
  """
  source = data_sources.ShardSource(config)
  mesh = sharding.create_mesh()
  steps = source.num_batches('train', args.batch)
  e2e, compute, first = [], [], []
  for repeat in range(args.epoch_repeats):
    start = time.perf_counter()
    for index, batch in enumerate(
        source.batches('train', args.batch, seed=1 + repeat)):
      if index == 0:
        first.append(time.perf_counter() - start)
      keep = {k: batch[k] for k in (jb.input_key, 'labels', 'mask')}
      jb.state, _ = jb.step(jb.state, sharding.to_global_batch(keep, mesh),
                            jb.label_factors, jb.rng)
    jax.block_until_ready(jb.state.params)
    e2e.append(time.perf_counter() - start)
    compute.append(jb.run(steps))
  return (statistics.median(e2e), statistics.median(compute),
          statistics.median(first), steps)


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.train_memory_child is not None:
    return train_memory_child(args)
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  shards = args.shards

  if args.corpus:
    runs = {}
    for workers in (1, 2):
      progress(f'prepare {args.corpus} with {workers} worker(s)')
      runs[workers] = prepare(args.corpus, work / f'shards_w{workers}',
                              workers)
      emit({'section': 'prepare', **runs[workers]})
    emit({'section': 'prepare_scaling',
          'speedup_2_vs_1_workers': round(
              runs[2]['tracks_per_s'] / runs[1]['tracks_per_s'], 3)})
    shards = shards or str(work / 'shards_w2')
    if args.corpus2x:
      progress(f'prepare {args.corpus2x} (twice the albums) with 2 workers')
      big = prepare(args.corpus2x, work / 'shards_2x', 2)
      emit({'section': 'prepare_memory', 'corpus_peak_rss_mib':
            runs[2]['peak_rss_mib'], 'corpus2x_peak_rss_mib':
            big['peak_rss_mib'], 'tracks': runs[2]['tracks'],
            'tracks_2x': big['tracks'], 'rss_ratio': round(
                big['peak_rss_mib'] / runs[2]['peak_rss_mib'], 3)})
  if not shards:
    raise SystemExit('Give --shards (prepared) or --corpus (to prepare).')

  if args.mem_steps > 0:
    peaks = {}
    for n in (args.mem_steps, 2 * args.mem_steps):
      progress(f'training memory: {n} steps end to end in a subprocess')
      result = bench_lib.run_measured(
          [sys.executable, os.path.abspath(__file__), '--shards', shards,
           '--model', args.mem_model, '--batch', str(args.batch),
           '--jax-layout', args.jax_layout, '--train-memory-child', str(n)])
      peaks[n] = result['peak_rss_mib']
    emit({'section': 'train_memory', 'model': args.mem_model,
          'batch': args.batch, 'jax_layout': args.jax_layout,
          'steps': list(peaks), 'peak_rss_mib': [round(v, 1) for v in
                                                peaks.values()],
          'rss_ratio': round(peaks[2 * args.mem_steps] /
                             peaks[args.mem_steps], 3)})

  if args.skip_throughput:
    return 0
  config = bench_config(args, shards)
  progress('pipeline alone')
  pipe = pipeline_rate(args, shards)
  progress(f'pipeline {pipe:.1f} ex/s; compiling the train step')
  jb = jax_bench(args, config)
  jb.run(2)
  step = args.batch * args.step_steps / jb.run(args.step_steps)
  progress(f'step {step:.1f} ex/s')
  if not args.skip_epoch:
    e2e, compute, first, steps = epoch_times(args, config, jb)
    emit({'section': 'epoch', 'model': args.model, 'steps': steps,
          'end_to_end_s': round(e2e, 2), 'compute_only_s': round(compute, 2),
          'first_batch_s': round(first, 3),
          'overhead_after_first_batch': round((e2e - first) / compute - 1.0,
                                              4),
          'jax_layout': args.jax_layout, 'repeats': args.epoch_repeats,
          'overhead': round(e2e / compute - 1.0, 4)})
  emit({'pipeline_ex_per_s': round(pipe, 2), 'step_ex_per_s': round(step, 2),
        'headroom': round(pipe / step, 2), 'model': args.model,
        'batch': args.batch, 'jax_layout': args.jax_layout,
        'shards': str(shards)})
  return 0


if __name__ == '__main__':
  sys.exit(main())

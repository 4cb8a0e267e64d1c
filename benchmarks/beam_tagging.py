r"""Catalog tagging throughput: `mmgenre predict` vs the same on Apache Beam.

  python benchmarks/beam_tagging.py --work /tmp/beam_bench      # all built
  python benchmarks/beam_tagging.py --audio /tmp/x/audio --workdir W

Tags one folder of audio files end to end, each run a fresh `mmgenre
predict` process writing a fresh --out:
  single          the command on one machine (predict.run): one item at a
                  time (--batch-items 1, what it did before batching), and
                  its default, items_lib.BATCH_ITEMS items a batch;
  DirectRunner    --beam_pipeline_options runner=DirectRunner,
                  direct_running_mode=multi_processing, direct_num_workers
                  1 and 2 (each worker process loads the model once and
                  tags batches of items, beam_tagging.py), and
                  direct_running_mode=in_memory (one worker inside the
                  command's own process: no worker start-up).
The runs are interleaved, the order rotated each round, so that a slow
moment of the machine hits every configuration alike. Each configuration
also tags the folder's first track alone: its wall time is the fixed cost
(imports, model load, compilation, worker start-up), and
  steady_tracks_per_s = (tracks - 1) / (wall_s - startup_s)
the rate once started (None when noise puts the fixed cost above the
whole run's). cpu_s is the CPU time of the process tree, less inflated by
a busy machine than wall_s; load_avg_1min says how busy it was (median of
the samples after each run). Medians over --rounds. Every configuration's
rows are checked equal to the single command's, row for row (same_rows).

Without --workdir the model is the tests' tiny trained pipeline (audio
LOW-4x70 COSINE network of the paper's shape, text, image, alignment and
fusion stages; tests/mmgenre_jax/tagging/tagger_test.py), built once under
--work; without --audio the folder is `mmgenre synth --albums 12` (51 tracks),
likewise. One JSON line per configuration:
  {"section": "beam_tagging", "runner", "mode", "workers", "tracks",
   "wall_s", "tracks_per_s", "cpu_s", "startup_s", "steady_tracks_per_s",
   "same_rows", "errors", "cpus", "load_avg_1min", ...}
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'tests'))

BEAM = '--beam_pipeline_options'
# (runner, mode, workers, the flags of `mmgenre predict` that make it).
CONFIGS = (
    ('single', 'one_at_a_time', 1, ('--batch-items', '1')),
    ('single', 'batched', 1, ()),
    ('DirectRunner', 'in_memory', 1,
     (BEAM, 'runner=DirectRunner,direct_running_mode=in_memory')),
    ('DirectRunner', 'multi_processing', 1,
     (BEAM, 'runner=DirectRunner,direct_num_workers=1,'
      'direct_running_mode=multi_processing')),
    ('DirectRunner', 'multi_processing', 2,
     (BEAM, 'runner=DirectRunner,direct_num_workers=2,'
      'direct_running_mode=multi_processing')),
)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work', default='/tmp/mmgenre_beam_bench',
                      help='Scratch folder (model, corpus, outputs).')
  parser.add_argument('--workdir', default=None,
                      help='A trained model (default: build the tests\' '
                      'tiny pipeline under --work).')
  parser.add_argument('--audio', default=None,
                      help='A folder of audio files (default: mmgenre synth '
                      '--albums 12 under --work).')
  parser.add_argument('--rounds', type=int, default=3)
  return parser.parse_args(argv)


def _mmgenre(*argv) -> list:
  """The command line of `mmgenre ARGV` in this interpreter."""
  return [sys.executable, '-c',
          'import sys; from mmgenre_jax import cli; sys.exit(cli.main())',
          *argv]


class _Scratch:
  """tmp_path_factory's mktemp, for tagging_test.train_pipeline."""

  def __init__(self, root: pathlib.Path):
    self.root = root

  def mktemp(self, name: str) -> pathlib.Path:
    path = self.root / name
    path.mkdir(parents=True)
    return path


def tiny_model(work: pathlib.Path) -> pathlib.Path:
  """The tests' tiny trained pipeline (built once under work/model)."""
  root = work / 'model'
  done = root / 'tagging' / 'W'
  if (done / 'pipeline.json').is_file():
    return done
  # pylint: disable=g-import-not-at-top
  import conftest
  import tagging_test
  # pylint: enable=g-import-not-at-top
  shutil.rmtree(root, ignore_errors=True)
  scratch = _Scratch(root)
  shards = conftest.write_tiny_audio_shards(scratch.mktemp('shards'))
  return tagging_test.train_pipeline(shards, scratch)


def synthetic_audio(work: pathlib.Path) -> pathlib.Path:
  corpus = work / 'corpus'
  if not (corpus / 'audio').is_dir():
    subprocess.run(_mmgenre('synth', '--out', str(corpus), '--albums', '12',
                            '--no-progress', '--force'), check=True)
  return corpus / 'audio'


def _rows(out: pathlib.Path, beam: bool) -> list:
  if not beam:
    rows = json.loads(out.read_text())
  else:
    rows = [json.loads(line) for p in sorted(out.parent.glob(
        f'{out.name}-*.jsonl')) for line in p.read_text().splitlines()]
  return sorted(rows, key=lambda r: r['input'])


def _children_cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def tag(workdir, audio, out: pathlib.Path, flags) -> tuple:
  """(wall seconds, CPU seconds, rows) of one `mmgenre predict` process.

  The CPU seconds are those of the process and of the worker processes it
  waited for (RUSAGE_CHILDREN), which a busy machine inflates less than
  the wall time.
  """
  argv = ['predict', '--workdir', str(workdir), '--audio', *audio,
          '--out', str(out), '--no-progress', *flags]
  cpu = _children_cpu_s()
  start = time.perf_counter()
  subprocess.run(_mmgenre(*argv), check=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, cwd=REPO)
  return (time.perf_counter() - start, _children_cpu_s() - cpu,
          _rows(out, BEAM in flags))


def main(argv=None) -> None:
  args = parse_args(argv)
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  shutil.rmtree(work / 'out', ignore_errors=True)
  workdir = args.workdir or tiny_model(work)
  folder = pathlib.Path(args.audio) if args.audio else synthetic_audio(work)
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.tagging import items as items_lib
  tracks = items_lib.audio_files(folder)
  walls = {config[:3]: [] for config in CONFIGS}
  cpus = {config[:3]: [] for config in CONFIGS}
  startups = {config[:3]: [] for config in CONFIGS}
  loads = []
  rows = {}
  run = 0
  for r in range(args.rounds):
    order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
    for *key, flags in order:
      key = tuple(key)
      run += 1
      out = work / 'out' / f'{run}' / ('tags' if BEAM in flags else
                                        'tags.json')
      out.parent.mkdir(parents=True)
      wall, cpu, rows[key] = tag(workdir, [str(folder)], out, flags)
      walls[key].append(wall)
      cpus[key].append(cpu)
      loads.append(os.getloadavg()[0])
      first = work / 'out' / f'{run}-first' / out.name
      first.parent.mkdir(parents=True)
      startups[key].append(tag(workdir, tracks[:1], first, flags)[0])
  expected = rows[CONFIGS[0][:3]]
  for runner, mode, workers, _ in CONFIGS:
    key = (runner, mode, workers)
    wall = statistics.median(walls[key])
    startup = statistics.median(startups[key])
    # None when the fixed cost is not below the whole run's (noise).
    steady = (round((len(tracks) - 1) / (wall - startup), 2)
              if wall > startup else None)
    print(json.dumps({
        'section': 'beam_tagging', 'runner': runner, 'workers': workers,
        'mode': mode,
        'tracks': len(tracks), 'rounds': args.rounds,
        'wall_s': round(wall, 2), 'tracks_per_s': round(len(tracks) / wall,
                                                        2),
        'cpu_s': round(statistics.median(cpus[key]), 2),
        'startup_s': round(startup, 2), 'steady_tracks_per_s': steady,
        'same_rows': rows[key] == expected,
        'errors': sum(r['error'] is not None for r in rows[key]),
        'cpus': os.cpu_count(),
        'load_avg_1min': round(statistics.median(loads), 2)}), flush=True)


if __name__ == '__main__':
  main()

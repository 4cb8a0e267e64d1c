r"""The main job of `./run.sh`, step by step, and its pipelines both ways.

  python benchmarks/first_run.py --work /tmp/first_run
  python benchmarks/first_run.py --work /tmp/first_run --suite

Runs what `./run.sh` runs, each as its own command, timed (wall seconds;
busy CPU seconds of the whole machine meanwhile, cpu_s, which on a quiet
machine are the command's; the load average before and after):

  synth            mmgenre synth, 600 albums, seed 0
  prepare-mumu     mmgenre prepare --dataset mumu (with the enrichment)
  prepare-msdi     mmgenre prepare --dataset msdi

then the three pipelines (mumu_cosine, mumu_logistic, msdi) twice on those
shards, side by side: with
--config.concurrent_stages=1 (one stage at a time in the pipeline's process)
and with the default (0: one stage process per core), each into a workdir
of its own, and `mmgenre report` over each. The order of the two is given
by --first. With --suite it also runs the test suite in one process
(`pytest -n 0`) and over the cores (`-n auto --dist loadfile`, as
`./run.sh test`).

Prints one JSON line per command, {"section": "first_run", "step": ...},
then

  {"section": "first_run_summary", "pipelines_s": {"1": ..., "0": ...},
   "speedup": ..., "results_equal": true, "rows": 37, ...}

where results_equal says whether the two results.json have the same rows
in every key but epoch_s (the wall time per epoch), each workdir's path
read as 'W' (it is in the rows' workdir and config strings).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PIPELINES = ('mumu_cosine', 'mumu_logistic', 'msdi')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work', required=True, type=pathlib.Path,
                      help='Directory of the corpus, shards and workdirs '
                      '(reused: a complete step is skipped by the command).')
  parser.add_argument('--albums', type=int, default=600)
  parser.add_argument('--first', choices=('1', '0'), default='1',
                      help='Which --config.concurrent_stages runs first.')
  parser.add_argument('--suite', action='store_true',
                      help='Also time the test suite, -n 0 and -n auto.')
  return parser.parse_args(argv)


def _cpu_seconds() -> float:
  """Busy CPU seconds of the whole machine since boot (/proc/stat).

  Machine-wide, not the command's: the prepare workers are children of a
  forkserver, which getrusage(RUSAGE_CHILDREN) never sees. On a quiet
  machine (see load_before) it is the command's.
  """
  with open('/proc/stat', encoding='ascii') as f:
    fields = [int(x) for x in f.readline().split()[1:]]
  idle = fields[3] + fields[4]  # idle, iowait
  return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def timed(step: str, command, **extra) -> dict:
  """Runs `command` from the repository root; prints and returns its line."""
  load = os.getloadavg()[0]
  cpu, start = _cpu_seconds(), time.time()
  done = subprocess.run([str(c) for c in command], cwd=ROOT,
                        capture_output=True, text=True, check=False)
  line = {'section': 'first_run', 'step': step, **extra,
          'wall_s': round(time.time() - start, 1),
          'cpu_s': round(_cpu_seconds() - cpu, 1),
          'load_before': round(load, 2),
          'load_after': round(os.getloadavg()[0], 2)}
  if done.returncode:
    line['failed'] = True
    line['error'] = (done.stderr.strip().splitlines() or ['?'])[-1]
  print(json.dumps(line), flush=True)
  return line


def _rows(path: pathlib.Path):
  """results.json's rows but epoch_s, the workdir's own path as 'W'."""
  rows = json.loads(path.read_text())
  return [{k: v.replace(str(path.parent), 'W') if isinstance(v, str) else v
           for k, v in row.items() if k != 'epoch_s'} for row in rows]


def run_pipelines(work: pathlib.Path, concurrent: str) -> float:
  """The three pipelines into work/pipelines_<concurrent>/; wall seconds."""
  out = work / f'pipelines_{concurrent}'
  total = 0.0
  for name in PIPELINES:
    command = [
        sys.executable, 'main.py', f'--config=configs/{name}.py:cpu',
        f'--workdir={out / name}',
        f'--config.concurrent_stages={concurrent}',
        f'--config.data.shard_dir={work / (name[:4] + "_shards")}']
    line = timed(f'pipeline-{name}', command,
                 concurrent_stages=int(concurrent))
    total += line['wall_s']
  timed('report', ['mmgenre', 'report', out, '--no-figures'],
        concurrent_stages=int(concurrent))
  return total


def main(argv=None):
  args = parse_args(argv)
  work = args.work.resolve()
  corpus = work / 'synthetic'
  timed('synth', ['mmgenre', 'synth', '--out', corpus, '--albums',
                  args.albums, '--seed', 0, '--no-progress'])
  timed('prepare-mumu', ['mmgenre', 'prepare', '--dataset', 'mumu', '--data',
                         corpus, '--out', work / 'mumu_shards',
                         '--image-size', 64, '--no-progress', '--enrichment',
                         corpus / 'enrichment.tsv'])
  timed('prepare-msdi', ['mmgenre', 'prepare', '--dataset', 'msdi', '--data',
                         corpus, '--out', work / 'msdi_shards',
                         '--image-size', 64, '--no-progress'])
  order = [args.first, '0' if args.first == '1' else '1']
  seconds = {c: run_pipelines(work, c) for c in order}
  results = [work / f'pipelines_{c}' / 'results.json' for c in order]
  summary = {'section': 'first_run_summary',
             'pipelines_s': {c: round(s, 1) for c, s in seconds.items()},
             'speedup': round(seconds['1'] / seconds['0'], 3),
             'order': order}
  if all(path.exists() for path in results):
    rows = [_rows(path) for path in results]
    summary.update(results_equal=rows[0] == rows[1], rows=len(rows[0]))
  if args.suite:
    for workers in ('0', 'auto'):
      timed('suite', [sys.executable, '-m', 'pytest', '-q', '-n', workers,
                      '--dist', 'loadfile'], workers=workers)
  print(json.dumps(summary), flush=True)


if __name__ == '__main__':
  main()

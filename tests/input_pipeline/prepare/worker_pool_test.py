"""The prepare worker pool tells a pool that cannot start from a bad file.

Real pools (forkserver): one whose workers cannot start stops the job with
one error naming the cause and the fix, before any item is tried or
reported skipped; a worker that crashes on one file costs that file only
(input_pipeline/prepare/workers.py).
"""

import csv
import pathlib
import subprocess
import sys
import textwrap
import types

import pytest

from input_pipeline import layout
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import job as prepare_job
from input_pipeline.prepare import workers as prepare_workers

from helpers import mumu_corpus
from helpers import worker_faults

REPO = pathlib.Path(__file__).resolve().parents[3]


def _prepare_args(root, out, *extra):
  return ['prepare', '--dataset', 'mumu', '--data', str(root), '--out',
          str(out), '--splits', str(root / 'splits'), '--image-size',
          str(mumu_corpus.IMAGE_SIZE), '--no-progress', '--max-skip-fraction',
          str(mumu_corpus.BUDGET), *extra]


def test_preparing_from_standard_input_stops_with_the_named_error(tmp_path):
  # The case users met: a program read from standard input, whose main
  # module ('<stdin>') no forkserver worker can re-import.
  root = tmp_path / 'corpus'
  mumu_corpus.make_corpus(root)
  out = tmp_path / 'shards'
  program = textwrap.dedent(f"""
      import sys
      from mmgenre_jax import cli
      sys.exit(cli.main({_prepare_args(root, out, '--workers', '2')!r}))
      """)
  run = subprocess.run([sys.executable, '-'], input=program, text=True,
                       capture_output=True, cwd=REPO, timeout=600,
                       check=False)
  assert run.returncode == 2, run.stderr[-3000:]
  errors = [line for line in run.stderr.splitlines()
            if line.startswith('mmgenre prepare: error:')]
  assert len(errors) == 1, run.stderr[-3000:]
  error = errors[0]
  assert 'worker processes could not start' in error
  assert "'<stdin>' is not a file" in error
  assert "`if __name__ == '__main__':` guard" in error
  assert '--workers 1' in error
  assert 'crashed' not in run.stderr
  # No item was tried: none is reported skipped, and nothing is complete.
  assert not (out / layout.SKIPPED_TSV).exists()
  assert not (out / layout.MANIFEST_JSON).exists()


def test_a_pool_that_cannot_run_its_function_tries_no_item(monkeypatch):
  # A module only this process has (as a function of a program read from
  # standard input would be): every worker dies unpickling the probe.
  ghost = types.ModuleType('ghost_features')
  # pylint: disable-next=exec-used
  exec('def features(path):\n  return path\n', ghost.__dict__)
  monkeypatch.setitem(sys.modules, 'ghost_features', ghost)
  jobs = [prepare_corpus.Item('train', f'T{i}', {}, [], path=f'{i}.wav')
          for i in range(6)]
  pool = prepare_workers.WorkerPool(2)
  results = []
  with pytest.raises(prepare_workers.WorkerStartError,
                     match='worker processes could not start'):
    try:
      for result in pool.map(ghost.features, jobs, lambda job: {}):
        results.append(result)
    finally:
      pool.close()
  assert results == []


def test_a_file_that_crashes_its_worker_is_skipped_and_the_job_goes_on(
    tmp_path, monkeypatch):
  root = tmp_path / 'corpus'
  split_dir = mumu_corpus.make_corpus(root)
  crashing = root / 'audio' / 'T4.wav'
  crashing.write_bytes(worker_faults.CRASH + crashing.read_bytes())
  # Pickled by reference: the workers run worker_faults' function.
  monkeypatch.setattr(prepare_workers, 'audio_features',
                      worker_faults.audio_features_or_crash)
  out = tmp_path / 'shards'
  manifest = prepare_job.prepare(
      'mumu', root, out,
      prepare_job.Settings(splits=split_dir,
                           image_size=mumu_corpus.IMAGE_SIZE, workers=2,
                           max_skip_fraction=1.0),
      progress=False)
  with open(out / layout.SKIPPED_TSV, newline='', encoding='utf-8') as f:
    audio = {r['item_id']: r for r in csv.DictReader(f, delimiter='\t')
             if r['stage'] == 'audio'}
  # T3 is corrupt (a decode error), T5 missing: skipped as before.
  assert sorted(audio) == ['T3', 'T4', 'T5']
  assert audio['T4']['reason'].endswith(
      f'the worker process crashed twice reading {crashing}')
  counts = manifest['modalities']['audio']['counts']
  assert sum(c['written'] for c in counts.values()) == 4
  assert sum(c['skipped'] for c in counts.values()) == 3

"""`mmgenre prepare` on Beam's DaskRunner: a dask.distributed cluster of a
scheduler and 2 worker processes on 127.0.0.1, each worker in its own empty
folder, with the corpus and the shards only in a bucket (a GCS server on
127.0.0.1, helpers/gcs_emulator.py). The shards must be the worker pool's,
byte for byte, and the manifest's checksums those of the objects; also when
a worker is killed (kill -9) in the middle of the run."""

import dataclasses
import json
import os
import pathlib
import subprocess

from etils import epath
import pytest

from helpers import dask_cluster
from helpers import gcs_emulator
from helpers import prepare_process
from input_pipeline import layout

# Seconds the killed run may take.
RUN_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Setup:
  bucket_dir: str  # This module's folder in the bucket.
  corpus: str  # The corpus in the bucket.
  pool: pathlib.Path  # The pool's shards of the same corpus, local.
  cluster: dask_cluster.Cluster

  def options(self) -> str:
    return ('runner=DaskRunner,dask_client_address='
            f'{self.cluster.address},dask_npartitions=4')


@pytest.fixture(scope='module')
def setup(synthetic_corpus, pool_shards, dask_workers):
  bucket_dir = f'gs://b/dask-test-{os.getpid()}'
  corpus = f'{bucket_dir}/corpus'
  gcs_emulator.upload(synthetic_corpus, corpus)
  return Setup(bucket_dir, corpus, pool_shards, dask_workers)


def _assert_pools_shards(out: str, pool: pathlib.Path) -> None:
  got, want = gcs_emulator.sha256_tree(out), gcs_emulator.sha256_tree(pool)
  manifest = json.loads(epath.Path(out, layout.MANIFEST_JSON).read_text())
  assert manifest['executor'] == 'beam:DaskRunner'
  del got[layout.MANIFEST_JSON], want[layout.MANIFEST_JSON]
  assert got == want  # Shards, statistics, splits, skipped.tsv, tf-idf.
  pool_manifest = json.loads((pool / layout.MANIFEST_JSON).read_text())
  assert manifest['modalities'] == pool_manifest['modalities']
  for entry in manifest['modalities'].values():
    for shards in entry['shards'].values():
      for shard in shards:
        assert got[shard['file']] == shard['sha256']
  # The staged Jobs and the pipeline's report are removed.
  assert not [name for name in got if name.startswith('.')]


def _worker_files(cluster: dask_cluster.Cluster) -> set:
  """The files in the workers' temporary folders."""
  return {p for folder in cluster.worker_dirs
          for p in (folder / 'tmp').rglob('*')}


def test_prepare_on_dask_from_a_bucket_writes_the_pools_shards(
    setup, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  before = setup.cluster.ready().executed()
  kept = _worker_files(setup.cluster)  # Other files' runs on the cluster.
  out = f'{setup.bucket_dir}/shards'
  run = prepare_process.run(setup.corpus, out, '--beam_pipeline_options',
                            setup.options())
  assert run.returncode == 0, run.stderr[-3000:]
  executed = setup.cluster.executed()
  # Both workers computed; they kept no new file (local copies removed).
  assert len(executed) == 2, executed
  assert all(executed[w] > before.get(w, 0) for w in executed), executed
  assert _worker_files(setup.cluster) == kept
  _assert_pools_shards(out, setup.pool)
  assert not list(tmp_path.iterdir())  # Nothing written here.


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes(setup):
  # The nanny of a `dask worker` starts a new worker process; the scheduler
  # runs the lost tasks again. Every shard is one whole-object upload and
  # the manifest comes last, so a task run twice writes the same objects.
  out = f'{setup.bucket_dir}/killed'
  setup.cluster.ready()
  process = subprocess.Popen(
      prepare_process.command(setup.corpus, out, '--beam_pipeline_options',
                              setup.options()),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ))
  victim, stderr = dask_cluster.kill_a_worker_during(
      setup.cluster, process, after_tasks=10, timeout_s=RUN_TIMEOUT_S)
  assert process.returncode == 0, stderr[-3000:]
  assert victim not in setup.cluster.pids().values()  # A new process.
  _assert_pools_shards(out, setup.pool)

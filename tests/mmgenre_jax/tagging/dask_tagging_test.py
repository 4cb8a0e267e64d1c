"""`mmgenre predict --beam_pipeline_options runner=DaskRunner,...` with the
model (an export bundle), the inputs and `--out` only in a bucket (a GCS
server on 127.0.0.1, helpers/gcs_emulator.py) and a dask.distributed
cluster of 2 worker processes in empty folders (conftest's dask_workers):
the rows must be those `mmgenre predict` writes for the same files on local
disk, none lost and none twice, also when a worker is killed (kill -9)
mid-run."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

from etils import epath
import pytest

from helpers import dask_cluster
from helpers import gcs_emulator
from helpers import tagging_pipeline
from input_pipeline import fileio
from mmgenre_jax import cli
from mmgenre_jax import workdir as workdir_lib

# Seconds a killed run may take.
RUN_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Setup:
  bundle: str  # The tiny tagging model, exported, in the bucket.
  music: pathlib.Path  # Local audio files: 4 tones and a corrupt file.
  bucket_music: str  # The same files in the bucket.
  expected: list  # `mmgenre predict`'s rows of `music`, mtimes dropped.
  cluster: dask_cluster.Cluster

  def options(self) -> str:
    return ('runner=DaskRunner,dask_client_address='
            f'{self.cluster.address},dask_npartitions=4')


def _predict(workdir, audio, out, *extra) -> list:
  """`mmgenre predict` in a process of its own (with the emulator's env)."""
  return [sys.executable, '-c', 'import sys; from mmgenre_jax import cli; '
          'sys.exit(cli.main(sys.argv[1:]))', 'predict', '--workdir',
          str(workdir), '--audio', str(audio), '--top-k', '2', '--out',
          str(out), '--no-progress', '--batch-items', '1', *extra]


def _music(folder: pathlib.Path) -> pathlib.Path:
  folder.mkdir()
  for i in range(4):
    tagging_pipeline.tone(folder / f't{i}.wav', 4.0 + i, 22050, 220 + 55 * i)
  (folder / 'broken.mp3').write_bytes(b'ID3' + bytes(range(256)) * 8)
  return folder


def _without_mtimes(rows):
  for row in rows:
    for source in row['sources']:
      source['mtime_ns'] = None
  return sorted(rows, key=lambda r: r['input'])


@pytest.fixture(scope='module')
def setup(tagging_workdir, dask_workers, tmp_path_factory):
  """The bundle and the music in the bucket, the local rows, and the
  session's cluster (conftest's dask_workers) with every worker up."""
  root = tmp_path_factory.mktemp('dask_tagging')
  bucket = f'gs://b/dask-tagging-{os.getpid()}'
  # Exported straight into the bucket (written locally, then uploaded).
  assert cli.main(['export', str(tagging_workdir), '--out',
                   f'{bucket}/bundle']) == 0
  assert fileio.is_file(f'{bucket}/bundle/{workdir_lib.BUNDLE_JSON}')
  music = _music(root / 'music')
  gcs_emulator.upload(music, f'{bucket}/music')
  local = root / 'tags.json'
  assert cli.main(_predict(tagging_workdir, music, local)[3:]) == 3
  expected = _without_mtimes(json.loads(local.read_text()))
  return Setup(f'{bucket}/bundle', music, f'{bucket}/music', expected,
               dask_workers.ready())


def _bucket_rows(setup: Setup, out: str):
  """The rows under prefix `out`, as rows of the local files (the URLs
  replaced by the paths; each source's mtime checked, then dropped), and
  the names of the objects in its folder."""
  folder, name = out.rsplit('/', 1)
  names = sorted(p.name for p in epath.Path(folder).iterdir())
  rows = [json.loads(line) for n in names if n.startswith(name + '-')
          for line in epath.Path(folder, n).read_text().splitlines()]
  for row in rows:
    for source in row['sources']:
      assert (source['size'], source['mtime_ns']) == fileio.stat(
          source['path'])
  text = json.dumps(rows).replace(setup.bucket_music, str(setup.music))
  return _without_mtimes(json.loads(text)), names


def test_predict_on_dask_from_a_bucket_gives_the_local_rows(
    setup, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # Empty: nothing may be written here.
  before = sum(setup.cluster.executed().values())
  out = f'{setup.bucket_music}-tags/tags'
  run = subprocess.run(
      _predict(setup.bundle, setup.bucket_music, out,
               '--beam_pipeline_options', setup.options()),
      capture_output=True, text=True, check=False)
  assert run.returncode == 3, run.stderr[-3000:]  # broken.mp3 failed.
  assert sum(setup.cluster.executed().values()) > before
  rows, names = _bucket_rows(setup, out)
  assert rows == setup.expected  # Every input once, the same numbers.
  assert names == ['tags-00000-of-00001.jsonl']  # No staging left.
  assert not list(tmp_path.iterdir())


def test_a_worker_killed_mid_tagging_loses_and_repeats_no_row(setup):
  # The nanny starts a new worker process and the scheduler runs the lost
  # tasks again; a shard is one whole-object write and the launcher
  # commits only a report that counts every row.
  out = f'{setup.bucket_music}-killed/tags'
  process = subprocess.Popen(
      _predict(setup.bundle, setup.bucket_music, out,
               '--beam_pipeline_options', setup.options()),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  # 2 of the run's tasks (65 for 7 inputs; the first ones tag).
  victim, stderr = dask_cluster.kill_a_worker_during(
      setup.cluster, process, after_tasks=2, timeout_s=RUN_TIMEOUT_S)
  assert process.returncode == 3, stderr[-3000:]
  assert victim not in setup.cluster.pids().values()  # A new process.
  rows, names = _bucket_rows(setup, out)
  assert rows == setup.expected
  assert names == ['tags-00000-of-00001.jsonl']
  # A rerun finds every row and tags nothing.
  rerun = subprocess.run(
      _predict(setup.bundle, setup.bucket_music, out,
               '--beam_pipeline_options', setup.options()),
      capture_output=True, text=True, check=False)
  assert rerun.returncode == 3, rerun.stderr[-3000:]
  assert '5 rows kept. 0 of 5 inputs to predict.' in rerun.stderr
  assert _bucket_rows(setup, out) == (rows, names)

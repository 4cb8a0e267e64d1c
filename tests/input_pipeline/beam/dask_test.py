"""`mmgenre prepare` on Beam's DaskRunner: a dask.distributed cluster of a
scheduler and 2 worker processes on 127.0.0.1, each worker in its own empty
folder, with the corpus and the shards only in a bucket (a GCS server on
127.0.0.1, helpers/gcs_emulator.py). The shards must be the worker pool's,
byte for byte, and the manifest's checksums those of the objects."""

import json
import os
import subprocess
import sys

from etils import epath

from helpers import dask_cluster
from helpers import gcs_emulator
from input_pipeline import layout


def _prepare(data, out, *extra) -> subprocess.CompletedProcess:
  """`mmgenre prepare` in a process of its own (with this environment: the
  emulator's address)."""
  return subprocess.run(
      [sys.executable, '-c', 'import sys; from mmgenre_jax import cli; '
       'sys.exit(cli.main(sys.argv[1:]))', 'prepare', '--dataset', 'mumu',
       '--data', data, '--out', out, '--shard-size', '8', '--image-size',
       '48', '--no-progress', *extra],
      capture_output=True, text=True, env=dict(os.environ), check=False)


def test_prepare_on_dask_from_a_bucket_writes_the_pools_shards(
    synthetic_corpus, gcs_server, bucket_dir, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  corpus, out = f'{bucket_dir}/corpus', f'{bucket_dir}/shards'
  gcs_emulator.upload(synthetic_corpus, corpus)
  pool = tmp_path / 'pool'
  run = _prepare(str(synthetic_corpus), str(pool), '--workers', '2')
  assert run.returncode == 0, run.stderr[-2000:]

  with dask_cluster.running(tmp_path / 'cluster', workers=2,
                            env=gcs_server.env) as cluster:
    run = _prepare(corpus, out, '--beam_pipeline_options',
                   f'runner=DaskRunner,dask_client_address={cluster.address},'
                   'dask_npartitions=4')
    assert run.returncode == 0, run.stderr[-3000:]
    executed = cluster.executed()
  # Both workers computed; they kept no file (each local copy removed).
  assert len(executed) == 2 and min(executed.values()) > 0, executed
  for folder in cluster.worker_dirs:
    assert not list((folder / 'tmp').iterdir())

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
  assert sorted(p.name for p in tmp_path.iterdir()) == ['cluster', 'pool']

"""`mmgenre prepare` with the corpus and --out in a bucket (a real GCS server
on 127.0.0.1, tests/helpers/gcs_emulator.py): the same files, byte for byte,
as a local run."""

import json
import shutil

from etils import epath

from helpers import gcs_emulator
from helpers import prepare_process
from input_pipeline import layout
from input_pipeline.formats import catalog
from mmgenre_jax import cli

# Differ between two runs that write the same shards.
VOLATILE = ('elapsed_s', 'created', 'args')


def test_prepare_from_a_bucket_to_a_bucket_writes_the_local_files(
    synthetic_corpus, pool_shards, bucket_dir, tmp_path, monkeypatch):
  # A path taken for a local one would appear as ./gs:/b/... here.
  monkeypatch.chdir(tmp_path)
  corpus, out = f'{bucket_dir}/corpus', f'{bucket_dir}/shards'
  assert gcs_emulator.upload(synthetic_corpus, corpus) > 20
  local = pool_shards
  run = prepare_process.run(corpus, out, '--workers', '2')
  assert run.returncode == 0, run.stderr[-2000:]

  got, want = gcs_emulator.sha256_tree(out), gcs_emulator.sha256_tree(local)
  differ = {layout.MANIFEST_JSON, layout.SKIPPED_TSV}
  assert {k: v for k, v in got.items() if k not in differ} == {
      k: v for k, v in want.items() if k not in differ}
  assert any(name.endswith('.tfrecord') for name in got)
  manifest = json.loads(epath.Path(out, layout.MANIFEST_JSON).read_text())
  local_manifest = json.loads((local / layout.MANIFEST_JSON).read_text())
  assert manifest['args']['data'] == corpus
  assert manifest['args']['out'] == out
  assert ({k: v for k, v in manifest.items() if k not in VOLATILE} ==
          {k: v for k, v in local_manifest.items() if k not in VOLATILE})
  # Its checksums are those of the objects.
  for entry in manifest['modalities'].values():
    for shards in entry['shards'].values():
      for shard in shards:
        assert got[shard['file']] == shard['sha256']
  # skipped.tsv: the same rows, naming the objects in the bucket.
  skipped = epath.Path(out, layout.SKIPPED_TSV).read_text()
  assert skipped == (local / layout.SKIPPED_TSV).read_text().replace(
      str(synthetic_corpus), corpus)
  # A second run finds the bucket's shards complete.
  again = prepare_process.run(corpus, out, '--workers', '2')
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'already holds these shards' in again.stdout
  assert not list(tmp_path.iterdir())


def test_a_catalog_in_a_bucket_prepares_as_a_local_one(
    synthetic_corpus, bucket_dir, tmp_path, monkeypatch):
  # A catalog CSV with paths relative to it (catalog.write_from_mumu), in
  # this process: --workers 1 starts no worker process.
  monkeypatch.chdir(tmp_path)
  local = tmp_path / 'corpus'
  shutil.copytree(synthetic_corpus, local)
  manifest = catalog.write_from_mumu(local)
  corpus = f'{bucket_dir}/catalog'
  gcs_emulator.upload(local, corpus)
  outs = []
  for csv_path, out in ((str(manifest), str(tmp_path / 'local_shards')),
                        (f'{corpus}/{manifest.name}', f'{bucket_dir}/out')):
    assert cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                     csv_path, '--out', out, '--workers', '1',
                     '--shard-size', '8', '--image-size', '48',
                     '--no-progress']) == 0
    outs.append(gcs_emulator.sha256_tree(out))
  differ = {layout.MANIFEST_JSON, layout.SKIPPED_TSV}
  got, want = ({k: v for k, v in o.items() if k not in differ}
               for o in outs[::-1])
  assert got == want
  assert any(name.startswith('audio/') for name in got)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'corpus', 'local_shards']

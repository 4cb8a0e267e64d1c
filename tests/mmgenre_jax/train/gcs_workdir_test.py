"""gs:// workdirs go through the same code as local ones (docs/tpu_pod.md §4).

There is no network here, so etils.epath.testing.mock_epath stands in for
GCS: every epath operation on gs://bucket/... is redirected to
<tmp>/gcs/bucket/... . With TensorFlow installed epath sends gs:// to
tf.io.gfile instead of its backend table (which mock_epath replaces), and
caches that choice (gpath._is_tf_installed, so EPATH_USE_TF=false set here
would come too late once any test has used epath); the fixture patches it.
What is NOT covered (it bypasses epath): TensorBoard event files (clu ->
tf.io.gfile), orbax's array data (tensorstore's own GCS driver), orbax's
hierarchical-namespace query (google.cloud.storage) and tf.data reading
gs:// shard files.

Every test runs in an empty working directory and checks at the end that
no `gs:` directory appeared there: pathlib turns gs://b/w into the relative
local path gs:/b/w, which is how a missed call site shows up.
"""

import json
import os

from clu import metric_writers
from etils import epath
from etils.epath import gpath
from etils.epath import testing as epath_testing
import numpy as np
from orbax.checkpoint._src.path import gcs_utils
import pytest

from helpers import tiny
from input_pipeline import fileio
from input_pipeline.records import shard_reader
from mmgenre_jax.train import checkpoints
from mmgenre_jax.evaluation import evaluate
from mmgenre_jax.reporting import report
from mmgenre_jax.data import representations
from mmgenre_jax.train import label_factors
from mmgenre_jax.train import setup
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.pipelines import runner

BUCKET = 'gs://bucket'


class FakeGcs:
  """gs://... <-> <root>/... for the mocked epath backend."""

  def __init__(self, root):
    self.root = os.fspath(root)

  def local(self, path) -> str:
    path = os.fspath(path)
    if path.startswith('gs://'):
      return os.path.join(self.root, path[len('gs://'):])
    return path

  def url(self, path) -> str:
    path = os.fspath(path)
    if path.startswith(self.root + os.sep):
      return 'gs://' + path[len(self.root) + 1:]
    return path

  def mocks(self):
    """mock_epath keyword arguments: each takes the original function."""
    one = lambda fn, path, *args, **kwargs: fn(self.local(path), *args,
                                                **kwargs)
    two = lambda fn, src, dst, **kwargs: fn(self.local(src),
                                             self.local(dst), **kwargs)

    def glob(fn, pattern):
      return [self.url(p) for p in fn(self.local(pattern))]

    def walk(fn, top, **kwargs):
      for root, dirs, files in fn(self.local(top), **kwargs):
        yield self.url(root), dirs, files

    return dict(open=one, exists=one, isdir=one, listdir=one, makedirs=one,
                mkdir=one, remove=one, rmtree=one, stat=one, rename=two,
                replace=two, copy=two, glob=glob, walk=walk)


@pytest.fixture
def gcs(tmp_path, monkeypatch):
  """A fake bucket; the test runs in the empty directory tmp_path/cwd."""
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)
  fake = FakeGcs(tmp_path / 'gcs')
  with epath_testing.mock_epath(**fake.mocks()):
    yield fake
  mangled = [os.path.join(root, d) for root, dirs, _ in os.walk(cwd)
             for d in dirs if d.startswith('gs:')]
  assert not mangled, f'gs:// paths written as local directories: {mangled}'
  assert os.listdir(cwd) == []


def test_the_mock_catches_pathlib_mangling(gcs):
  """The gcs fixture's own check: this is what a pathlib call site does."""
  import pathlib  # pylint: disable=g-import-not-at-top
  (pathlib.Path(f'{BUCKET}/w') / 'x').mkdir(parents=True)
  assert os.path.isdir('gs:/bucket/w/x')
  os.rmdir('gs:/bucket/w/x')
  os.removedirs('gs:/bucket/w')


def test_atomic_writes_are_one_object_write(gcs):
  path = f'{BUCKET}/dir/sub/value.json'
  fileio.write_json_atomic(path, {'a': [1, 2]})
  local = gcs.local(path)
  with open(local, encoding='utf-8') as f:
    assert json.load(f) == {'a': [1, 2]}
  # Nothing beside the object: no temporary file or rename on a URL.
  assert os.listdir(os.path.dirname(local)) == ['value.json']
  with pytest.raises(RuntimeError):
    with fileio.atomic_open(path) as f:
      f.write(b'half')
      raise RuntimeError('interrupted')
  with open(local, encoding='utf-8') as f:
    assert json.load(f) == {'a': [1, 2]}
  assert not fileio.is_local(path)
  assert fileio.is_local('runs/w') and fileio.is_local(epath.Path('/tmp'))


def test_label_factors_round_trip(gcs):
  matrix = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)
  result = ppmi_svd.factorize(matrix, 2)
  workdir = f'{BUCKET}/runs/audio'
  workdir_lib.write_factors(workdir, result.label_factors,
                            result.item_factors, ['a', 'b', 'c'],
                            ['i0', 'i1', 'i2', 'i3'])
  local = gcs.local(workdir)
  assert sorted(os.listdir(local)) == sorted(
      [workdir_lib.LABEL_FACTORS_NPY, workdir_lib.ITEM_FACTORS_NPY,
       workdir_lib.LABELS_TSV, workdir_lib.ITEMS_TSV])
  np.testing.assert_array_equal(
      workdir_lib.load_label_factors(workdir),
      result.label_factors.astype(np.float32))
  np.testing.assert_array_equal(
      np.load(os.path.join(local, workdir_lib.LABEL_FACTORS_NPY)),
      result.label_factors.astype(np.float32))
  assert workdir_lib.read_lines(f'{workdir}/{workdir_lib.LABELS_TSV}') == [
      'a', 'b', 'c']


def test_setup_write_json_and_label_factors(gcs, shard_dir):
  workdir = f'{BUCKET}/runs/audio'
  config = tiny.tiny_train_config(shard_dir)
  stage = setup.setup(config, workdir, compute_label_factors=True)
  assert os.path.isdir(gcs.local(workdir))
  workdir_lib.write_json(epath.Path(workdir) / workdir_lib.CONFIG_JSON,
                         json.loads(config.to_json()))
  with open(gcs.local(f'{workdir}/{workdir_lib.CONFIG_JSON}'),
            encoding='utf-8') as f:
    assert json.load(f)['data']['shard_dir'] == str(shard_dir)
  factors = label_factors.compute(config, stage.facts, workdir,
                                  stage.steps.source)
  assert factors.shape == (len(tiny.TINY_LABELS),
                           int(config.data.factor_dim))
  np.testing.assert_array_equal(
      label_factors.load(config, workdir), factors)
  assert workdir_lib.read_lines(gcs.local(f'{workdir}/{workdir_lib.LABELS_TSV}')
                            ) == list(tiny.TINY_LABELS)


def test_checkpoint_managers_keep_the_url(gcs, monkeypatch):
  # Orbax asks GCS (google.cloud.storage, over the network) whether the
  # bucket has a hierarchical namespace before listing step directories;
  # answer for it: a plain bucket, whose listing goes through epath.
  monkeypatch.setattr(gcs_utils, 'is_hierarchical_namespace_enabled',
                      lambda path: False)
  workdir = f'{BUCKET}/runs/audio'
  latest, best = checkpoints.managers(workdir)
  try:
    assert os.fspath(latest.directory) == (
        f'{workdir}/{workdir_lib.CHECKPOINTS_DIR}/{workdir_lib.LATEST}')
    assert os.fspath(best.directory) == (
        f'{workdir}/{workdir_lib.CHECKPOINTS_DIR}/{workdir_lib.BEST}')
    # Created in the bucket, through epath.
    assert os.path.isdir(gcs.local(latest.directory))
    assert latest.latest_step() is None
  finally:
    latest.close()
    best.close()
  # A local workdir is still made absolute for orbax.
  local_latest, local_best = checkpoints.managers('w', read_only=True)
  assert os.fspath(local_latest.directory) == os.path.join(
      os.getcwd(), 'w', workdir_lib.CHECKPOINTS_DIR, workdir_lib.LATEST)
  local_latest.close()
  local_best.close()


def test_evaluation_outputs(gcs):
  workdir = f'{BUCKET}/runs/audio'
  eval_dir = workdir_lib.eval_dir(workdir, 'test')
  report_values = {'roc_auc': 0.75, 'loss': 0.5, 'checkpoint': 'best'}
  evaluate._write_result(eval_dir, metric_writers.LoggingWriter(),
                         report_values, 'best', 7)
  for name in ('best_7.json', 'metrics.json'):
    with open(gcs.local(f'{workdir}/eval_test/{name}'),
              encoding='utf-8') as f:
      assert json.load(f) == report_values
  # Extraction's output (evaluate._write_extracted) and its reader.
  rows = dict(ids=['t1', 't2'], album_ids=['a1', 'a1'],
              representation=np.arange(6, dtype=np.float32).reshape(2, 3),
              scores=np.array([[0.1, 0.9], [0.8, 0.2]], np.float32),
              labels=np.array([[0, 1], [1, 0]], np.float32))
  path = representations.write_representations(
      workdir, 'audio', 'test', label_names=['x', 'y'], step=7, **rows)
  assert os.fspath(path) == f'{workdir}/representations/audio/test.npz'
  assert os.listdir(gcs.local(f'{workdir}/representations/audio')) == [
      'test.npz']
  loaded = representations.load_representations(workdir, 'audio', 'test')
  for key, value in rows.items():
    np.testing.assert_array_equal(loaded[key], np.asarray(value))
  assert loaded[representations.STEP] == 7
  assert loaded[representations.LABEL_NAMES].tolist() == ['x', 'y']


def _write_stage(workdir: epath.Path, name: str, auc: float) -> dict:
  stage_dir = workdir / name
  workdir_lib.write_json(stage_dir / workdir_lib.TEST_METRICS_JSON,
                         {'roc_auc': auc, 'pr_auc': auc - 0.3,
                          'num_params': 10, 'epoch_s': 1.5})
  return {'name': name, 'workdir': os.fspath(stage_dir),
          'config': f'configs/x.py:{name}', 'kind': 'network',
          'inputs': {}, 'outputs': ['audio'], 'status': 'done',
          'row': {'dataset': 'mumu', 'modality': name, 'target': 'cosine',
                  'settings': 'mlp', 'seed': 0}}


def test_report_reads_and_writes_results(gcs):
  workdir = epath.Path(f'{BUCKET}/runs/mumu_cosine')
  stages = [_write_stage(workdir, 'audio', 0.8),
            _write_stage(workdir, 'text', 0.85)]
  workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON,
                         {'name': 'mumu_cosine', 'config': 'configs/x.py:cpu',
                          'dataset': 'mumu', 'final': 'text',
                          'stages': stages})
  # A tree of pipeline workdirs (found by walking the bucket) ...
  assert report.find_pipelines(f'{BUCKET}/runs') == [workdir]
  text = report.write_report(f'{BUCKET}/runs')
  assert f'`{workdir}`' in text
  with open(gcs.local(f'{BUCKET}/runs/{workdir_lib.RESULTS_JSON}'),
            encoding='utf-8') as f:
    rows = json.load(f)
  assert [(r['modality'], r['roc_auc'], r['workdir']) for r in rows] == [
      ('audio', 0.8, f'{workdir}/audio'), ('text', 0.85, f'{workdir}/text')]
  assert os.path.isfile(gcs.local(f'{BUCKET}/runs/{workdir_lib.REPORT_MD}'))
  # ... and the pipeline's own completeness checks on its stage workdirs.
  assert not runner.is_complete(workdir / 'audio', ['audio'])


def test_shard_dir_manifest_and_file_urls(gcs, shard_dir):
  """The manifest is read through epath; tf.data gets gs:// URLs."""
  shards = f'{BUCKET}/data/shards'
  local = gcs.local(shards)
  os.makedirs(os.path.dirname(local))
  os.symlink(shard_dir, local)
  manifest = shard_reader.load_manifest(shards)
  assert manifest['labels'] == list(tiny.TINY_LABELS)
  entries = manifest['modalities']['audio']['shards']['train']
  files = shard_reader.shard_files(shards, entries)
  assert files == [f'{shards}/{s["file"]}' for s in entries]
  assert all(epath.Path(f).is_file() for f in files)
  # Checksums and the audio statistics are read through epath as well, so
  # audio networks train from a gs:// shard dir too.
  assert shard_reader.verify_shards(shards) == shard_reader.verify_shards(
      shard_dir) > 0
  mean, std = shard_reader.load_audio_stats(shards)
  local_mean, local_std = shard_reader.load_audio_stats(shard_dir)
  np.testing.assert_array_equal(mean, local_mean)
  np.testing.assert_array_equal(std, local_std)

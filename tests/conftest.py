"""Shared pytest set-up: CPU only, quiet TensorFlow, a small synthetic
corpus."""

import os
import shutil
import tempfile

# Before any import of TF/JAX: keep TF off GPUs and quiet; JAX on the CPU.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One JAX compilation cache for the run, which its processes inherit (the
# xdist workers, the main.py, mmgenre and pool-worker processes the tests
# start): many of them compile the same tiny programs (main_modes_test
# 73 s with it vs 84 s without). Each run starts with an empty one, as CI
# does, removed when the run ends (pytest_unconfigure); one named in the
# environment is used and kept.
_OWN_JAX_CACHE = 'JAX_COMPILATION_CACHE_DIR' not in os.environ
if _OWN_JAX_CACHE:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix='mmgenre-test-jax-cache-')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

import pathlib  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402

from helpers import built_once  # noqa: E402
from helpers import dask_cluster  # noqa: E402
from helpers import gcs_emulator  # noqa: E402
from helpers import prepare_process  # noqa: E402
from helpers import tagging_pipeline  # noqa: E402
from helpers import tiny  # noqa: E402

# Copies of the genuine MuMu release files (see data/mumu/PROVENANCE.md).
MUMU_RELEASE_DIR = pathlib.Path(__file__).resolve().parent / 'data' / 'mumu'
# The xdist work unit of the files that share `dask_workers`.
DASK_TESTS = 'dask*_test.py'


@pytest.fixture(scope='session')
def mumu_release_dir() -> pathlib.Path:
  """The genuine MuMu release files shipped beside the project."""
  if not (MUMU_RELEASE_DIR / 'MuMu_dataset_single-label.csv').exists():
    raise FileNotFoundError(
        f'Genuine MuMu release files not found in {MUMU_RELEASE_DIR}.')
  return MUMU_RELEASE_DIR


@pytest.fixture(scope='session')
def synthetic_corpus(tmp_path_factory) -> pathlib.Path:
  """The 8-album synthetic corpus (seed 0), written once per run
  (helpers/built_once.py).

  Read-only (checked when the session ends): a test that changes a corpus
  makes its own.
  """
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline import synthetic

  def build(root):
    synthetic.generate_corpus(root, num_albums=8, seed=0, workers=1,
                              progress=False)
    return root
  root = built_once.built_once(tmp_path_factory, 'synthetic_corpus', build)
  before = built_once.fingerprint(root)
  yield root
  assert built_once.fingerprint(root) == before, (
      f'a test changed the shared synthetic corpus in {root}')


@pytest.fixture(scope='session')
def pool_shards(synthetic_corpus, tmp_path_factory) -> pathlib.Path:
  """The worker pool's shards of the synthetic corpus (2 workers,
  helpers/prepare_process.py's settings): what the bucket and cluster runs
  must equal. Read-only; built once per run."""

  def build(root):
    run = prepare_process.run(synthetic_corpus, root / 'shards',
                              '--workers', '2')
    assert run.returncode == 0, run.stderr[-2000:]
    return root / 'shards'
  return built_once.built_once(tmp_path_factory, 'pool_shards', build)


@pytest.fixture(scope='session')
def shard_dir(tmp_path_factory) -> pathlib.Path:
  """Tiny MuMu audio shards with whole-track windows."""
  return tiny.write_tiny_audio_shards(tmp_path_factory.mktemp('shards'))


@pytest.fixture(scope='session')
def full_run(shard_dir, tmp_path_factory):
  """An uninterrupted 2-epoch tiny audio run: (workdir, test metrics)."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.train import loop as train_loop
  # pylint: enable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp('full')
  return workdir, train_loop.train_and_evaluate(
      tiny.tiny_train_config(shard_dir), workdir)


@pytest.fixture(scope='session')
def tagging_workdir(shard_dir, tmp_path_factory):
  """The tiny trained pipeline of helpers/tagging_pipeline.py (audio, text and
  image networks, an alignment stage, two fusions), shared by the tagging
  tests so that it is trained once per run (helpers/built_once.py).

  Read-only: checked when the session ends.
  """
  workdir = built_once.built_once(
      tmp_path_factory, 'tagging',
      lambda root: tagging_pipeline.train_pipeline(shard_dir, root))
  before = built_once.fingerprint(workdir.parent)
  yield workdir
  assert built_once.fingerprint(workdir.parent) == before, (
      f'a test changed the shared tagging pipeline in {workdir.parent}')


@pytest.fixture(scope='session')
def gcs_server():
  """A GCS emulator on 127.0.0.1 (helpers/gcs_emulator.py) with bucket `b`,
  its environment set in this process for gcsfs (read when gcsfs first makes
  a client)."""
  with gcs_emulator.running(bucket='b') as server:
    saved = {key: os.environ.get(key) for key in server.env}
    os.environ.update(server.env)
    try:
      yield server
    finally:
      for key, value in saved.items():
        if value is None:
          os.environ.pop(key, None)
        else:
          os.environ[key] = value


@pytest.fixture(scope='session')
def dask_workers(gcs_server, tmp_path_factory):
  """A dask.distributed scheduler and 2 worker processes on 127.0.0.1, each
  in an empty folder, with the emulator's environment
  (helpers/dask_cluster.py). Started once: `pytest_xdist_make_scheduler`
  below runs every file that uses it on one xdist worker."""
  with dask_cluster.running(tmp_path_factory.mktemp('dask_cluster'),
                            workers=2, env=gcs_server.env) as cluster:
    yield cluster


def pytest_xdist_make_scheduler(config, log):
  """`--dist loadfile`, except that the files named dask*_test.py go to
  one xdist worker together, so that they share `dask_workers` (starting a
  cluster costs ~10 s on 2 cores)."""
  if config.getvalue('dist') != 'loadfile':
    return None
  # pylint: disable-next=g-import-not-at-top
  from xdist.scheduler import LoadFileScheduling

  class Scheduling(LoadFileScheduling):

    def _split_scope(self, nodeid: str) -> str:
      path = nodeid.split('::', 1)[0]
      name = path.rsplit('/', 1)[-1]
      return DASK_TESTS if re.fullmatch(r'dask\w*_test\.py', name) else path
  return Scheduling(config, log)


@pytest.fixture
def bucket_dir(gcs_server, request) -> str:
  """gs://b/<a folder of this test's own> in the emulator."""
  del gcs_server
  name = ''.join(c if c.isalnum() else '-' for c in request.node.name)
  return f'gs://b/{name}-{os.getpid()}'


def pytest_unconfigure(config):
  del config
  if _OWN_JAX_CACHE:
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)

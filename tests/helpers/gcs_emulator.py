"""A real GCS JSON-API server on 127.0.0.1 for the tests: gcp-storage-emulator.

  with gcs_emulator.running(bucket='b') as server:
    server.env          # {'STORAGE_EMULATOR_HOST': 'http://127.0.0.1:PORT'}
    epath.Path('gs://b/x').write_text('...')   # through gcsfs, to the server

The server is a subprocess of its own (in-memory: nothing on disk), so the
clients talk HTTP to it exactly as to GCS; worker processes started with
`server.env` in their environment reach the same bucket.
"""

import contextlib
import dataclasses
import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator
import urllib.error
import urllib.request

from etils import epath

from input_pipeline import fileio  # Sets the layer (EPATH_USE_TF) first.

# Seconds to wait for the server to answer its first request.
START_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Server:
  """A running emulator: its endpoint and the environment clients need."""
  endpoint: str
  bucket: str

  @property
  def env(self) -> Dict[str, str]:
    """What a client process needs in its environment to reach the server.

    gcsfs's Storage Control client (zonal and hierarchical bucket types)
    speaks gRPC to the real service, which the emulator does not serve; with
    it on, every new bucket waits out a 60 s timeout. Orbax writes arrays
    through tensorstore's own GCS driver, whose endpoint is
    TENSORSTORE_GCS_HTTP_URL (its bucket names need 3 characters or more).
    """
    return {'STORAGE_EMULATOR_HOST': self.endpoint,
            'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false',
            'TENSORSTORE_GCS_HTTP_URL': self.endpoint}


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


# The emulator's main, with one header added that GCS sends and the
# emulator does not: x-goog-generation on a media download. tensorstore
# (orbax's arrays) reads an object's generation from it and conditions its
# next write of the object on it (an OCDBT manifest is rewritten in place);
# without it every such write fails with "Malformed StorageGeneration".
# gcsfs does not use it. The emulator does not check the preconditions
# (ifGenerationMatch): fine for one writer, as in these tests.
_MAIN = """
import sys
from gcp_storage_emulator import __main__ as emulator
from gcp_storage_emulator.handlers import objects
plain = objects.download
def download(request, response, storage, *args, **kwargs):
  plain(request, response, storage, *args, **kwargs)
  try:
    found = storage.get_file_obj(request.params['bucket_name'],
                                 request.params['object_id'])
    response['x-goog-generation'] = found['generation']
  except Exception:  # Not found: the handler answered 404.
    pass
objects.download = download  # objects.get (alt=media) calls it.
sys.exit(emulator.main(sys.argv[1:]))
"""


def _command() -> list:
  return [sys.executable, '-c', _MAIN]


def _wait_until_up(endpoint: str, process: subprocess.Popen) -> None:
  deadline = time.monotonic() + START_TIMEOUT_S
  url = f'{endpoint}/storage/v1/b?project=test'
  while True:
    try:
      with urllib.request.urlopen(url, timeout=2) as response:
        if response.status == 200:
          return
    except (urllib.error.URLError, ConnectionError, OSError):
      pass
    if process.poll() is not None or time.monotonic() > deadline:
      raise RuntimeError(f'gcp-storage-emulator did not start at {endpoint} '
                         f'(exit status {process.poll()}).')
    time.sleep(0.1)


@contextlib.contextmanager
def running(bucket: str = 'b') -> Iterator[Server]:
  """Starts the emulator with `bucket`; stops it when the block ends."""
  port = free_port()
  process = subprocess.Popen(
      _command() + ['start', '--host', '127.0.0.1', '--port', str(port),
                    '--in-memory', '--default-bucket', bucket, '--quiet'],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    server = Server(endpoint=f'http://127.0.0.1:{port}', bucket=bucket)
    _wait_until_up(server.endpoint, process)
    yield server
  finally:
    process.terminate()
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def make_bucket(name: str) -> str:
  """Creates bucket `name` in the server this process reaches; returns
  gs://name."""
  # pylint: disable-next=g-import-not-at-top
  import fsspec
  fsspec.filesystem('gs').mkdir(name)
  return f'gs://{name}'


def upload(local_dir, url: str) -> int:
  """Copies every file under `local_dir` to `url`/...; returns the count."""
  root = pathlib.Path(local_dir)
  files = [p for p in sorted(root.rglob('*')) if p.is_file()]
  for path in files:
    target = epath.Path(f'{url}/{path.relative_to(root).as_posix()}')
    target.write_bytes(path.read_bytes())
  return len(files)


def sha256_tree(url) -> Dict[str, str]:
  """relative name -> sha256 of every object under `url` (or local dir)."""
  root = os.fspath(url)
  scheme = root.split('://')[0] + '://' if '://' in root else ''
  digests = {}
  for folder, _, names in epath.Path(root).walk():
    # gcsfs gives the folders without their scheme.
    folder = os.fspath(folder)
    if scheme and not folder.startswith(scheme):
      folder = scheme + folder
    for name in names:
      with fileio.open_binary(f'{folder}/{name}') as f:
        digests[f'{folder}/{name}'[len(root) + 1:]] = (
            hashlib.sha256(f.read()).hexdigest())
  return digests

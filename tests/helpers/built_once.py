"""Session fixtures built once per test run, not once per xdist worker.

Under pytest-xdist (`./run.sh test` runs one worker per core) every worker
is a session of its own, so a session fixture is built again by each worker
that uses it: the tiny trained pipeline of the tagging tests took ~30 s per
worker on 2 cores. `built_once` builds it in the run's temporary directory,
which the workers share, under a file lock: the first worker builds, the
others wait for it and reuse the result.

The tree is then shared by processes running at the same time, so the tests
must treat it as read-only; `fingerprint` lets a fixture check that they
did.
"""

import contextlib
import fcntl
import os
import pathlib
import shutil
from typing import Callable, Dict, Iterator, Tuple


def _shared_root(tmp_path_factory) -> pathlib.Path:
  """The run's temporary directory: the parent of every worker's
  basetemp under xdist."""
  return tmp_path_factory.getbasetemp().parent


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
  with open(path, 'w', encoding='utf-8') as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(tmp_path_factory, name: str,
               build: Callable[[pathlib.Path], pathlib.Path]
               ) -> pathlib.Path:
  """`build(empty_directory)` once per run; returns what it returned.

  Args:
    tmp_path_factory: pytest's fixture.
    name: the directory's name, unique among the fixtures built once.
    build: fills the directory it is given and returns the path the fixture
      yields (the directory or a path inside it).

  Without xdist this is `build(tmp_path_factory.mktemp(name))`.
  """
  if 'PYTEST_XDIST_WORKER' not in os.environ:
    return build(tmp_path_factory.mktemp(name))
  root = _shared_root(tmp_path_factory)
  done = root / f'{name}.built'  # Holds the returned path, relative.
  with _locked(root / f'{name}.lock'):
    if not done.exists():
      # A worker killed mid-build left no `.built`: build again from empty.
      directory = root / name
      shutil.rmtree(directory, ignore_errors=True)
      directory.mkdir()
      result = pathlib.Path(build(directory))
      done.write_text(os.fspath(result.relative_to(root)), encoding='utf-8')
    return root / done.read_text(encoding='utf-8')


def fingerprint(directory: pathlib.Path) -> Dict[str, Tuple[int, int]]:
  """path -> (size, mtime in ns) of every file under `directory`."""
  found = {}
  for path in sorted(pathlib.Path(directory).rglob('*')):
    if path.is_file():
      stat = path.stat()
      name = os.fspath(path.relative_to(directory))
      found[name] = (stat.st_size, stat.st_mtime_ns)
  return found

"""Atomic file writes: a reader never sees a half-written file.

Every small output of the project (splits, manifests, statistics, label
factors, workdir JSON, representations) goes through here. No TensorFlow, so
light modules (splits, targets, pipelines) can use it.

Paths may be local or URLs such as `gs://bucket/dir/file` (etils.epath, the
path type orbax uses too; docs/tpu_pod.md §4). Atomicity differs by kind:

- Local: the data goes to a temporary file beside the target (same
  filesystem), is fsynced and renamed over it with os.replace.
- URL (object stores): the data is kept in memory until the block ends
  cleanly, then written with ONE object write. An object store publishes an
  object only when its upload completes (GCS: at close), so readers see the
  old object or the whole new one; on an exception nothing is written. A
  temporary object plus rename is not used: a GCS rename is a copy and a
  delete, no more atomic and twice the traffic. The files written here are
  small enough to hold in memory.
"""

import contextlib
import io
import json
import os
import tempfile
from typing import Any, BinaryIO, Iterator

from etils import epath

# Suffix of the temporary files (stale ones are recognisable and removable).
TMP_SUFFIX = '.tmp'


def _process_umask() -> int:
  # os.umask both sets and returns it: read once, at import, before the
  # jobs' threads start.
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


# Mode of the files written here: what open() would give under the user's
# umask (0644 under umask 022), not mkstemp's private 0600, so that a team
# sharing runs/ can read them.
FILE_MODE = 0o666 & ~_process_umask()


def temp_file(directory, prefix: str) -> str:
  """An empty hidden file in `directory` (local) to write, then rename.

  Named <prefix>XXXXXXXX.tmp (TMP_SUFFIX), unique, with mode FILE_MODE.
  """
  fd, name = tempfile.mkstemp(dir=directory, prefix=prefix,
                              suffix=TMP_SUFFIX)
  try:
    os.fchmod(fd, FILE_MODE)
  finally:
    os.close(fd)
  return name


def is_local(path) -> bool:
  """Whether `path` is on the local filesystem (not a gs://... URL)."""
  return '://' not in os.fspath(path)


@contextlib.contextmanager
def atomic_open(path) -> Iterator[BinaryIO]:
  """A binary file that replaces `path` only when the block ends cleanly.

  On any exception `path` is left as it was. Missing parent directories are
  created (module docstring: how local paths and URLs differ).
  """
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if not is_local(path):
    buffer = io.BytesIO()
    yield buffer
    path.write_bytes(buffer.getvalue())
    return
  tmp = temp_file(path.parent, prefix=f'.{path.name}.')
  try:
    with open(tmp, 'wb') as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_atomic(path, data: bytes) -> None:
  """Writes `data` to `path` atomically."""
  with atomic_open(path) as f:
    f.write(data)


def write_json_atomic(path, value: Any, *, indent: int = 1,
                      sort_keys: bool = False) -> None:
  """Writes `value` as JSON (UTF-8, trailing newline) atomically."""
  write_atomic(path, (json.dumps(value, indent=indent, sort_keys=sort_keys) +
                      '\n').encode('utf-8'))

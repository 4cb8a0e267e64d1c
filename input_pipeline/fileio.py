"""Atomic file writes: a reader never sees a half-written file.

Every small output of the project (splits, manifests, statistics, label
factors, workdir JSON) goes through here. No TensorFlow, so light modules
(splits, targets, pipelines) can use it.
"""

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, BinaryIO, Iterator

# Suffix of the temporary files (stale ones are recognisable and removable).
TMP_SUFFIX = '.tmp'


@contextlib.contextmanager
def atomic_open(path) -> Iterator[BinaryIO]:
  """A binary file that replaces `path` only when the block ends cleanly.

  Writes go to a temporary file beside `path` (same filesystem), which is
  fsynced and renamed over `path`; on any exception it is removed and `path`
  is left as it was. Missing parent directories are created.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                             suffix=TMP_SUFFIX)
  try:
    with os.fdopen(fd, 'wb') as f:
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

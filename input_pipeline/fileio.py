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

URLs go through etils.epath's fsspec backend (gcsfs for gs://), never
TensorFlow's GCS filesystem, which epath would pick whenever TensorFlow is
installed: TensorFlow's client always calls www.googleapis.com and cannot be
pointed at another endpoint (a GCS emulator, a private endpoint), while gcsfs
honours STORAGE_EMULATOR_HOST (docs/scale.md, "One filesystem layer").
Large files (shards, media) are written to a local temporary file and
published with `publish`, and read through a local copy (`local_copy`) by
code that needs a real file (decoders, TFRecord writers).
"""

import contextlib
import contextvars
import datetime
import io
import json
import os
import shutil
import tempfile
from typing import Any, BinaryIO, Iterator, List, Tuple

# Read by epath at its first URL operation: set before any, at this import
# (the module docstring says why). A user's explicit setting wins.
os.environ.setdefault('EPATH_USE_TF', 'false')

# pylint: disable=g-import-not-at-top,wrong-import-position
from etils import epath  # noqa: E402
import fsspec  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

# gcsfs caches directory listings per process and never expires them; the
# workers of a job write into the directories the driver lists afterwards.
fsspec.config.conf.setdefault('gs', {}).setdefault('use_listings_cache',
                                                   False)

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
  """An empty hidden local file to write, then `publish` into `directory`.

  Named <prefix>XXXXXXXX.tmp (TMP_SUFFIX), unique, with mode FILE_MODE; in
  `directory` when it is local (the rename is then atomic), else in the
  system's temporary directory (the object store gets one upload).
  """
  local = os.fspath(directory) if is_local(directory) else None
  fd, name = tempfile.mkstemp(dir=local, prefix=prefix, suffix=TMP_SUFFIX)
  try:
    os.fchmod(fd, FILE_MODE)
  finally:
    os.close(fd)
  return name


def is_local(path) -> bool:
  """Whether `path` is on the local filesystem (not a gs://... URL)."""
  return '://' not in os.fspath(path)


# Folder URL -> the names of its files, inside listed_folders() only.
_LISTINGS = contextvars.ContextVar('listings', default=None)


@contextlib.contextmanager
def listed_folders() -> Iterator[None]:
  """Inside the block (or a function it decorates), `is_file` of a URL
  lists the URL's folder once and answers from that listing.

  An object store answers one request per file asked about, and a corpus
  folder holds 100k files; a listing is one request per 1000 names. Files
  added to a folder after its listing are not seen inside the block.
  """
  token = _LISTINGS.set({})
  try:
    yield
  finally:
    _LISTINGS.reset(token)


def _file_names(folder: str) -> frozenset:
  """The names of the files (not folders) directly in the URL `folder`."""
  fs, root = fsspec.core.url_to_fs(folder)
  try:
    entries = fs.ls(root, detail=True)
  except (OSError, ValueError):
    return frozenset()
  return frozenset(entry['name'].rstrip('/').rsplit('/', 1)[-1]
                   for entry in entries if entry.get('type') == 'file')


def is_file(path) -> bool:
  """Whether `path` (local or URL) is a file; False where it cannot be
  asked (an id of several KB makes a name too long to stat: no file)."""
  if is_local(path):
    return os.path.isfile(path)
  listings = _LISTINGS.get()
  if listings is not None:
    folder, _, name = os.fspath(path).rpartition('/')
    if folder not in listings:
      listings[folder] = _file_names(folder)
    return name in listings[folder]
  try:
    return epath.Path(path).is_file()
  except (OSError, ValueError):
    return False


def open_binary(path) -> BinaryIO:
  """`path` (local or URL) opened for reading bytes."""
  if is_local(path):
    return open(path, 'rb')
  return epath.Path(path).open('rb')


# Bytes fetched per request by open_sequential.
SEQUENTIAL_BLOCK = 16 << 20


def open_sequential(path) -> BinaryIO:
  """`path` opened for one pass from start to end in reads of any size.

  A URL is fetched SEQUENTIAL_BLOCK bytes a request, read ahead: gcsfs's
  default (adaptive) cache sends about one request per small read, which
  read TFRecord shards (a 12-byte header, a record, a 4-byte footer) from
  a GCS emulator at 12.7 MiB/s against 735 MiB/s this way
  (benchmarks/object_records.py, BENCHMARKS.md §8b).
  """
  if is_local(path):
    return open(path, 'rb')
  fs, name = fsspec.core.url_to_fs(os.fspath(path))
  return fs.open(name, 'rb', block_size=SEQUENTIAL_BLOCK,
                 cache_type='readahead')


def download(path, local) -> str:
  """Copies the object (or file) `path` to the local file `local`,
  replacing it, in one sequential pass (open_sequential); returns `local`."""
  with open_sequential(path) as src, open(local, 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
  return os.fspath(local)


def publish(tmp: str, path) -> None:
  """Moves the finished local file `tmp` (temp_file) to `path`.

  Local: os.replace, atomic. URL: one object write of its bytes, then `tmp`
  is removed; the object appears whole or not at all (a killed upload
  publishes nothing). The bytes are held in memory once (a shard: tens of
  MB).
  """
  if is_local(path):
    os.replace(tmp, path)
    return
  with open(tmp, 'rb') as f:
    epath.Path(path).write_bytes(f.read())
  os.remove(tmp)


def replace(src, dst) -> None:
  """Renames `src` to `dst`, replacing it; on an object store a copy and a
  delete (which is all an object store's rename is)."""
  if is_local(src) and is_local(dst):
    os.replace(src, dst)
    return
  epath.Path(src).copy(epath.Path(dst), overwrite=True)
  epath.Path(src).unlink()


@contextlib.contextmanager
def local_copy(path: Any) -> Iterator[Any]:
  """A local file holding the bytes of `path`, for code that needs one.

  A local path (or None, not a path, or a URL naming no object) is given
  back as it is, so that the reader reports a missing file in its own
  words. A URL's object is downloaded to a temporary file (same suffix:
  decoders look at it) that is removed when the block ends.
  """
  if (not isinstance(path, (str, os.PathLike)) or is_local(path) or
      not epath.Path(path).is_file()):
    yield path
    return
  suffix = epath.Path(path).suffix
  fd, name = tempfile.mkstemp(prefix='.local-copy-', suffix=suffix)
  os.close(fd)
  try:
    yield download(path, name)
  finally:
    os.remove(name)


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


# ------------------------------------------------ reading trees of objects

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def stat(path) -> Tuple[int, int]:
  """(size in bytes, modification time in ns) of a local file or object.

  An object's time is its `updated` time (GCS: microseconds), which a new
  upload of the object changes, as a local write changes mtime.

  Raises:
    OSError: no such file or object.
  """
  if is_local(path):
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns
  fs, name = fsspec.core.url_to_fs(os.fspath(path))
  try:
    info = fs.info(name)
  except ValueError as e:  # A name the store refuses.
    raise OSError(f'{path}: {e}') from e
  if info.get('type') != 'file':
    raise FileNotFoundError(f'{path} is not a file.')
  when = info.get('mtime') or info.get('updated')
  if isinstance(when, str):
    when = datetime.datetime.fromisoformat(when.replace('Z', '+00:00'))
  micros = (when - _EPOCH) // datetime.timedelta(microseconds=1)
  return int(info['size']), micros * 1000


def is_dir(path) -> bool:
  """Whether `path` (local or URL) is a folder (a URL prefix of objects)."""
  if is_local(path):
    return os.path.isdir(path)
  try:
    return epath.Path(path).is_dir()
  except (OSError, ValueError):
    return False


def files_under(folder) -> List[str]:
  """Every file under `folder` (recursive), sorted, as local paths or URLs.

  A URL folder is listed with one request per 1000 objects, not one per
  sub-folder.
  """
  if is_local(folder):
    found = (os.path.join(d, n)
             for d, _, names in os.walk(folder, followlinks=True)
             for n in names)
    return sorted(p for p in found if os.path.isfile(p))
  url = os.fspath(folder).rstrip('/')
  fs, root = fsspec.core.url_to_fs(url)
  scheme = url[:url.index('://') + 3]
  return sorted(scheme + name for name in fs.find(root))


def download_tree(folder, local_dir) -> str:
  """Copies every object under the URL `folder` into `local_dir` (made);
  returns `local_dir`. For code that reads a tree of files with local
  paths (a model's workdir)."""
  url = os.fspath(folder).rstrip('/')
  for source in files_under(url):
    target = os.path.join(local_dir, source[len(url) + 1:])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    download(source, target)
  return os.fspath(local_dir)


def upload_tree(local_dir, folder) -> int:
  """Copies every file under `local_dir` to the same names under the URL
  `folder`, one object write each; returns how many."""
  local_dir = os.fspath(local_dir)
  url = os.fspath(folder).rstrip('/')
  files = files_under(local_dir)
  for path in files:
    with open(path, 'rb') as f:
      write_atomic(f'{url}/{os.path.relpath(path, local_dir)}', f.read())
  return len(files)

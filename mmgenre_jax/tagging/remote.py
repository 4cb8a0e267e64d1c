"""Tagging with the model and the inputs in an object store (gs://...).

The model code and the decoders read local files: a model workdir (or
bundle) given as a URL is downloaded once per process into a temporary
folder (`local_model`), and a batch's input files given as URLs are
downloaded for the batch only (`tag_rows`). The rows still name the URLs:
their `input`, their `sources` (size and `updated` time of each object,
input_pipeline.fileio.stat) and the paths their errors and warnings quote.

  tagger = tagger_lib.Tagger.from_workdir(remote.local_model(url))
  rows = remote.tag_rows(
      lambda local: predict.predict_items(tagger, local, 5), items)
"""

import atexit
import contextlib
import dataclasses
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from input_pipeline import fileio
from mmgenre_jax.tagging import items as items_lib

# URL -> its local copy, for this process's lifetime (a Beam worker loads
# the model for every bundle: this keeps one download).
_DOWNLOADED: Dict[str, str] = {}


def _remove_downloads() -> None:
  for folder in _DOWNLOADED.values():
    shutil.rmtree(os.path.dirname(folder), ignore_errors=True)


atexit.register(_remove_downloads)


def local_model(path: Optional[str]) -> Optional[str]:
  """A local path holding `path`: itself if local (or None), else a copy
  of the object or of every object under the URL, made once per process
  and removed when it exits."""
  if path is None or fileio.is_local(path):
    return path
  url = os.fspath(path).rstrip('/')
  if url not in _DOWNLOADED:
    folder = tempfile.mkdtemp(prefix='.model-')
    local = os.path.join(folder, url.rsplit('/', 1)[-1])
    if fileio.is_file(url):
      fileio.download(url, local)
    elif fileio.is_dir(url):
      fileio.download_tree(url, local)
    else:
      os.rmdir(folder)
      return url  # Missing: the model code says so in its own words.
    _DOWNLOADED[url] = local
  return _DOWNLOADED[url]


@contextlib.contextmanager
def local_output(out: str) -> Iterator[str]:
  """A local folder to write the folder `out` into: `out` itself if local;
  for a URL, a temporary copy of what is there already (a previous head, a
  non-empty folder the writer refuses), uploaded back (every file) when
  the block ends without an exception, then removed. For writers of
  folders that use local paths (export, finetune)."""
  if fileio.is_local(out):
    yield out
    return
  with _temporary(out) as local:
    if fileio.is_dir(out):
      fileio.download_tree(out, local)
    yield local
    if os.path.isdir(local):
      fileio.upload_tree(local, out)


@contextlib.contextmanager
def _temporary(out: str) -> Iterator[str]:
  """A path named as the URL `out`'s last part in a new temporary folder,
  removed (with what is there) when the block ends."""
  folder = tempfile.mkdtemp(prefix='.output-')
  try:
    yield os.path.join(folder, os.fspath(out).rstrip('/').rsplit('/')[-1])
  finally:
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def local_file(out: Optional[str]) -> Iterator[Optional[str]]:
  """A local path to write the file `out` at: `out` itself if local (or
  None); for a URL, a temporary file holding the object if there is one
  (a resumable writer reads its rows: items.ResultWriter), uploaded in one
  object write when the block ends, even on an exception (the writer's
  file is resumable at any time), unless it is unchanged. A kill -9 loses
  what this run wrote."""
  if out is None or fileio.is_local(out):
    yield out
    return
  with _temporary(out) as local:
    if fileio.is_file(out):
      fileio.download(out, local)
    before = _signature(local)
    try:
      yield local
    finally:
      if _signature(local) not in (None, before):
        fileio.publish(local, out)


def _signature(path: str) -> Optional[tuple]:
  """(size, mtime_ns) of a file, None if missing: whether it changed."""
  try:
    found = os.stat(path)
  except FileNotFoundError:
    return None
  return found.st_size, found.st_mtime_ns


@contextlib.contextmanager
def local_inputs(items: Sequence[items_lib.Item]
                 ) -> Iterator[List[items_lib.Item]]:
  """The items, each URL file replaced by a local copy (removed when the
  block ends); the keys are unchanged."""
  with contextlib.ExitStack() as stack:

    def local(path):
      if path is None or fileio.is_local(path):
        return path
      return stack.enter_context(fileio.local_copy(path))

    yield [dataclasses.replace(item, audio=[local(p) for p in item.audio],
                               cover=local(item.cover),
                               reviews=local(item.reviews))
           for item in items]


def copy_names(items: Sequence[items_lib.Item],
               local: Sequence[items_lib.Item]) -> Dict[str, str]:
  """{local copy: URL} of `local_inputs(items)`'s items."""
  return {copy: url for item, copied in zip(items, local)
          for url, copy in zip(item.files(), copied.files()) if copy != url}


def renamed(value: Any, names: Dict[str, str]) -> Any:
  """`value` (a message or a list of them) naming URLs, not copies."""
  if isinstance(value, list):
    return [renamed(v, names) for v in value]
  if isinstance(value, str):
    for copy, url in names.items():
      value = value.replace(copy, url)
  return value


def tag_rows(tag: Callable[[List[items_lib.Item]], List[Dict[str, Any]]],
             items: Sequence[items_lib.Item]) -> List[Dict[str, Any]]:
  """`tag(items)`'s rows (predict_items, embed_rows), computed on local
  copies of the items' URL files and naming the URLs.

  Without URLs among the files this is `tag(items)`.
  """
  if all(fileio.is_local(p) for item in items for p in item.files()):
    return tag(list(items))
  # Stamped before reading, as predict_items does.
  stamps = [items_lib.sources(item) for item in items]
  with local_inputs(items) as local:
    rows = tag(local)
    names = copy_names(items, local)
  for row, found in zip(rows, stamps):
    row['sources'] = found
    for field in ('error', 'warnings', 'notes'):
      if field in row:
        row[field] = renamed(row[field], names)
  return rows

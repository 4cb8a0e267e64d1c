"""What the tagging commands read (files, folders, CSV manifests) and write.

Inputs, one `Item` per thing to tag (`collect_items`; the flags are defined
in mmgenre_jax/cli/flags.py):
  * `--audio FILE ...`: each file is one item (a track), unless `--album`,
    `--cover` or `--reviews` is given: then all of them are ONE album.
  * `--audio DIR`: every audio file under DIR (recursive, sorted) is an item.
  * `--manifest CSV` (or `--audio CATALOG.csv`): one album per row, columns
    `album_id, audio, cover, reviews`; `audio` holds paths separated by ';',
    `reviews` is a text file; relative paths are relative to the CSV's folder;
    empty cells are absent modalities.

Outputs of `predict` (`--out FILE`, `ResultWriter`) are resumable and
crash-safe: a run first keeps the rows already in --out that are still
valid, rewrites the file with them atomically (temporary file + rename), then
appends, flushes and fsyncs one row at a time; a run killed at any point
leaves the kept rows, whole new rows and at most one cut-short last row,
which the next run drops. A row is kept when its input is still among the
inputs and its files are unchanged: each row records the size and mtime_ns
of its files (`sources`); a row whose input is gone is dropped, one whose
files changed is redone. Rows from before `sources` existed are kept as
unchanged.
  * json: a JSON list, one object per line (`[`, rows separated by `,`, `]`).
  * csv: columns input, labels (`label:score` joined by `|`, best first),
    decisions (`|`-joined), model, duration_s, warnings (`|`-joined), error,
    sources (`size:mtime_ns` of each file, `|`-joined, `-` for a missing
    one, in Item.files order).
"""

import csv
import dataclasses
import io
import json
import os
import pathlib
import sys
from typing import (Any, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence, Set, Tuple)

from input_pipeline.formats import catalog as catalog_format
from input_pipeline.formats import release_format
from input_pipeline import fileio

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3')
MANIFEST_COLUMNS = catalog_format.COLUMNS[:4]
AUDIO_SEPARATOR = catalog_format.AUDIO_SEPARATOR
CSV_COLUMNS = ('input', 'labels', 'decisions', 'model', 'duration_s',
               'warnings', 'error', 'sources')
LIST_SEPARATOR = '|'
# A CSV `sources` entry for a file that did not exist.
MISSING = '-'
# (size, mtime_ns) of one input file; (None, None) when it is missing.
Stamp = Tuple[Optional[int], Optional[int]]
# Items tagged together (Tagger.predict_many / embed_many) by `mmgenre
# predict|embed`, on one machine and on each Beam worker: enough short
# tracks (1-3 windows each) to fill the networks' padded batches of
# runners.APPLY_BATCH = 32 windows.
BATCH_ITEMS = 16
# Processes decoding audio ahead of the device (tagging/decoding.py): one
# per core this process may use, at most 4; with 1 core, none (decoding in
# the process itself is faster there: BENCHMARKS.md §11c).
DECODE_WORKERS = min(4, len(os.sched_getaffinity(0)))


@dataclasses.dataclass
class Item:
  """One thing to tag: a track, or an album with any of its modalities."""
  key: str
  audio: List[str] = dataclasses.field(default_factory=list)
  cover: Optional[str] = None
  reviews: Optional[str] = None  # A path to a text file.

  def files(self) -> List[str]:
    """The item's files: tracks, cover, review text (in that order)."""
    return self.audio + [p for p in (self.cover, self.reviews) if p]

  def read_reviews(self) -> Optional[str]:
    if self.reviews is None:
      return None
    try:
      # Read as prepare reads a catalog's review files: a BOM is fine, a
      # byte that is not UTF-8 is named with its line (a ValueError).
      return release_format.read_text(self.reviews)
    except OSError as e:
      raise ValueError(f'{self.reviews}: cannot read the reviews as UTF-8 '
                       f'text ({e}).') from e


def tagger_inputs(items: Sequence[Item]) -> List[Any]:
  """Each item's entry of Tagger.predict_many / embed_many: {'audio',
  'cover', 'reviews' (the text)}, or the ValueError of a review file that
  cannot be read (that item's error)."""
  found: List[Any] = []
  for item in items:
    try:
      found.append({'audio': item.audio or None, 'cover': item.cover,
                    'reviews': item.read_reviews()})
    except ValueError as e:
      found.append(e)
  return found


def batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
  """Consecutive runs of `size` items (the last one shorter): what `mmgenre
  predict|embed` tag together (BATCH_ITEMS)."""
  if size < 1:
    raise ValueError(f'batch_items={size}; tag 1 or more items together.')
  for start in range(0, len(items), size):
    yield items[start:start + size]


def sources(item: Item) -> List[Dict[str, Any]]:
  """[{'path', 'size', 'mtime_ns'}] of the item's files, what a resumed run
  compares (size and mtime_ns None for a missing file)."""
  found = []
  for path in item.files():
    try:
      size, mtime = fileio.stat(path)  # A local file or an object.
    except OSError:
      size = mtime = None
    found.append({'path': path, 'size': size, 'mtime_ns': mtime})
  return found


def audio_files(directory) -> List[str]:
  """Audio files under `directory` (a folder or a URL prefix, recursive),
  sorted."""
  return [p for p in fileio.files_under(directory)
          if os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS]


def read_manifest(path) -> List[Item]:
  """Albums of a catalog CSV (input_pipeline.formats.catalog: the format
  training reads too; its labels, artist_id and split columns are not needed here).

  Raises:
    ValueError: naming the file, line and column of the first bad row.
  """
  rows, _, _ = catalog_format.read_rows(path)
  return [Item(row.album_id, list(row.audio), row.cover, row.reviews)
          for row in rows]


def collect_items(*, audio: Sequence[str] = (), cover: Optional[str] = None,
                  reviews: Optional[str] = None,
                  manifest: Optional[str] = None, album: bool = False,
                  album_id: Optional[str] = None) -> List[Item]:
  """Items of the tagging commands' inputs (module docstring).

  Args:
    audio: audio files, folders of them and catalog CSVs (--audio).
    cover: an image file; makes the audio files one album.
    reviews: a text file; makes the audio files one album.
    manifest: a catalog CSV (--manifest).
    album: the audio files are the tracks of one album.
    album_id: that album's key; default the inputs joined by ';'.

  Raises:
    ValueError: nothing to tag, or a bad catalog CSV.
  """
  audio = list(audio or [])
  manifests = [a for a in audio if a.lower().endswith('.csv')]
  audio = [a for a in audio if a not in manifests]
  if manifest:
    manifests.append(manifest)
  items: List[Item] = []
  for path in manifests:
    items.extend(read_manifest(path))
  files: List[str] = []
  for entry in audio:
    files.extend(audio_files(entry) if fileio.is_dir(entry) else [entry])
  if album or cover or reviews:
    parts = files + [p for p in (cover, reviews) if p]
    key = album_id or AUDIO_SEPARATOR.join(parts)
    items.append(Item(key, files, cover, reviews))
  else:
    items.extend(Item(f, [f]) for f in files)
  if not items:
    raise ValueError('Nothing to tag: give --audio FILE_OR_DIR, --cover, '
                     '--reviews or --manifest CSV.')
  return items


# ------------------------------------------------------------------ output


def _one_line(text: str) -> str:
  """Newlines would make a CSV row span lines: a cut-short row could then
  look whole to the recovery."""
  return ' '.join(str(text).splitlines())


def _sources_cell(found: List[Dict[str, Any]]) -> str:
  return LIST_SEPARATOR.join(
      MISSING if s['size'] is None else f'{s["size"]}:{s["mtime_ns"]}'
      for s in found)


def row_stamps(row: Dict[str, Any]) -> Optional[List[Stamp]]:
  """The (size, mtime_ns) recorded in an output row, in file order; None for
  a row written before `sources` existed (or an unreadable cell)."""
  value = row.get('sources')
  if isinstance(value, list):
    return [(s.get('size'), s.get('mtime_ns')) for s in value]
  if not value:
    return None
  stamps: List[Stamp] = []
  for entry in str(value).split(LIST_SEPARATOR):
    if entry == MISSING:
      stamps.append((None, None))
      continue
    size, _, mtime = entry.partition(':')
    if not (size.isdigit() and mtime.isdigit()):
      return None
    stamps.append((int(size), int(mtime)))
  return stamps


def csv_row(row: Dict[str, Any]) -> Dict[str, str]:
  duration = row.get('duration_s')
  return {
      'input': row['input'],
      'labels': LIST_SEPARATOR.join(f'{x["label"]}:{x["score"]:.6f}'
                                    for x in row['labels']),
      'decisions': ('' if row['decisions'] is None
                    else LIST_SEPARATOR.join(row['decisions'])),
      'model': row.get('model') or '',
      'duration_s': '' if duration is None else f'{duration:.4f}',
      'warnings': LIST_SEPARATOR.join(_one_line(w)
                                      for w in row.get('warnings') or []),
      'error': _one_line(row['error'] or ''),
      'sources': _sources_cell(row.get('sources') or []),
  }


def read_json_rows(text: str) -> Tuple[List[Dict[str, Any]], int]:
  """(rows, unreadable lines) of a JSON list written by ResultWriter, whole
  or cut short by an interrupted run, or of JSON lines (one object a line,
  beam_tagging's shards)."""
  try:
    rows = json.loads(text)
    if isinstance(rows, list):
      return [r for r in rows if isinstance(r, dict) and 'input' in r], 0
  except ValueError:
    pass
  rows, broken = [], 0
  for line in text.splitlines():
    line = line.strip().rstrip(',')
    if line in ('', '[', ']'):
      continue
    try:
      row = json.loads(line)
    except ValueError:
      broken += 1  # The row an interrupted run was writing.
      continue
    if isinstance(row, dict) and 'input' in row:
      rows.append(row)
  return rows, broken


def _read_csv_rows(text: str) -> Tuple[List[Dict[str, str]], int]:
  """(rows, unreadable rows) of a CSV written by ResultWriter; a last line
  without its newline, or a row of the wrong width, was cut short."""
  lines = text.splitlines(keepends=True)
  broken = 0
  if lines and not lines[-1].endswith('\n'):
    lines, broken = lines[:-1], 1
  records = list(csv.reader(lines))
  if not records or 'input' not in records[0]:
    return [], broken
  header = records[0]
  rows = [dict(zip(header, r)) for r in records[1:] if len(r) == len(header)]
  return rows, broken + len(records) - 1 - len(rows)


@dataclasses.dataclass
class Resumed:
  """What a run found in its --out file (ResultWriter.start)."""
  kept: int = 0  # Rows kept: their items are not tagged again.
  gone: int = 0  # Rows dropped: their input is no longer given.
  changed: int = 0  # Rows dropped and redone: their files changed.
  broken: int = 0  # Unreadable rows dropped (an interrupted write).
  duplicates: int = 0  # Rows dropped: another row has the same input.
  failed: int = 0  # Of the rows kept, those with an `error` (not retried).

  def message(self, path) -> str:
    parts = [f'{self.kept} row{"" if self.kept == 1 else "s"} kept']
    for count, what in ((self.gone, 'dropped (input gone)'),
                        (self.changed, 'redone (input changed)'),
                        (self.broken, 'dropped (cut short)'),
                        (self.duplicates, 'dropped (duplicate input)')):
      if count:
        parts.append(f'{count} {what}')
    return f'Resuming {path}: {", ".join(parts)}.'


def keep_rows(previous: Sequence[Dict[str, Any]],
              items: Optional[Sequence[Item]], broken: int = 0
              ) -> Tuple[List[Dict[str, Any]], List[Item], Resumed]:
  """Which rows of an earlier run stay valid, and what is left to tag.

  Args:
    previous: the rows found, oldest first (of an input given twice, the
      last row wins).
    items: this run's inputs; None keeps every row.
    broken: unreadable rows found (reported in the Resumed).

  Returns:
    (rows kept, items to tag: those without a kept row, each key once,
    Resumed: what was found).
  """
  resumed = Resumed(broken=broken)
  last = {str(r['input']): i for i, r in enumerate(previous)}
  current = None if items is None else {i.key: i for i in items}
  kept, done = [], set()
  for i, row in enumerate(previous):
    key = str(row['input'])
    if last[key] != i:
      resumed.duplicates += 1  # The latest row of an input wins.
    elif current is not None and key not in current:
      resumed.gone += 1
    elif current is not None and row_stamps(row) not in (
        None, [(s['size'], s['mtime_ns'])
               for s in sources(current[key])]):
      resumed.changed += 1
    else:
      kept.append(row)
      done.add(key)
  resumed.kept = len(kept)
  resumed.failed = sum(bool(row.get('error')) for row in kept)
  todo, seen = [], set(done)
  for item in items or []:
    if item.key not in seen:  # An input given twice is tagged once.
      seen.add(item.key)
      todo.append(item)
  return kept, todo, resumed


class Tally(NamedTuple):
  """How the inputs of a predict or embed run ended (predict.run,
  beam_tagging.run): what its exit status says (cli/flags.exit_status)."""
  tagged: int  # Inputs tagged by this run.
  failed: int  # Of them, those whose row has an `error`.
  kept: int = 0  # Rows of an earlier run kept: inputs not tagged again.
  kept_failed: int = 0  # Of them, those with an `error`.

  @property
  def inputs(self) -> int:
    """Inputs with a row: tagged now or kept."""
    return self.tagged + self.kept

  @property
  def inputs_failed(self) -> int:
    """Of them, rows with an `error`."""
    return self.failed + self.kept_failed


class ResultWriter:
  """Writes result rows to --out resumably and crash-safely (module
  docstring), or to stdout at the end.

    writer = ResultWriter('tags.json', 'json')
    for item in writer.start(items):   # the items not validly in the file
      writer.write(row)                # appended, flushed, fsynced
    writer.close()

  Attributes:
    path: the --out file, None for stdout.
    name: how messages name it (a URL whose local copy `path` is).
    resumed: what `start` found in the file (None: nothing there).
  """

  def __init__(self, out: Optional[str], fmt: str,
               name: Optional[str] = None):
    if fmt not in ('json', 'csv'):
      raise ValueError(f'--format {fmt!r}: use json or csv.')
    self.fmt = fmt
    self.path = pathlib.Path(out) if out else None
    self.name = name or out
    self.resumed: Optional[Resumed] = None
    self._previous: List[Dict[str, Any]] = []
    self._broken = 0
    self._rows: List[Any] = []
    self._file = None
    self._started = False
    self._count = 0
    if self.path is not None and self.path.is_file():
      # A kill can cut a character in two: only in the cut-short last row,
      # which is dropped anyway.
      text = self.path.read_bytes().decode('utf-8', errors='replace')
      self._previous, self._broken = (
          read_json_rows(text) if fmt == 'json' else _read_csv_rows(text))

  @property
  def done(self) -> Set[str]:
    """Inputs of the rows already in the file."""
    return {str(r['input']) for r in self._previous}

  def _keep(self, items: Optional[Sequence[Item]]):
    """(rows kept, items to tag, Resumed); items None keeps every row."""
    return keep_rows(self._previous, items, self._broken)

  def start(self, items: Optional[Sequence[Item]] = None) -> List[Item]:
    """Keeps the valid rows of --out, rewrites it with them atomically and
    opens it for appending.

    Args:
      items: this run's inputs; None keeps every row already there.

    Returns:
      The items to tag: those without a kept row, each key once.
    """
    kept, todo, resumed = self._keep(items)
    self._started = True
    if self.path is None:
      return todo
    if self._previous or resumed.broken:
      self.resumed = resumed
    text = io.StringIO(newline='')
    if self.fmt == 'json':
      text.write('[')
      text.write(''.join(('\n' if i == 0 else ',\n') +
                         json.dumps(row, ensure_ascii=False)
                         for i, row in enumerate(kept)))
    else:
      writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
      writer.writeheader()
      for row in kept:
        writer.writerow({k: row.get(k) or '' for k in CSV_COLUMNS})
    fileio.write_atomic(self.path, text.getvalue().encode('utf-8'))
    self._count = len(kept)
    self._file = open(self.path, 'a', newline='', encoding='utf-8')
    if self.fmt == 'csv':
      self._csv = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS)
    return todo

  def write(self, row: Dict[str, Any]) -> None:
    if not self._started:
      self.start()
    if self._file is None:
      self._rows.append(row)
      return
    if self.fmt == 'json':
      # One write of the whole line: a kill leaves it whole or cut short.
      self._file.write((',\n' if self._count else '\n') +
                       json.dumps(row, ensure_ascii=False))
      self._count += 1
    else:
      self._csv.writerow(csv_row(row))
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self, stream=None) -> None:
    if not self._started:
      self.start()
    if self._file is not None:
      if self.fmt == 'json':
        self._file.write('\n]\n')
      self._file.flush()
      os.fsync(self._file.fileno())
      self._file.close()
      self._file = None
      return
    if self.path is not None:
      return  # Already closed.
    stream = stream or sys.stdout
    if self.fmt == 'json':
      json.dump(self._rows, stream, indent=2, ensure_ascii=False)
      stream.write('\n')
    else:
      writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
      writer.writeheader()
      for row in self._rows:
        writer.writerow(csv_row(row))

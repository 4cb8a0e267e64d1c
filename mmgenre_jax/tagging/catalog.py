"""What the tagging commands read (files, folders, CSV manifests) and write.

Inputs, one `Item` per thing to tag (`collect_items`; the flags are defined
in mmgenre_jax/cli/tagging_args.py):
  * `--audio FILE ...`: each file is one item (a track), unless `--album`,
    `--cover` or `--reviews` is given: then all of them are ONE album.
  * `--audio DIR`: every audio file under DIR (recursive, sorted) is an item.
  * `--manifest CSV` (or `--audio CATALOG.csv`): one album per row, columns
    `album_id, audio, cover, reviews`; `audio` holds paths separated by ';',
    `reviews` is a text file; relative paths are relative to the CSV's folder;
    empty cells are absent modalities.

Outputs of `predict` (`--out FILE`) are resumable: rows are appended and
flushed one item at a time, and a new run with the same --out first reads the
rows already there and skips their inputs.
  * json: a JSON list, one object per line (`[`, rows separated by `,`, `]`);
    a file cut short by an interrupted run is repaired on resume.
  * csv: columns input, labels (`label:score` joined by `|`, best first),
    decisions (`|`-joined), model, error.
"""

import csv
import dataclasses
import io
import json
import os
import pathlib
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3')
MANIFEST_COLUMNS = ('album_id', 'audio', 'cover', 'reviews')
AUDIO_SEPARATOR = ';'
CSV_COLUMNS = ('input', 'labels', 'decisions', 'model', 'error')
LIST_SEPARATOR = '|'


@dataclasses.dataclass
class Item:
  """One thing to tag: a track, or an album with any of its modalities."""
  key: str
  audio: List[str] = dataclasses.field(default_factory=list)
  cover: Optional[str] = None
  reviews: Optional[str] = None  # A path to a text file.

  def read_reviews(self) -> Optional[str]:
    if self.reviews is None:
      return None
    try:
      return pathlib.Path(self.reviews).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as e:
      raise ValueError(f'{self.reviews}: cannot read the reviews as UTF-8 '
                       f'text ({e}).') from e


def audio_files(directory) -> List[str]:
  """Audio files under `directory` (recursive), sorted."""
  return sorted(os.fspath(p) for p in pathlib.Path(directory).rglob('*')
                if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def read_manifest(path) -> List[Item]:
  """Albums of a catalog CSV (columns MANIFEST_COLUMNS)."""
  path = pathlib.Path(path)
  base = path.parent

  def resolve(value: str) -> Optional[str]:
    value = (value or '').strip()
    if not value:
      return None
    p = pathlib.Path(value)
    return os.fspath(p if p.is_absolute() else base / p)

  try:
    with open(path, newline='', encoding='utf-8') as f:
      reader = csv.DictReader(f)
      missing = [c for c in ('album_id',) if c not in (reader.fieldnames or [])]
      if missing or not set(reader.fieldnames or []) & {'audio', 'cover',
                                                       'reviews'}:
        raise ValueError(
            f'{path}: a catalog manifest needs the header '
            f'{",".join(MANIFEST_COLUMNS)} (album_id and at least one of '
            f'audio, cover, reviews); found {reader.fieldnames}.')
      items, seen = [], set()
      for number, row in enumerate(reader, start=2):
        key = (row.get('album_id') or '').strip()
        if not key:
          raise ValueError(f'{path}: line {number} has no album_id.')
        if key in seen:
          raise ValueError(f'{path}: line {number} repeats album_id {key!r}.')
        seen.add(key)
        audio = [resolve(a) for a in (row.get('audio') or '').split(
            AUDIO_SEPARATOR)]
        items.append(Item(key, [a for a in audio if a],
                          resolve(row.get('cover')),
                          resolve(row.get('reviews'))))
  except OSError as e:
    raise ValueError(f'{path}: cannot read the catalog manifest ({e}).') from e
  return items


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
    files.extend(audio_files(entry) if os.path.isdir(entry) else [entry])
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


def csv_row(row: Dict[str, Any]) -> Dict[str, str]:
  return {
      'input': row['input'],
      'labels': LIST_SEPARATOR.join(f'{x["label"]}:{x["score"]:.6f}'
                                    for x in row['labels']),
      'decisions': ('' if row['decisions'] is None
                    else LIST_SEPARATOR.join(row['decisions'])),
      'model': row.get('model') or '',
      'error': row['error'] or '',
  }


def _read_json_rows(path: pathlib.Path) -> List[Dict[str, Any]]:
  """Rows of a (possibly unfinished) JSON list written by ResultWriter."""
  text = path.read_text(encoding='utf-8')
  try:
    rows = json.loads(text)
    if isinstance(rows, list):
      return rows
  except ValueError:
    pass
  rows = []
  for line in text.splitlines():
    line = line.strip().rstrip(',')
    if line in ('', '[', ']'):
      continue
    try:
      row = json.loads(line)
    except ValueError:
      break  # The line an interrupted run was writing.
    if isinstance(row, dict) and 'input' in row:
      rows.append(row)
  return rows


def _read_csv_rows(path: pathlib.Path) -> List[Dict[str, str]]:
  with open(path, newline='', encoding='utf-8') as f:
    content = f.read()
  if not content.endswith('\n'):
    content = content[:content.rfind('\n') + 1]  # Drop a half-written row.
  reader = csv.DictReader(io.StringIO(content))
  return [r for r in reader if r.get('error') is not None]


class ResultWriter:
  """Appends result rows to --out (or stdout at the end), resumably."""

  def __init__(self, out: Optional[str], fmt: str):
    if fmt not in ('json', 'csv'):
      raise ValueError(f'--format {fmt!r}: use json or csv.')
    self.fmt = fmt
    self.path = pathlib.Path(out) if out else None
    self.done: Set[str] = set()
    self._rows: List[Any] = []
    self._file = None
    self._count = 0
    if self.path is None:
      return
    previous: List[Any] = []
    if self.path.is_file() and self.path.stat().st_size:
      previous = (_read_json_rows(self.path) if fmt == 'json'
                  else _read_csv_rows(self.path))
    self.done = {str(r['input']) for r in previous}
    self.path.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite what was kept (repairing a cut-short file), then append.
    self._file = open(self.path, 'w', newline='', encoding='utf-8')
    if fmt == 'json':
      self._file.write('[')
      for row in previous:
        self._write_json(row)
    else:
      self._csv = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS)
      self._csv.writeheader()
      for row in previous:
        self._csv.writerow({k: row.get(k, '') for k in CSV_COLUMNS})
    self._file.flush()

  def _write_json(self, row) -> None:
    self._file.write((',\n' if self._count else '\n') +
                     json.dumps(row, ensure_ascii=False))
    self._count += 1

  def write(self, row: Dict[str, Any]) -> None:
    if self._file is None:
      self._rows.append(row)
      return
    if self.fmt == 'json':
      self._write_json(row)
    else:
      self._csv.writerow(csv_row(row))
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self, stream=None) -> None:
    if self._file is not None:
      if self.fmt == 'json':
        self._file.write('\n]\n')
      self._file.close()
      self._file = None
      return
    stream = stream or sys.stdout
    if self.fmt == 'json':
      json.dump(self._rows, stream, indent=2, ensure_ascii=False)
      stream.write('\n')
    else:
      writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
      writer.writeheader()
      for row in self._rows:
        writer.writerow(csv_row(row))


def pending(items: Sequence[Item], done: Set[str]) -> Iterator[Item]:
  return (item for item in items if item.key not in done)

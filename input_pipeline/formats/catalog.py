"""The generic catalog format: one CSV for tagging and for training.

A catalog is a CSV file (docs/data_formats.md §1.3), one album per row:

  album_id   required; unique
  audio      track files separated by ';'
  cover      an image file
  reviews    a UTF-8 text file: the album's review text
  artist_id  the album's artist(s), ';'-separated; albums of one artist stay
             in one split (artist filtering, paper Sec 6.1, 7.3)
  labels     the album's labels, '|'-separated (training only)
  split      train, val or test (optional: without the column, prepare
             computes an artist-filtered 80/10/10 split with its seed)

Every column but album_id is optional, and at least one of audio, cover,
reviews must be there; an empty cell is an absent modality of that album.
Paths are relative to the CSV's folder (absolute ones are kept). An
optional `taxonomy.tsv` beside it (`label<TAB>parent`, the MuMu taxonomy's
format) expands every label to its ancestors, as for MuMu.

  rows, columns, read = catalog.read_rows('my/catalog.csv')  # strict
  found = catalog.load_catalog('my/catalog.csv', on_bad_row=report)
  found.dataset.albums['a1'].labels, found.track_paths['a1/1']

`mmgenre prepare --dataset catalog --manifest FILE` reads it through
prepare_catalog.load_catalog_corpus; `mmgenre predict/embed --manifest FILE`
through mmgenre_jax.tagging.items. No TensorFlow or JAX here.
"""

import csv
import dataclasses
import io
import os
from typing import Dict, List, Optional, Tuple

from etils import epath

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format

COLUMNS = ('album_id', 'audio', 'cover', 'reviews', 'artist_id', 'labels',
           'split')
MEDIA_COLUMNS = ('audio', 'cover', 'reviews')
# Which record modality each media column feeds.
COLUMN_MODALITY = {'audio': 'audio', 'cover': 'image', 'reviews': 'text'}
AUDIO_SEPARATOR = ';'
ARTIST_SEPARATOR = ';'
LABEL_SEPARATOR = '|'
SPLIT_NAMES = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class Row:
  """One album row, paths resolved against the CSV's folder.

  Attributes:
    line: its line in the file.
    album_id: the album.
    audio: track files, in row order.
    cover, reviews: files, or None when the cell is empty.
    artist_ids: the artist ids given (may be empty).
    labels: the labels given, in row order.
    split: 'train', 'val', 'test' or None (no split column or empty cell).
  """
  line: int
  album_id: str
  audio: Tuple[str, ...] = ()
  cover: Optional[str] = None
  reviews: Optional[str] = None
  artist_ids: Tuple[str, ...] = ()
  labels: Tuple[str, ...] = ()
  split: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Catalog:
  """A catalog read for training.

  Attributes:
    path: the CSV.
    dataset: its albums with their kept labels, as a MuMu release reads
      (mumu.MuMuDataset: artist-filtered splits and label matrices work the
      same); track ids are `<album_id>/<n>` (n = 1, 2, ... in row order).
    rows: album id -> its Row (the albums of dataset and those dropped).
    columns: the columns the header has.
    track_paths: track id -> its audio file.
  """
  path: epath.Path
  dataset: mumu.MuMuDataset
  rows: Dict[str, Row]
  columns: Tuple[str, ...]
  track_paths: Dict[str, str]

  @property
  def modalities(self) -> Tuple[str, ...]:
    """The record modalities the catalog has a column for."""
    return tuple(COLUMN_MODALITY[c] for c in MEDIA_COLUMNS
                 if c in self.columns)

  def release_splits(self) -> Dict[str, List[str]]:
    """split name -> album ids, from the `split` column (albums without a
    value in it are in none)."""
    splits = {name: [] for name in SPLIT_NAMES}
    for album_id in self.dataset.albums:
      split = self.rows[album_id].split
      if split is not None:
        splits[split].append(album_id)
    return splits


def track_id(album_id: str, number: int) -> str:
  """The id of an album's number-th track (from 1)."""
  return f'{album_id}/{number}'


def taxonomy_path(catalog_path) -> Optional[epath.Path]:
  """The taxonomy.tsv beside a catalog CSV, or None."""
  path = epath.Path(catalog_path).parent / layout.CATALOG_TAXONOMY_TSV
  return path if path.is_file() else None


def header(path) -> Tuple[str, ...]:
  """The column names of a catalog CSV's header (() when unreadable)."""
  try:
    # Read as read_rows reads it: a bad byte further down must not hide the
    # `split` column (prepare would then compute a split instead of yours).
    with release_format.open_text(path) as f:
      return tuple(name.strip() for name in next(csv.reader(f), []))
  except (OSError, csv.Error):
    return ()


def _split_cell(value: str, separator: str) -> Tuple[str, ...]:
  return tuple(v.strip() for v in value.split(separator) if v.strip())


def _row(values: Dict[str, str], line: int, base: epath.Path) -> Row:
  """A Row from a row's values; RowError when a value is bad."""

  def resolve(value: str) -> str:
    if os.path.isabs(value) or not fileio.is_local(value):
      return value
    return os.fspath(base / value)

  split = values.get('split') or None
  if split is not None:
    split = split.lower()
    if split not in SPLIT_NAMES:
      raise release_format.RowError(
          f'split {values["split"]!r}: use one of {", ".join(SPLIT_NAMES)} '
          '(or leave it empty)', 'split')
  return Row(line, values['album_id'],
             tuple(map(resolve, _split_cell(values.get('audio', ''),
                                            AUDIO_SEPARATOR))),
             resolve(values['cover']) if values.get('cover') else None,
             resolve(values['reviews']) if values.get('reviews') else None,
             _split_cell(values.get('artist_id', ''), ARTIST_SEPARATOR),
             _split_cell(values.get('labels', ''), LABEL_SEPARATOR), split)


def read_rows(path, on_bad_row: Optional[release_format.OnBadRow] = None,
              *, require=('album_id',)) -> Tuple[List[Row], Tuple[str, ...],
                                                 int]:
  """The album rows of a catalog CSV.

  Args:
    path: the CSV.
    on_bad_row: None: a malformed row (wrong field count, not UTF-8, a NUL,
      broken quoting, a last line cut short, empty album_id or other
      required value, a bad split, a repeated album_id) raises a
      release_format.DataFormatError naming the file, line and column;
      otherwise it is reported as on_bad_row(album_id, line, reason) and
      left out.
    require: columns that must be in the header and filled in every row.

  Returns:
    (rows, the header's known columns, data rows read).
  """
  path = epath.Path(path)
  rows, first_line, read = [], {}, 0
  try:
    with release_format.open_text(path) as f:
      table = release_format.Table(f, path)
      columns = table.header(
          require, optional=[c for c in COLUMNS if c not in require])
      if not set(columns) & set(MEDIA_COLUMNS):
        raise release_format.format_error(
            path, 1, f'no media column: a catalog needs at least one of '
            f'{", ".join(MEDIA_COLUMNS)} (header: {",".join(COLUMNS)}).')
      width = None
      for line, row, problem in table:
        read += 1
        at = columns['album_id']
        album_id = row[at].strip() if len(row) > at else ''
        try:
          if problem is not None:
            raise problem
          width = width or max(max(columns.values()) + 1, len(row))
          values = release_format.row_values(row, columns, width, require)
          if values['album_id'] in first_line:
            raise release_format.RowError(
                f'repeats album_id {values["album_id"]!r} of line '
                f'{first_line[values["album_id"]]}; give each album one row',
                'album_id')
          parsed = _row(values, line, path.parent)
        except release_format.RowError as e:
          release_format.report_row(on_bad_row, path, line, album_id, e)
          continue
        first_line[parsed.album_id] = line
        rows.append(parsed)
  except OSError as e:
    raise release_format.format_error(
        path, None, f'cannot read the catalog ({e}).') from e
  known = tuple(c for c in COLUMNS if c in columns)
  return rows, known, read


def load_catalog(path, *, min_albums: int = 1,
                 on_bad_row: Optional[release_format.OnBadRow] = None
                 ) -> Catalog:
  """Reads a catalog CSV for training (labels required).

  Labels expand to their ancestors with the taxonomy.tsv beside the file,
  then are kept when on >= min_albums albums (the vocabulary: sorted by
  name). An album with no artist_id is its own artist (named
  `album:<album_id>`), so that it still goes to one split.

  Raises:
    release_format.DataFormatError: the header lacks album_id, labels or
      every media column; no album keeps a label.
  """
  path = epath.Path(path)
  rows, columns, read = read_rows(path, on_bad_row,
                                  require=('album_id', 'labels'))
  raw = mumu.RawCsv({}, rows=read, skipped_rows=read - len(rows))
  track_paths = {}
  for row in rows:
    album = raw.albums[row.album_id] = mumu.RawAlbum('', row.line)
    album.artists.update(row.artist_ids or (f'album:{row.album_id}',))
    for number, audio_path in enumerate(row.audio, start=1):
      track = track_id(row.album_id, number)
      album.tracks.append(track)
      track_paths[track] = audio_path
    album.labels.update(dict.fromkeys(row.labels))
  if not raw.albums:
    raise release_format.format_error(path, None,
                                      'no usable data rows after the header.')
  taxonomy_file = taxonomy_path(path)
  dataset = mumu.dataset_from_raw(
      raw, path, min_albums=min_albums,
      taxonomy=mumu.read_taxonomy(taxonomy_file) if taxonomy_file else {})
  return Catalog(path, dataset, {row.album_id: row for row in rows}, columns,
                 track_paths)


def _csv_text(rows) -> bytes:
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator='\n')
  writer.writerows(rows)
  return buffer.getvalue().encode('utf-8')


def write_from_mumu(data_dir) -> epath.Path:
  """Writes a MuMu corpus directory's albums as a catalog beside them.

  DATA/catalog.csv (album_id, audio, cover, reviews, artist_id, labels; no
  split column: prepare computes the artist-filtered split), one review
  text file per album in DATA/reviews/ (its reviews.jsonl texts, blank-line
  separated) and DATA/taxonomy.tsv (a copy of genre_taxonomy.tsv). Paths
  are relative, so the folder can move. Rows the MuMu reader leaves out
  are left out here; every file is written atomically, catalog.csv last.
  `mmgenre synth --format catalog` calls it on the embedded corpus.

  Returns:
    The catalog CSV.
  """
  # Here: features.text loads scikit-learn, which the readers do not need.
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import text as text_lib
  data_dir = epath.Path(data_dir)
  csv_path = next(data_dir / name for name in layout.MUMU_CSVS
                  if (data_dir / name).is_file())
  dataset = mumu.load_mumu(csv_path, on_bad_row=lambda *_: None)
  reviews = text_lib.read_reviews(data_dir / layout.REVIEWS_JSONL,
                                  album_ids=dataset.albums,
                                  on_bad_line=lambda *_: None).texts
  taxonomy = data_dir / layout.MUMU_TAXONOMY_TSV
  if taxonomy.is_file():
    fileio.write_atomic(data_dir / layout.CATALOG_TAXONOMY_TSV,
                        taxonomy.read_bytes())
  audio, covers = (_files_by_stem(data_dir, folder)
                   for folder in (layout.AUDIO_DIR, layout.COVERS_DIR))
  rows = [COLUMNS[:-1]]
  for album_id, album in dataset.albums.items():
    tracks = [audio.get(track, '') for track in album.track_ids]
    text = ''
    if reviews.get(album_id):
      text = os.path.join(layout.CATALOG_REVIEWS_DIR, f'{album_id}.txt')
      fileio.write_atomic(data_dir / text,
                          '\n\n'.join(reviews[album_id]).encode('utf-8'))
    rows.append((album_id, AUDIO_SEPARATOR.join(filter(None, tracks)),
                 covers.get(album_id, ''),
                 text, ARTIST_SEPARATOR.join(album.artist_ids),
                 LABEL_SEPARATOR.join(album.labels)))
  out = data_dir / layout.CATALOG_CSV
  fileio.write_atomic(out, _csv_text(rows))
  return out


def _files_by_stem(data_dir: epath.Path, folder: str) -> Dict[str, str]:
  """stem -> 'folder/name' of the files in data_dir/folder (first by name)."""
  found = {}
  if (data_dir / folder).is_dir():
    for path in sorted((data_dir / folder).iterdir()):
      found.setdefault(path.stem, f'{folder}/{path.name}')
  return found

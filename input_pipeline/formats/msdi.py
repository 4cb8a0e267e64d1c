"""Reader of the MSD-I release file (Oramas et al. 2018, Sec. 6.1).

MSD-I is the track-level, single-label part of the paper: 30,713 MSD tracks,
16,753 albums, 15 genres, one album cover each. The release file
`MSD-I_dataset.tsv` has the header

  msd_track_id  genre  album_index  set  msd_artist_id  image_url

with `set` in {train, val, test}: the authors' split, the one `mmgenre
prepare` uses by default (`release_splits`). For a local corpus `image_url` is
a path relative to the corpus directory (docs/data_formats.md).

  dataset = msdi.load_msdi('MSD-I_dataset.tsv')
  y = dataset.label_vector(list(dataset.tracks))   # [n] int32 genre indices
  dataset.release_splits()   # {'train': [track ids], 'val': ..., 'test': ...}

An unknown genre, a malformed row (wrong field count, bytes that are not
UTF-8, a NUL, a last line cut short, an empty id, genre or set, an unknown
set) or a second row of a track
rejects the whole file, unless the caller takes those rows (`mmgenre prepare`
skips and reports them). A file read for another split than the release one
(require_set=False) may lack the `set` column, and its set values are not
checked:

  dropped = []   # (track_id, genre, line) of each row left out
  bad = []       # (track_id, line, reason)
  dataset = msdi.load_msdi(path, on_unknown_genre=lambda *row:
                           dropped.append(row),
                           on_bad_row=lambda *row: bad.append(row))
"""

import collections
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from input_pipeline.formats import release_format

# The 15 MSD-I genres in the order of the paper's Table 1.
MSDI_GENRES = ('Blues', 'Country', 'Electronic', 'Folk', 'Jazz', 'Latin',
               'Metal', 'New Age', 'Pop', 'Punk', 'Rap', 'Reggae', 'RnB',
               'Rock', 'World')
# Columns of MSD-I_dataset.tsv (docs/data_formats.md §1). Extra columns are
# ignored.
MSDI_COLUMNS = ('msd_track_id', 'genre', 'album_index', 'set',
                'msd_artist_id', 'image_url')
# Values of the `set` column: the split names (input_pipeline.formats.splits
# SPLIT_NAMES) the release spells them with.
MSDI_SETS = ('train', 'val', 'test')
SET_COLUMN = 'set'

# Set values match up to case and spaces, and 'validation' is 'val'; anything
# else (e.g. 'dev') is an error rather than a guess.
_SET_KEYS = {**{name: name for name in MSDI_SETS}, 'validation': 'val'}

# Genre names match up to case and spaces ('new age', 'RNB'); anything else
# (e.g. 'R&B') is an error rather than a guess.
_GENRE_KEYS = {g.lower().replace(' ', ''): g for g in MSDI_GENRES}


@dataclasses.dataclass(frozen=True)
class MSDITrack:
  """One row of MSD-I_dataset.tsv (`set`: an MSDI_SETS name, or '' when the
  file was read with require_set=False and the row's value is absent or not
  a set)."""
  track_id: str
  genre: str
  album_index: str
  set: str
  artist_id: str
  image_url: str


@dataclasses.dataclass(frozen=True)
class MSDIDataset:
  """The tracks of an MSD-I file.

  Attributes:
    tracks: track_id -> MSDITrack, in file order.
    genres: the label vocabulary: MSDI_GENRES order, restricted to the genres
      present; its order defines label indices.
    rows: data rows of the file (blank lines aside).
    skipped_rows: rows left out (given to on_unknown_genre or on_bad_row);
      rows = len(tracks) + skipped_rows.
    has_set: whether the header has the `set` column.
  """
  tracks: Dict[str, MSDITrack]
  genres: Tuple[str, ...]
  rows: int = 0
  skipped_rows: int = 0
  has_set: bool = True

  @property
  def num_labels(self) -> int:
    return len(self.genres)

  @property
  def genre_index(self) -> Dict[str, int]:
    return {genre: i for i, genre in enumerate(self.genres)}

  def label_vector(self, track_ids: Sequence[str]) -> np.ndarray:
    """Genre indices of tracks.

    Args:
      track_ids: n track ids, all in `tracks`.

    Returns:
      int32 [n], indices into `genres`.
    """
    index = self.genre_index
    out = np.zeros((len(track_ids),), np.int32)
    for i, track_id in enumerate(track_ids):
      track = self.tracks.get(track_id)
      if track is None:
        raise KeyError(
            f'Track {track_id!r} is not in this MSD-I dataset '
            f'({len(self.tracks)} tracks); were the splits made from another '
            'metadata file?')
      out[i] = index[track.genre]
    return out

  def release_splits(self) -> Dict[str, List[str]]:
    """The authors' split, from the `set` column.

    Returns:
      split name (MSDI_SETS) -> the track ids of that set, in file order.

    Raises:
      ValueError: the file has no `set` column, or (read with
        require_set=False) a track has no valid set.
    """
    if not self.has_set:
      raise ValueError(f'this MSD-I file has no {SET_COLUMN!r} column, so it '
                       'has no release split.')
    splits = {name: [] for name in MSDI_SETS}
    for track in self.tracks.values():
      if track.set not in splits:
        raise ValueError(f'track {track.track_id!r} has no valid '
                         f'{SET_COLUMN!r} value; read the file with '
                         'require_set=True to report such rows.')
      splits[track.set].append(track.track_id)
    return splits


def canonical_genre(value: str) -> str:
  """MSDI_GENRES spelling of a genre name, ignoring case and spaces."""
  genre = _GENRE_KEYS.get(value.lower().replace(' ', ''))
  if genre is None:
    raise ValueError(value)
  return genre


def canonical_set(value: str) -> str:
  """MSDI_SETS name of a `set` value, ignoring case and spaces."""
  name = _SET_KEYS.get(value.lower().replace(' ', ''))
  if name is None:
    raise ValueError(value)
  return name


def _is_genre(value: str) -> bool:
  try:
    canonical_genre(value)
  except ValueError:
    return False
  return True


def load_msdi(tsv_path, *,
              on_unknown_genre: Optional[Callable[[str, str, int],
                                                  None]] = None,
              on_bad_row: Optional[release_format.OnBadRow] = None,
              require_set: bool = True) -> MSDIDataset:
  """Reads MSD-I_dataset.tsv.

  Args:
    tsv_path: the release TSV (header with the MSDI_COLUMNS, tab-separated).
    on_unknown_genre: None: a row whose genre is not an MSD-I genre is an
      error (or, with on_bad_row, a bad row). Otherwise such a row is left
      out (before any other check of it) and reported as
      on_unknown_genre(track_id, genre, line), with the stripped values and
      the line number in the file.
    on_bad_row: None: a malformed row or a second row of a track is a
      DataFormatError naming the file, line and column. Otherwise it is left
      out and reported as on_bad_row(msd_track_id or '', line, reason); the
      first row of a repeated track is kept.
    require_set: True (for the release split): the header must have the
      `set` column and a row whose set is empty or not one of MSDI_SETS is
      malformed. False (the split comes from elsewhere): the column may be
      absent, and a value that is not a set is read as ''.

  Returns:
    An MSDIDataset with every row but those left out.
  """
  tracks = {}
  first_rows = {}  # track id -> (line, values) of its row.
  rows = skipped = 0
  with release_format.open_text(tsv_path) as f:
    table = release_format.Table(f, tsv_path, '\t', quoted=False)
    columns = table.header([c for c in MSDI_COLUMNS if c != SET_COLUMN],
                           optional=(SET_COLUMN,))
    if require_set and SET_COLUMN not in columns:
      raise release_format.format_error(
          tsv_path, 1, f'the header has no {SET_COLUMN!r} column, which '
          'holds the release split (train, val or test for each track). Add '
          'it, or split the tracks another way (`mmgenre prepare --splits '
          'compute` or `--splits DIR`).')
    genre_at, track_at = columns['genre'], columns['msd_track_id']
    width = None
    for line, row, problem in table:
      rows += 1
      if (problem is None and on_unknown_genre is not None and
          len(row) > max(genre_at, track_at) and row[genre_at].strip() and
          not _is_genre(row[genre_at].strip())):
        # Left out before the width is taken from the first row kept, so
        # the rows kept are read as a file without this row would be.
        on_unknown_genre(row[track_at].strip(), row[genre_at].strip(), line)
        skipped += 1
        continue
      try:
        if problem is not None:
          raise problem
        if width is None:
          width = max(max(columns.values()) + 1, len(row))
        values = _track_values(row, columns, width, first_rows,
                               require_set)
      except release_format.RowError as e:
        release_format.report_row(on_bad_row, tsv_path, line, row[track_at].strip()
                        if len(row) > track_at else '', e)
        skipped += 1
        continue
      track_id = values['msd_track_id']
      first_rows[track_id] = line, values
      tracks[track_id] = MSDITrack(
          track_id=track_id,
          genre=canonical_genre(values['genre']),
          album_index=values['album_index'],
          set=values.get(SET_COLUMN, ''),
          artist_id=values['msd_artist_id'],
          image_url=values['image_url'])
  if not tracks:
    raise release_format.format_error(tsv_path, None,
                            'no usable data rows after the header.')
  counts = collections.Counter(track.genre for track in tracks.values())
  genres = tuple(g for g in MSDI_GENRES if counts[g])
  if len(genres) < len(MSDI_GENRES):
    logging.warning('%s: genres absent from the file: %s.', tsv_path,
                    [g for g in MSDI_GENRES if not counts[g]])
  return MSDIDataset(tracks=tracks, genres=genres, rows=rows,
                     skipped_rows=skipped, has_set=SET_COLUMN in columns)


def _track_values(row, columns, width, first_rows,
                  require_set: bool) -> Dict[str, str]:
  """A row's values; release_format.RowError when malformed or a track's second row."""
  values = release_format.row_values(
      row, columns, width,
      ('msd_track_id', 'genre') + ((SET_COLUMN,) if require_set else ()))
  first = first_rows.get(values['msd_track_id'])
  if first is not None:
    raise release_format.RowError(release_format.duplicate_reason(
        *first, values, 'MSD track id', 'msd_artist_id'), 'msd_track_id')
  if not _is_genre(values['genre']):
    raise release_format.RowError(f'unknown genre {values["genre"]!r}; MSD-I genres '
                        f'are {list(MSDI_GENRES)}', 'genre')
  if SET_COLUMN in values:
    try:
      values[SET_COLUMN] = canonical_set(values[SET_COLUMN])
    except ValueError:
      if require_set:
        raise release_format.RowError(
            f'unknown set {values[SET_COLUMN]!r}; expected one of '
            f'{list(MSDI_SETS)} (the release split)', SET_COLUMN) from None
      values[SET_COLUMN] = ''
  return values

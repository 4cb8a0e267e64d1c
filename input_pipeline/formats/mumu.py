"""Readers of the MuMu release files (Oramas et al. 2018, Sec. 7.1).

MuMu is the album-level, multi-label part of the paper. The release has

  MuMu_dataset_{multi,single}-label.csv   one row per MSD track:
      amazon_id, album_mbid, MSD_track_id, recording_mbid, artist_mbid, genres
      (`genres` is a quoted, comma-separated list of Amazon genre labels)
  genre_labels_MuMu.tsv                   the label list, one name per line
  genre_taxonomy.tsv (ours, optional)     `label<TAB>parent`, to expand every
                                          label to all its ancestor branches
  reviews.jsonl                           Amazon reviews, one JSON per line

See docs/data_formats.md for the contract shared by all modules.

  dataset = mumu.load_mumu('MuMu_dataset_multi-label.csv',
                           labels_path='genre_labels_MuMu.tsv',
                           min_albums=12)
  y = dataset.label_matrix(list(dataset.albums))   # [n_albums, 250] uint8
"""

import collections
import dataclasses
import os
from typing import (Any, Collection, Dict, Iterable, List, Mapping,
                    Optional, Sequence, Tuple)

from absl import logging
import numpy as np

from input_pipeline import layout
from input_pipeline.formats import release_format

# Columns of the MuMu release CSVs, in release order (docs/data_formats.md §1).
MUMU_COLUMNS = ('amazon_id', 'album_mbid', 'MSD_track_id', 'recording_mbid',
                'artist_mbid', 'genres')
# Header of the optional taxonomy file (docs/data_formats.md §1).
TAXONOMY_COLUMNS = ('label', 'parent')
# The paper keeps the 250 labels found on >= 12 albums (Sec 7.1.1); the reader
# defaults to keeping every label seen at least once.
PAPER_MIN_ALBUMS = 12
@dataclasses.dataclass(frozen=True)
class Album:
  """One MuMu album (an Amazon product).

  Attributes:
    album_id: the amazon_id.
    album_mbid: its MusicBrainz release-group id.
    artist_ids: sorted unique artist_mbid values over the album's tracks.
    track_ids: MSD_track_id values, in CSV order.
    labels: kept label names, in vocabulary order.
  """
  album_id: str
  album_mbid: str
  artist_ids: Tuple[str, ...]
  track_ids: Tuple[str, ...]
  labels: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class MuMuDataset:
  """The albums of a MuMu CSV with their kept labels.

  Attributes:
    albums: album_id -> Album, in CSV first-appearance order.
    track_album: track_id -> album_id.
    labels: the label vocabulary; its order defines label indices.
    unknown_labels: label -> number of albums carrying it, for labels absent
      from the label list (they are not kept).
    dropped_albums: album ids left out because none of their labels was kept.
    rows: data rows of the CSV (blank lines aside).
    skipped_rows: rows left out: malformed (given to on_bad_row) or
      repeating an earlier row's album and track.
    lost_albums: album id -> lines, of the albums all of whose rows were
      left out (only with on_bad_row: a bad row raises without it).
  """
  albums: Dict[str, Album]
  track_album: Dict[str, str]
  labels: Tuple[str, ...]
  unknown_labels: Dict[str, int] = dataclasses.field(default_factory=dict)
  dropped_albums: Tuple[str, ...] = ()
  rows: int = 0
  skipped_rows: int = 0
  lost_albums: Dict[str, Tuple[int, ...]] = dataclasses.field(
      default_factory=dict)

  @property
  def num_labels(self) -> int:
    return len(self.labels)

  @property
  def label_index(self) -> Dict[str, int]:
    """label name -> column in label_matrix."""
    return {label: i for i, label in enumerate(self.labels)}

  @property
  def artist_ids(self) -> Tuple[str, ...]:
    """Sorted unique artist ids over all albums."""
    return tuple(sorted({a for album in self.albums.values()
                         for a in album.artist_ids}))

  def label_matrix(self, album_ids: Sequence[str]) -> np.ndarray:
    """Binary album x label matrix.

    Args:
      album_ids: n album ids, all in `albums`.

    Returns:
      uint8 [n, num_labels]; row i has ones at the labels of album_ids[i].
    """
    index = self.label_index
    matrix = np.zeros((len(album_ids), len(self.labels)), np.uint8)
    for row, album_id in enumerate(album_ids):
      album = self.albums.get(album_id)
      if album is None:
        raise KeyError(
            f'Album {album_id!r} is not in this MuMu dataset '
            f'({len(self.albums)} albums); were the splits made from another '
            'metadata file or label filter?')
      matrix[row, [index[label] for label in album.labels]] = 1
    return matrix


def read_label_list(path) -> List[str]:
  """Reads genre_labels_MuMu.tsv: one label name per line, no header.

  Blank lines are skipped and a missing trailing newline is fine (the release
  file has none). It defines the vocabulary: a bad line (not UTF-8, a NUL, a
  tab, a repeat) is an error naming it, never left out.

  Args:
    path: the label list file.

  Returns:
    The label names in file order.
  """
  labels = []
  seen = {}
  with release_format.open_text(path) as f:
    for line_number, line, _ in release_format.text_lines(f):
      label = line.strip()
      if not label:
        continue
      reason = release_format.bad_text(label)
      if reason is not None:
        raise release_format.format_error(path, line_number, reason + '.')
      if '\t' in label:
        raise release_format.format_error(
            path, line_number, f'{label!r} has a tab; the label list holds '
            'one label name per line and nothing else.')
      if label in seen:
        raise release_format.format_error(
            path, line_number, f'label {label!r} repeats line '
            f'{seen[label]}; remove the duplicate.')
      seen[label] = line_number
      labels.append(label)
  if not labels:
    raise release_format.format_error(path, None, 'no labels; expected one label per line.')
  return labels


def read_taxonomy(path) -> Dict[str, Optional[str]]:
  """Reads a genre taxonomy: header `label<TAB>parent`, one row per label.

  It decides every album's labels: a bad row (not UTF-8, a NUL, too few
  fields, a repeat) is an error naming it, never left out.

  Args:
    path: the taxonomy TSV. `parent` is empty for a top-level genre.

  Returns:
    label -> parent label, or None at the top level.
  """
  taxonomy = {}
  lines = {}
  with release_format.open_text(path) as f:
    table = release_format.Table(f, path, '\t', quoted=False)
    columns = table.header(TAXONOMY_COLUMNS)
    width = None
    for line, row, problem in table:
      if problem is not None:
        release_format.report_row(None, path, line, '', problem)
      width = width or max(columns.values()) + 1
      if len(row) < width:
        raise release_format.format_error(
            path, line, f'{len(row)} fields, expected `label<TAB>parent` '
            f'(row: {row!r}).')
      label, parent = (row[columns[name]].strip() for name in TAXONOMY_COLUMNS)
      if not label:
        raise release_format.format_error(path, line, 'empty value; every row needs one.',
                           'label')
      if label in taxonomy:
        raise release_format.format_error(
            path, line, f'label {label!r} already has a parent (line '
            f'{lines[label]}); give each label one row.', 'label')
      if parent == label:
        raise release_format.format_error(path, line, f'{label!r} is its own parent.',
                           'parent')
      taxonomy[label] = parent or None
      lines[label] = line
  # Fail here, not later inside expansion, if the parents form a cycle.
  for label in taxonomy:
    _ancestors(label, taxonomy, path)
  return taxonomy


def corpus_taxonomy_path(manifest: Mapping[str, Any]) -> Optional[str]:
  """The genre_taxonomy.tsv beside the corpus a shard directory came from.

  A shards' manifest records the corpus `mmgenre prepare` read (`args.data`:
  a corpus directory, or a catalog CSV, whose taxonomy is the taxonomy.tsv
  beside it); None when it names none or the file is not there (moved, or a
  corpus without a taxonomy).
  """
  data = (manifest.get('args') or {}).get('data')
  if not data:
    return None
  data = os.fspath(data)
  if os.path.isfile(data):
    path = os.path.join(os.path.dirname(data), layout.CATALOG_TAXONOMY_TSV)
  else:
    path = os.path.join(data, layout.MUMU_TAXONOMY_TSV)
  return path if os.path.isfile(path) else None


def _ancestors(label: str, taxonomy: Mapping[str, Optional[str]],
               path=None) -> List[str]:
  """label's chain of parents, nearest first (the label itself excluded)."""
  chain = []
  parent = taxonomy.get(label)
  while parent is not None:
    if parent == label or parent in chain:
      raise release_format.DataFormatError(
          f'{os.fspath(path) if path else "taxonomy"}: the parents of '
          f'{label!r} form a cycle ({" -> ".join([label] + chain + [parent])}'
          '); fix the parent column.')
    chain.append(parent)
    parent = taxonomy.get(parent)
  return chain


def expand_labels(labels: Iterable[str],
                  taxonomy: Mapping[str, Optional[str]]) -> List[str]:
  """Adds every ancestor branch (`Vocal Jazz` also gives `Jazz`, Sec 7.1.1).

  Args:
    labels: label names.
    taxonomy: label -> parent, as read_taxonomy returns.

  Returns:
    The labels followed by their ancestors, without repeats, first-seen order.
  """
  expanded = {}
  for label in labels:
    expanded[label] = None
    for ancestor in _ancestors(label, taxonomy):
      expanded[ancestor] = None
  return list(expanded)


def top_level_genre(labels: Iterable[str],
                    taxonomy: Mapping[str, Optional[str]]) -> Optional[str]:
  """The one top-level genre above `labels`, or None if there are 0 or >1.

  The paper's single-parent-label subset (Sec 7.5, Figs 7 and 8) keeps the
  albums whose labels all descend from one top-level genre. A label that
  the taxonomy does not know counts as a top-level genre of its own.

  Args:
    labels: an item's label names (expanded or not).
    taxonomy: label -> parent, as read_taxonomy returns.
  """
  roots = {([label] + _ancestors(label, taxonomy))[-1] for label in labels}
  return roots.pop() if len(roots) == 1 else None


def split_genres(value: str) -> List[str]:
  """The label names of a `genres` field (a comma-separated list)."""
  return [name.strip() for name in value.split(',') if name.strip()]


@dataclasses.dataclass
class RawAlbum:
  """An album as its rows give it, before the labels are filtered (also
  what input_pipeline.formats.catalog reads a catalog row into)."""
  album_mbid: str
  line: int
  artists: set = dataclasses.field(default_factory=set)
  tracks: List[str] = dataclasses.field(default_factory=list)
  labels: Dict[str, None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RawCsv:
  """What _read_mumu_csv (or catalog.py) read: the albums of the rows kept,
  row counts."""
  albums: Dict[str, RawAlbum]
  rows: int = 0
  skipped: Dict[str, List[int]] = dataclasses.field(
      default_factory=dict)  # album -> lines of its rows left out.
  skipped_rows: int = 0


def _read_mumu_csv(csv_path, on_bad_row: Optional[release_format.OnBadRow]) -> RawCsv:
  """Groups the rows of a MuMu CSV by album (amazon_id).

  A row repeating the (amazon_id, MSD_track_id) of an earlier row is left
  out (it would make the track a second, identical example) and reported to
  on_bad_row (logged without it). A malformed row (wrong field count, bytes
  that are not UTF-8, a NUL, broken quoting, a last line cut short, an
  empty id) is reported to on_bad_row, or raises a
  release_format.DataFormatError without it.
  """
  raw = RawCsv({})
  first_rows = {}  # (album, track) -> (line, values) of its first row.
  track_lines = {}
  repeated_tracks, repeats, mbid_conflicts = [], [], 0
  with release_format.open_text(csv_path) as f:
    table = release_format.Table(f, csv_path)
    columns = table.header(MUMU_COLUMNS)
    width = None
    for line, row, problem in table:
      raw.rows += 1
      try:
        if problem is not None:
          raise problem
        if width is None:
          width = max(max(columns.values()) + 1, len(row))
        values = release_format.row_values(row, columns, width,
                            ('amazon_id', 'MSD_track_id'))
      except release_format.RowError as e:
        release_format.report_row(on_bad_row, csv_path, line,
                   _cell(row, columns, 'MSD_track_id'), e)
        values = None
      key = values and (values['amazon_id'], values['MSD_track_id'])
      if key in first_rows:
        reason = release_format.duplicate_reason(*first_rows[key], values,
                                  'amazon_id and MSD track id', 'artist_mbid')
        if on_bad_row is None:
          repeats.append((line, reason))
        else:
          on_bad_row(key[1], line, f"column 'MSD_track_id': {reason}")
      if values is None or key in first_rows:
        raw.skipped_rows += 1
        raw.skipped.setdefault(_cell(row, columns, 'amazon_id'),
                               []).append(line)
        continue
      first_rows[key] = line, values
      album_id, track_id = key
      if track_id in track_lines:
        # A track on two Amazon products (a reissue, a compilation): keep it
        # on both; track_album names the first and splits keep them together.
        repeated_tracks.append((track_id, track_lines[track_id], line))
      else:
        track_lines[track_id] = line
      album = raw.albums.get(album_id)
      if album is None:
        album = raw.albums[album_id] = RawAlbum(values['album_mbid'], line)
      elif values['album_mbid'] and album.album_mbid != values['album_mbid']:
        mbid_conflicts += 1
      if values['artist_mbid']:
        album.artists.add(values['artist_mbid'])
      album.tracks.append(track_id)
      for label in split_genres(values['genres']):
        album.labels[label] = None
  if not raw.albums:
    raise release_format.format_error(csv_path, None, 'no usable data rows after the header.')
  if repeats:
    logging.warning('%s: %d row(s) repeat the album and track of an earlier '
                    'row and are left out, e.g. line %d: %s', csv_path,
                    len(repeats), *repeats[0])
  if repeated_tracks:
    logging.warning(
        '%s: %d track(s) appear on more than one album, e.g. %s on lines %d '
        'and %d; each is mapped to its first album.', csv_path,
        len(repeated_tracks), *repeated_tracks[0])
  if mbid_conflicts:
    logging.warning(
        '%s: %d rows give an album_mbid other than the first row of their '
        'amazon_id; the first one is kept.', csv_path, mbid_conflicts)
  return raw


def _cell(row: Sequence[str], columns: Mapping[str, int], name: str) -> str:
  """A field of a possibly malformed row ('' when the row is too short)."""
  return row[columns[name]].strip() if len(row) > columns[name] else ''


def load_mumu(csv_path,
              *,
              labels_path=None,
              taxonomy_path=None,
              min_albums: int = 1,
              drop_unlabeled: bool = True,
              on_bad_row: Optional[release_format.OnBadRow] = None) -> MuMuDataset:
  """Reads a MuMu release CSV into albums with their kept labels.

  Labels are expanded to their ancestors (when a taxonomy is given), then
  restricted to the label list (when given), then to the labels on at least
  `min_albums` albums. Labels missing from the list are counted in
  `unknown_labels` and named in a warning, never dropped silently.

  Args:
    csv_path: MuMu_dataset_{multi,single}-label.csv.
    labels_path: genre_labels_MuMu.tsv; its order becomes the vocabulary order.
      Without it the vocabulary is every label seen, sorted by name.
    taxonomy_path: optional `label<TAB>parent` file.
    min_albums: keep a label when it is on >= this many albums (the paper,
      Sec 7.1.1, uses PAPER_MIN_ALBUMS = 12). With a label list, 0 keeps
      every listed label, even those on no album.
    drop_unlabeled: leave out albums with no kept label (they have no
      target); their ids go to `dropped_albums`.
    on_bad_row: None: a malformed row is a release_format.DataFormatError naming the file,
      line and column. Otherwise every row left out (malformed, or
      repeating an earlier row's album and track) is reported as
      on_bad_row(MSD_track_id or '', line, reason); `lost_albums` names the
      albums left with no row.

  Returns:
    A MuMuDataset.
  """
  if min_albums < 0:
    raise ValueError(f'min_albums must be >= 0, got {min_albums}.')
  raw = _read_mumu_csv(csv_path, on_bad_row)
  taxonomy = read_taxonomy(taxonomy_path) if taxonomy_path else {}
  label_list = read_label_list(labels_path) if labels_path else None
  return dataset_from_raw(raw, csv_path, taxonomy=taxonomy,
                          label_list=label_list, labels_path=labels_path,
                          min_albums=min_albums,
                          drop_unlabeled=drop_unlabeled)


def dataset_from_raw(raw: RawCsv, csv_path, *,
                     taxonomy: Mapping[str, Optional[str]],
                     label_list: Optional[List[str]] = None,
                     labels_path=None, min_albums: int = 1,
                     drop_unlabeled: bool = True) -> MuMuDataset:
  """The MuMuDataset of albums read from a release file (see load_mumu).

  Args:
    raw: the albums and row counts read from csv_path.
    csv_path: the file they came from, for messages.
    taxonomy: label -> parent ({} for none): labels expand to ancestors.
    label_list, labels_path: the label list (None: every label seen) and
      its file; min_albums, drop_unlabeled: as in load_mumu.
  """
  album_labels, vocabulary, unknown_counts = _kept_labels(
      raw.albums, taxonomy, label_list, min_albums, csv_path, labels_path)
  kept = set(vocabulary)
  order = {label: i for i, label in enumerate(vocabulary)}
  albums = {}
  track_album = {}
  dropped = []
  for album_id, album in raw.albums.items():
    labels = sorted((label for label in album_labels[album_id]
                     if label in kept), key=order.__getitem__)
    if drop_unlabeled and not labels:
      dropped.append(album_id)
      continue
    albums[album_id] = Album(album_id, album.album_mbid,
                             tuple(sorted(album.artists)),
                             tuple(album.tracks), tuple(labels))
    for track_id in album.tracks:
      track_album.setdefault(track_id, album_id)
  if dropped:
    logging.warning(
        '%s: %d album(s) have no kept label and are left out (e.g. %s).',
        csv_path, len(dropped), ', '.join(dropped[:5]))
  if not albums:
    raise release_format.format_error(
        csv_path, None, f'no album keeps a label (label list {labels_path}, '
        f'min_albums={min_albums}); check that the label list matches the '
        'genres column or lower min_albums.')
  return MuMuDataset(
      albums=albums,
      track_album=track_album,
      labels=tuple(vocabulary),
      unknown_labels=dict(unknown_counts.most_common()),
      dropped_albums=tuple(dropped),
      rows=raw.rows,
      skipped_rows=raw.skipped_rows,
      lost_albums={a: tuple(lines) for a, lines in raw.skipped.items()
                   if a and a not in raw.albums})


def _kept_labels(raw_albums: Mapping[str, RawAlbum], taxonomy,
                 label_list: Optional[List[str]], min_albums: int, csv_path,
                 labels_path):
  """The labels each album keeps, the vocabulary and the unknown labels.

  Returns:
    (album_id -> its expanded, listed labels; the vocabulary in label-list
    (else name) order; Counter of labels absent from the label list).
  """
  known = set(label_list) if label_list is not None else None
  album_labels = {}
  label_counts = collections.Counter()
  unknown_counts = collections.Counter()
  for album_id, album in raw_albums.items():
    labels = expand_labels(album.labels, taxonomy)
    if known is not None:
      unknown_counts.update(label for label in labels if label not in known)
      labels = [label for label in labels if label in known]
    album_labels[album_id] = labels
    label_counts.update(labels)
  if unknown_counts:
    shown = ', '.join(f'{label!r} ({n} albums)'
                      for label, n in unknown_counts.most_common(20))
    more = len(unknown_counts) - 20
    logging.warning(
        '%s: %d label(s) are not in the label list %s and are not kept: %s%s',
        csv_path, len(unknown_counts), labels_path, shown,
        f' and {more} more' if more > 0 else '')
  if label_list is not None:
    vocabulary = [label for label in label_list
                  if label_counts[label] >= min_albums]
  else:
    vocabulary = sorted(label for label, n in label_counts.items()
                        if n >= max(min_albums, 1))
  rare = [label for label, n in label_counts.items() if 0 < n < min_albums]
  if rare:
    logging.info('%s: %d label(s) on fewer than %d albums are not kept.',
                 csv_path, len(rare), min_albums)
  return album_labels, vocabulary, unknown_counts


def load_reviews(
    path,
    album_ids: Optional[Collection[str]] = None) -> Dict[str, List[str]]:
  """album_id -> its non-empty review texts, in file order (reviews.jsonl).

  features.text.read_reviews, strict: a malformed line is a release_format.DataFormatError
  naming the file and line.
  """
  # Here: features.text loads scikit-learn (seconds), which the readers and
  # the processes importing them do not need.
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import text
  return text.read_reviews(path, album_ids).texts

"""What `mmgenre prepare` reads: a corpus directory as per-modality Items.

`load_mumu_corpus` and `load_msdi_corpus` read a corpus directory
(docs/data_formats.md §1) and its splits (`splits`: the release split, the
MSD-I default; computed with a seed, the MuMu default; or read from
items_index_*.tsv) into a `Corpus`: for every modality and split, the Items
to turn into records, each with its labels and its input file, or why the
file is missing. Everything left out on the way goes to the `SkipLog`, the
rows of OUT/skipped.tsv: release rows that are malformed or repeat an item
(stage `metadata`), review lines that are malformed (`reviews`), albums and
tracks with no known label (`labels`) or in no split file (`metadata`).
`Corpus.metadata` counts them, read = kept + skipped; `skip_fractions` and
`SkipBudget` are the --max-skip-fraction check over them and the modalities:

  skips = prepare_corpus.SkipLog()
  corpus = prepare_corpus.load_mumu_corpus('runs/data/synthetic', skips=skips)
  corpus.items['audio']['train'][0]   # Item(split='train', item_id=..., ...)
  corpus.metadata['albums']           # {'read': 600, 'kept': 600, ...}

No TensorFlow or JAX here.
"""

import collections
import csv
import dataclasses
import io
import math
import os
import pathlib
from typing import (Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

from absl import logging

from input_pipeline import errors as input_errors
from input_pipeline.formats import catalog as catalog_lib
from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format
from input_pipeline.formats import splits as splits_lib
from input_pipeline.features import text as text_lib

SKIPPED_COLUMNS = ('stage', 'split', 'item_id', 'path', 'reason')
# What the failure budget counts (skip_fractions keys), as an error names it.
BUDGET_KINDS = {'rows': 'rows of {metadata_file}',
                'review_lines': 'lines of {reviews_file}',
                'audio': 'audio files', 'image': 'covers',
                'text': 'album texts'}
AUDIO_EXTENSIONS = ('wav', 'flac', 'ogg', 'mp3')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')
# Where the splits come from (`splits`, `mmgenre prepare --splits`): the
# release file's own split (MSD-I's `set` column), an artist-filtered split
# computed with the seed, or any other value: a directory of
# items_index_*.tsv.
RELEASE_SPLITS = 'release'
COMPUTED_SPLITS = 'computed'
DIRECTORY_SPLITS = 'directory'  # Only as the manifest's splits_source.
# MSD-I ships its split (the paper's); MuMu has none for its genre labels;
# a catalog's is its `split` column when it has one (splits_arg).
DEFAULT_SPLITS = {'mumu': COMPUTED_SPLITS, 'msdi': RELEASE_SPLITS}


class PrepareError(input_errors.InputError, RuntimeError):
  """The corpus cannot be prepared at all (not a per-item problem)."""


@dataclasses.dataclass(frozen=True)
class Item:
  """One record to make.

  Attributes:
    split: the split name.
    item_id: the id reported in skipped.tsv (track or album id).
    keys: the record's id keys (track_id and/or album_id).
    labels: label indices.
    path: the input file, or None when it is missing.
    missing: why `path` is None (names the files looked for).
    wanted: when `path` is None, the file (pattern) that was looked for.
  """
  split: str
  item_id: str
  keys: Dict[str, str]
  labels: List[int]
  path: Optional[str] = None
  missing: str = ''
  wanted: str = ''


@dataclasses.dataclass
class Corpus:
  """A corpus reduced to what prepare writes.

  Attributes:
    dataset: 'mumu', 'msdi' or 'catalog'.
    labels: the label vocabulary (record label indices point into it).
    splits: split name -> item ids (albums for MuMu, tracks for MSD-I).
    items: modality -> split -> Items, in split order.
    texts: MuMu only: album id -> its review texts.
    reviews_path: MuMu only: the reviews file, for skip reports.
    metadata_file: the release file (MuMu CSV, MSD-I TSV) name.
    metadata: what the release files held and kept, `count` dicts:
      `rows` (data rows of the release file), `albums` (MuMu, catalog) or
      `tracks` (MSD-I: the tracks of the rows kept), `review_lines` (MuMu).
    omitted: modality -> why it has no Items (a catalog without the
      column); `items` has no key for it.
  """
  dataset: str
  labels: tuple
  splits: Dict[str, List[str]]
  items: Dict[str, Dict[str, List[Item]]]
  texts: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  reviews_path: str = ''
  metadata_file: str = ''
  metadata: Dict[str, Dict[str, int]] = dataclasses.field(
      default_factory=dict)
  omitted: Dict[str, str] = dataclasses.field(default_factory=dict)


def count(what: str, read: int, kept: int, skipped: int) -> Dict[str, int]:
  """{read, kept, skipped}, checked: read = kept + skipped."""
  if read != kept + skipped:
    raise AssertionError(f'{what}: read {read} != kept {kept} + skipped '
                         f'{skipped}; this is a bug in prepare.')
  return {'read': read, 'kept': kept, 'skipped': skipped}


class SkipLog:
  """Rows of skipped.tsv, with counts per stage and split."""

  def __init__(self):
    self.rows: List[tuple] = []
    self.counts = collections.Counter()

  def add(self, stage: str, split: str, item_id: str, path, reason: str):
    reason = ' '.join(str(reason).split())  # One line, no tabs.
    self.rows.append((stage, split, item_id, os.fspath(path or ''), reason))
    self.counts[stage, split] += 1

  def add_missing(self, modality: str, item: 'Item') -> None:
    """The row of an item whose input file is missing (item.path None)."""
    self.add(modality, item.split, item.item_id, item.wanted, item.missing)

  def count(self, stage: str, split: Optional[str] = None) -> int:
    return sum(n for (st, sp), n in self.counts.items()
               if st == stage and (split is None or sp == split))

  def write(self, path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter='\t', lineterminator='\n',
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerow(SKIPPED_COLUMNS)
    writer.writerows(self.rows)
    fileio.write_atomic(path, buffer.getvalue().encode('utf-8'))


def find_file(directory: pathlib.Path, stem: str,
              extensions: Sequence[str]) -> Optional[pathlib.Path]:
  """directory/stem.ext for the first ext of `extensions` that exists."""
  for ext in extensions:
    for candidate in (ext, ext.upper()):
      path = directory / f'{stem}.{candidate}'
      if path.is_file():
        return path
  return None


def _item(split, item_id, keys, labels, path, looked_for) -> Item:
  if path is None:
    return Item(split, item_id, keys, labels,
                missing=f'missing file: no {looked_for}', wanted=looked_for)
  return Item(split, item_id, keys, labels, path=os.fspath(path))


def _audio_item(data_dir, split, track_id, album_id, labels) -> Item:
  path = find_file(data_dir / layout.AUDIO_DIR, track_id, AUDIO_EXTENSIONS)
  looked_for = f'{layout.AUDIO_DIR}/{track_id}.{{{",".join(AUDIO_EXTENSIONS)}}}'
  return _item(split, track_id, {'track_id': track_id, 'album_id': album_id},
               labels, path, looked_for)


def splits_arg(dataset: str, splits, data=None) -> str:
  """`splits` as recorded: RELEASE_SPLITS, COMPUTED_SPLITS or a directory.

  Args:
    dataset: 'mumu', 'msdi' or 'catalog'.
    splits: None (the dataset's DEFAULT_SPLITS; a catalog's: RELEASE_SPLITS
      when the CSV `data` has a `split` column, else COMPUTED_SPLITS),
      RELEASE_SPLITS, COMPUTED_SPLITS, or a directory of items_index_*.tsv
      (str or path; a directory named like a keyword is given as a path or
      './release').
    data: the corpus (a catalog: its CSV).
  """
  if splits is None:
    if dataset == 'catalog':
      return (RELEASE_SPLITS if data is not None and
              'split' in catalog_lib.header(data) else COMPUTED_SPLITS)
    return DEFAULT_SPLITS.get(dataset, COMPUTED_SPLITS)
  if isinstance(splits, str) and splits in (RELEASE_SPLITS, COMPUTED_SPLITS):
    return splits
  return os.fspath(splits)


def checked_splits(dataset: str, splits, data=None) -> str:
  """splits_arg(dataset, splits, data); a PrepareError when the dataset has
  no such split (MuMu has no release split, a catalog without a `split`
  column neither)."""
  splits = splits_arg(dataset, splits, data)
  if dataset == 'mumu' and splits == RELEASE_SPLITS:
    raise PrepareError(
        f'--splits {RELEASE_SPLITS}: the MuMu release has no train/val/test '
        'split of its albums; use --splits compute (the default: an '
        'artist-filtered 80/10/10 split with --seed) or --splits DIR '
        '(items_index_*.tsv, e.g. from `mmgenre splits`).')
  if (dataset == 'catalog' and splits == RELEASE_SPLITS and data is not None
      and 'split' not in catalog_lib.header(data)):
    raise PrepareError(
        f'--splits {RELEASE_SPLITS}: {data} has no `split` column; add one '
        '(train, val or test per album), or use --splits compute (an '
        'artist-filtered 80/10/10 split with --seed, the default without '
        'the column) or --splits DIR.')
  return splits


def splits_source(splits: str) -> str:
  """The manifest's `splits_source` of a splits_arg: release, computed or
  directory."""
  if splits in (RELEASE_SPLITS, COMPUTED_SPLITS):
    return splits
  return DIRECTORY_SPLITS


def resolve_splits(computed: Callable[[], Dict[str, List[str]]],
                    splits: str, release=None) -> Dict[str, List[str]]:
  """The splits named by a splits_arg; release: the release split's reader."""
  if splits == COMPUTED_SPLITS:
    return computed()
  if splits == RELEASE_SPLITS:
    return release()
  return splits_lib.read_splits(splits)


def row_reporter(skips: SkipLog, path) -> release_format.OnBadRow:
  """on_bad_row of a release file: a `metadata` row of skipped.tsv."""
  def report(item_id: str, line: int, reason: str) -> None:
    # One bad row must not stop the job: it is left out and reported.
    skips.add('metadata', '', item_id, path, f'line {line}: {reason}')
  return report


def report_unsplit(skips: SkipLog, ids, split_of, release, splits_dir,
                    what: str) -> int:
  """Reports the release file's items in no split file; returns how many."""
  unsplit = [i for i in ids if i not in split_of]
  for item_id in unsplit:
    skips.add('metadata', '', item_id, splits_dir,
              f'{what} is in {release} but in none of the split files, so '
              'it is not prepared; add it to a split file to use it')
  return len(unsplit)


def load_mumu_corpus(data_dir, *, splits=None, seed: int = 0,
                     min_albums: int = 1,
                     skips: SkipLog) -> Corpus:
  """Reads a MuMu corpus directory into per-modality Items.

  Args:
    data_dir: the corpus (docs/data_formats.md §1).
    splits: a directory of items_index_*.tsv of album ids, or
      COMPUTED_SPLITS (mumu_splits with `seed`, also when None). MuMu has no
      release split: RELEASE_SPLITS is a PrepareError.
    seed: split seed.
    min_albums: keep labels on >= this many albums.
    skips: receives the CSV rows and review lines left out, albums without
      a usable label or in no split file, and unknown labels.

  Returns:
    The Corpus.
  """
  data_dir = pathlib.Path(data_dir)
  splits_dir = checked_splits('mumu', splits)
  csv_path = next((data_dir / name for name in layout.MUMU_CSVS
                   if (data_dir / name).is_file()), None)
  if csv_path is None:
    raise PrepareError(f'{data_dir} has none of {list(layout.MUMU_CSVS)}; '
                       'is --data a MuMu corpus directory?')
  labels_path = data_dir / layout.MUMU_LABELS_TSV
  taxonomy_path = data_dir / layout.MUMU_TAXONOMY_TSV
  dataset = mumu.load_mumu(
      csv_path,
      labels_path=labels_path if labels_path.is_file() else None,
      taxonomy_path=taxonomy_path if taxonomy_path.is_file() else None,
      min_albums=min_albums, on_bad_row=row_reporter(skips, csv_path))
  for label, n in dataset.unknown_labels.items():
    skips.add('labels', '', label, labels_path,
              f'unknown label: not in {layout.MUMU_LABELS_TSV}, dropped from '
              f'{n} album(s)')
  splits = resolve_splits(lambda: splits_lib.mumu_splits(dataset, seed),
                           splits_dir)
  dropped = set(dataset.dropped_albums)
  # Albums already reported (no usable label, every row left out) are not
  # reported again for being in a split file.
  reported = dropped | set(dataset.lost_albums)
  split_of = {a: name for name, ids in splits.items() for a in ids}
  for album_id, lines in dataset.lost_albums.items():
    skips.add('metadata', '', album_id, csv_path,
              f'line {lines[0]}: every row of album {album_id!r} '
              f'(line{"s" if len(lines) > 1 else ""} '
              f'{", ".join(map(str, lines))}) is left out, so the album is '
              'too')
  for album_id in dataset.dropped_albums:
    skips.add('labels', split_of.get(album_id, ''), album_id, csv_path,
              'no usable label: every label of the album is unknown or '
              f'on fewer than {min_albums} albums')
  unsplit = report_unsplit(skips, dataset.albums, split_of, csv_path.name,
                            splits_dir, 'album')
  items, kept_splits = _mumu_items(data_dir, dataset, splits, reported,
                                   splits_dir, csv_path, skips)
  reviews_path = data_dir / layout.REVIEWS_JSONL
  reviews = text_lib.Reviews({})
  if reviews_path.is_file():
    reviews = text_lib.read_reviews(
        reviews_path, album_ids=dataset.albums,
        on_bad_line=lambda _, line, reason: skips.add(
            'reviews', '', '', reviews_path, f'line {line}: {reason}'))
  else:
    logging.warning('%s not found: every album will be skipped for text.',
                    reviews_path)
  albums = len(dataset.albums) + len(dropped) + len(dataset.lost_albums)
  in_splits = sum(map(len, kept_splits.values()))
  metadata = {
      'rows': count('rows', dataset.rows, dataset.rows - dataset.skipped_rows,
                    dataset.skipped_rows),
      'albums': count('albums', albums, in_splits, len(dropped) + len(
          dataset.lost_albums) + unsplit),
      'review_lines': count('review lines', reviews.lines,
                            reviews.lines - reviews.skipped_lines,
                            reviews.skipped_lines)}
  return Corpus('mumu', tuple(dataset.labels), kept_splits, items,
                reviews.texts, os.fspath(reviews_path), csv_path.name,
                metadata)


def _mumu_items(data_dir: pathlib.Path, dataset: mumu.MuMuDataset, splits,
                reported, splits_dir, csv_path, skips: SkipLog):
  """(modality -> split -> Items, split -> album ids kept) of MuMu."""
  index = dataset.label_index
  items = {m: {name: [] for name in splits} for m in ('audio', 'image',
                                                      'text')}
  kept_splits = {}
  for name, album_ids in splits.items():
    kept_splits[name] = []
    for album_id in album_ids:
      album = dataset.albums.get(album_id)
      if album is None:
        if album_id not in reported:
          skips.add('labels', name, album_id, splits_dir,
                    f'album is in the split files but not in {csv_path.name}')
        continue
      kept_splits[name].append(album_id)
      labels = [index[label] for label in album.labels]
      for track_id in album.track_ids:
        items['audio'][name].append(
            _audio_item(data_dir, name, track_id, album_id, labels))
      cover = find_file(data_dir / layout.COVERS_DIR, album_id,
                        IMAGE_EXTENSIONS)
      items['image'][name].append(_item(
          name, album_id, {'album_id': album_id}, labels, cover,
          f'{layout.COVERS_DIR}/{album_id}.{{{",".join(IMAGE_EXTENSIONS)}}}'))
      items['text'][name].append(
          Item(name, album_id, {'album_id': album_id}, labels))
  return items, kept_splits


def load_msdi_corpus(data_dir, *, splits=None, seed: int = 0,
                     skips: SkipLog) -> Corpus:
  """Reads an MSD-I corpus directory into per-modality Items.

  Args:
    data_dir: the corpus, with MSD-I_dataset.tsv; `image_url` is a path
      relative to it.
    splits: RELEASE_SPLITS (the `set` column, also when None),
      COMPUTED_SPLITS (msdi_splits with `seed`), or a directory of
      items_index_*.tsv of track ids.
    seed: split seed.
    skips: receives rows with an unknown genre (msdi.load_msdi leaves them
      out, in memory), malformed and repeated rows (with the release split:
      an empty or unknown `set` too), tracks in no split file and split
      entries not in the TSV.

  Returns:
    The Corpus.
  """
  data_dir = pathlib.Path(data_dir)
  tsv_path = data_dir / layout.MSDI_TSV
  if not tsv_path.is_file():
    raise PrepareError(f'{tsv_path} not found; is --data an MSD-I corpus '
                       'directory?')

  def unknown_genre(track_id: str, genre: str, line: int) -> None:
    # One bad row must not stop the job: it is skipped and reported.
    skips.add('labels', '', track_id, tsv_path,
              f'unknown label {genre!r} (line {line}); MSD-I genres are '
              f'{list(msdi.MSDI_GENRES)}')

  splits_dir = splits_arg('msdi', splits)
  # The release split needs the `set` column: without it the header is an
  # error naming the fix; an empty or unknown set is a bad row.
  dataset = msdi.load_msdi(tsv_path, on_unknown_genre=unknown_genre,
                           on_bad_row=row_reporter(skips, tsv_path),
                           require_set=splits_dir == RELEASE_SPLITS)
  splits = resolve_splits(lambda: splits_lib.msdi_splits(dataset, seed),
                           splits_dir, dataset.release_splits)
  split_of = {t: name for name, ids in splits.items() for t in ids}
  unsplit = report_unsplit(skips, dataset.tracks, split_of, tsv_path.name,
                            splits_dir, 'track')
  index = dataset.genre_index
  items = {m: {name: [] for name in splits} for m in ('audio', 'image')}
  kept_splits = {}
  for name, track_ids in splits.items():
    kept_splits[name] = []
    for track_id in track_ids:
      track = dataset.tracks.get(track_id)
      if track is None:
        skips.add('labels', name, track_id, splits_dir,
                  'track is in the split files but not in '
                  f'{layout.MSDI_TSV} (or its genre is unknown, or its row '
                  'is left out)')
        continue
      kept_splits[name].append(track_id)
      labels = [index[track.genre]]
      items['audio'][name].append(
          _audio_item(data_dir, name, track_id, track.album_index, labels))
      items['image'][name].append(_msdi_image_item(data_dir, name, track,
                                                   labels))
  tracks = len(dataset.tracks)
  metadata = {
      'rows': count('rows', dataset.rows, tracks, dataset.skipped_rows),
      'tracks': count('tracks', tracks, sum(map(len, kept_splits.values())),
                      unsplit)}
  return Corpus('msdi', tuple(dataset.genres), kept_splits, items,
                metadata_file=tsv_path.name, metadata=metadata)


def _msdi_image_item(data_dir: pathlib.Path, split: str,
                     track: msdi.MSDITrack, labels) -> Item:
  """The cover Item of an MSD-I track (image_url relative to --data)."""
  keys = {'track_id': track.track_id, 'album_id': track.album_index}
  if '://' in track.image_url:
    return Item(split, track.track_id, keys, labels,
                missing=f'remote image_url {track.image_url}; download the '
                'covers and give paths relative to --data',
                wanted=track.image_url)
  cover = data_dir / track.image_url if track.image_url else None
  return _item(split, track.track_id, keys, labels,
               cover if cover is not None and cover.is_file() else None,
               track.image_url or '(empty image_url)')


def skip_fractions(corpus: Corpus, skips: SkipLog, *,
                   missing_only: bool = False) -> Dict[str, Tuple[int, int]]:
  """What the failure budget counts: kind -> (skipped, read).

  Kinds are BUDGET_KINDS: the release file's rows, the review lines (MuMu)
  and the items of every modality (audio_windows are the audio tracks).

  Args:
    corpus: the corpus read.
    skips: the skip log.
    missing_only: count only the inputs known to be skipped before any
      feature is computed (for modalities: the missing files).
  """
  fractions = {}
  for kind in ('rows', 'review_lines'):
    if kind in corpus.metadata:
      counts = corpus.metadata[kind]
      fractions[kind] = counts['skipped'], counts['read']
  for modality, splits in corpus.items.items():
    items = [item for split_items in splits.values() for item in split_items]
    skipped = (sum(1 for item in items if item.path is None and item.wanted)
               if missing_only else skips.count(modality))
    fractions[modality] = skipped, len(items)
  return fractions


def report_missing(corpus: Corpus, skips: SkipLog) -> None:
  """Reports every missing input file, before (instead of) any feature."""
  for modality, splits in corpus.items.items():
    for items in splits.values():
      for item in items:
        if item.path is None and item.wanted:
          skips.add_missing(modality, item)


class SkipBudget:
  """The --max-skip-fraction check, with the names its error gives."""

  def __init__(self, limit: float, corpus: Corpus, report):
    """limit: the fraction; report: the skipped.tsv the error names."""
    self.limit = limit
    self.names = {kind: name.format(
        metadata_file=corpus.metadata_file,
        reviews_file=layout.REVIEWS_JSONL) for kind, name in
                  BUDGET_KINDS.items()}
    self.report = report

  def check(self, fractions: Mapping[str, Tuple[int, int]],
            when: str) -> None:
    """Raises a PrepareError naming every kind over the budget."""
    over = {kind: (n, read) for kind, (n, read) in fractions.items()
            if read and n / read > self.limit}
    if not over:
      return
    shown = '; '.join(f'{n} of {read} {self.names[kind]} ({n / read:.1%})'
                      for kind, (n, read) in over.items())
    worst = max(n / read for n, read in over.values())
    raise PrepareError(
        f'too many inputs are skipped: {shown}, more than '
        f'--max-skip-fraction {self.limit:g} of them; stopped {when}. '
        f'Every skipped input and the reason is in {self.report}. Fix those '
        'inputs (or check --data), or accept them with --max-skip-fraction '
        f'{math.ceil(worst * 100) / 100:g}.')

"""What `mmgenre prepare` reads: a corpus directory as per-modality Items.

`load_mumu_corpus` and `load_msdi_corpus` read a corpus directory
(docs/data_formats.md §1) and its splits (computed with a seed, or read from
items_index_*.tsv) into a `Corpus`: for every modality and split, the Items
to turn into records, each with its labels and its input file, or why the
file is missing. Albums and tracks that cannot be used at all (no known
label) go to the `SkipLog`, the rows of OUT/skipped.tsv.

  skips = prepare_corpus.SkipLog()
  corpus = prepare_corpus.load_mumu_corpus('runs/data/synthetic', skips=skips)
  corpus.items['audio']['train'][0]   # Item(split='train', item_id=..., ...)

No TensorFlow or JAX here.
"""

import collections
import csv
import dataclasses
import io
import os
import pathlib
from typing import Callable, Dict, List, Optional, Sequence

from absl import logging

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline import msdi
from input_pipeline import mumu
from input_pipeline import splits as splits_lib

SKIPPED_COLUMNS = ('stage', 'split', 'item_id', 'path', 'reason')
AUDIO_EXTENSIONS = ('wav', 'flac', 'ogg', 'mp3')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')


class PrepareError(RuntimeError):
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
    dataset: 'mumu' or 'msdi'.
    labels: the label vocabulary (record label indices point into it).
    splits: split name -> item ids (albums for MuMu, tracks for MSD-I).
    items: modality -> split -> Items, in split order.
    texts: MuMu only: album id -> its review texts.
    reviews_path: MuMu only: the reviews file, for skip reports.
  """
  dataset: str
  labels: tuple
  splits: Dict[str, List[str]]
  items: Dict[str, Dict[str, List[Item]]]
  texts: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  reviews_path: str = ''


class SkipLog:
  """Rows of skipped.tsv, with counts per stage and split."""

  def __init__(self):
    self.rows: List[tuple] = []
    self.counts = collections.Counter()

  def add(self, stage: str, split: str, item_id: str, path, reason: str):
    reason = ' '.join(str(reason).split())  # One line, no tabs.
    self.rows.append((stage, split, item_id, os.fspath(path or ''), reason))
    self.counts[stage, split] += 1

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


def _resolve_splits(computed: Callable[[], Dict[str, List[str]]],
                    splits_dir) -> Dict[str, List[str]]:
  if splits_dir is None:
    return computed()
  return splits_lib.read_splits(splits_dir)


def load_mumu_corpus(data_dir, *, splits_dir=None, seed: int = 0,
                     min_albums: int = 1,
                     skips: SkipLog) -> Corpus:
  """Reads a MuMu corpus directory into per-modality Items.

  Args:
    data_dir: the corpus (docs/data_formats.md §1).
    splits_dir: items_index_*.tsv of album ids; computed (mumu_splits with
      `seed`) when None.
    seed: split seed.
    min_albums: keep labels on >= this many albums.
    skips: receives albums without a usable label and unknown labels.

  Returns:
    The Corpus.
  """
  data_dir = pathlib.Path(data_dir)
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
      min_albums=min_albums)
  for label, n in dataset.unknown_labels.items():
    skips.add('labels', '', label, labels_path,
              f'unknown label: not in {layout.MUMU_LABELS_TSV}, dropped from '
              f'{n} album(s)')
  splits = _resolve_splits(lambda: splits_lib.mumu_splits(dataset, seed),
                           splits_dir)
  dropped = set(dataset.dropped_albums)
  split_of = {a: name for name, ids in splits.items() for a in ids}
  for album_id in dataset.dropped_albums:
    skips.add('labels', split_of.get(album_id, ''), album_id, csv_path,
              'no usable label: every label of the album is unknown or '
              f'on fewer than {min_albums} albums')
  index = dataset.label_index
  items = {m: {name: [] for name in splits} for m in ('audio', 'image',
                                                      'text')}
  kept_splits = {}
  for name, album_ids in splits.items():
    kept_splits[name] = []
    for album_id in album_ids:
      album = dataset.albums.get(album_id)
      if album is None:
        if album_id not in dropped:
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
  reviews_path = data_dir / layout.REVIEWS_JSONL
  texts = {}
  if reviews_path.is_file():
    texts = mumu.load_reviews(reviews_path, album_ids=dataset.albums)
  else:
    logging.warning('%s not found: every album will be skipped for text.',
                    reviews_path)
  return Corpus('mumu', tuple(dataset.labels), kept_splits, items, texts,
                os.fspath(reviews_path))


def load_msdi_corpus(data_dir, *, splits_dir=None, seed: int = 0,
                     skips: SkipLog) -> Corpus:
  """Reads an MSD-I corpus directory into per-modality Items.

  Args:
    data_dir: the corpus, with MSD-I_dataset.tsv; `image_url` is a path
      relative to it.
    splits_dir: items_index_*.tsv of track ids; computed (msdi_splits with
      `seed`) when None.
    seed: split seed.
    skips: receives rows with an unknown genre (msdi.load_msdi leaves them
      out, in memory) and split entries not in the TSV.

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

  dataset = msdi.load_msdi(tsv_path, on_unknown_genre=unknown_genre)
  splits = _resolve_splits(lambda: splits_lib.msdi_splits(dataset, seed),
                           splits_dir)
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
                  f'{layout.MSDI_TSV} (or its genre is unknown)')
        continue
      kept_splits[name].append(track_id)
      labels = [index[track.genre]]
      album_id = track.album_index
      items['audio'][name].append(
          _audio_item(data_dir, name, track_id, album_id, labels))
      keys = {'track_id': track_id, 'album_id': album_id}
      if '://' in track.image_url:
        items['image'][name].append(Item(
            name, track_id, keys, labels,
            missing=f'remote image_url {track.image_url}; download the '
            'covers and give paths relative to --data',
            wanted=track.image_url))
        continue
      cover = data_dir / track.image_url if track.image_url else None
      items['image'][name].append(_item(
          name, track_id, keys, labels,
          cover if cover is not None and cover.is_file() else None,
          track.image_url or '(empty image_url)'))
  return Corpus('msdi', tuple(dataset.genres), kept_splits, items)


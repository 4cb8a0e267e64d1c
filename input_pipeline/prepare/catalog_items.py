"""What `mmgenre prepare --dataset catalog` reads: a catalog CSV as Items.

The catalog counterpart of release_items.load_mumu_corpus: the albums of a
catalog (input_pipeline/formats/catalog.py, docs/data_formats.md §1.3) and their
splits become the same per-modality Items, so the same shards, skip report
and statistics come out as for MuMu. A modality the catalog has no column
for is not prepared (Corpus.omitted names why); an album whose cell of a
present modality is empty is one skipped item of that modality, named in
skipped.tsv, like a missing file.

  skips = prepare_corpus.SkipLog()
  corpus = prepare_catalog.load_catalog_corpus('my/catalog.csv', skips=skips)

No TensorFlow or JAX here.
"""

import os
from typing import Dict, List

from etils import epath

from input_pipeline import fileio
from input_pipeline.formats import catalog as catalog_lib
from input_pipeline.formats import release_format
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import split_choice
from input_pipeline.formats import splits as splits_lib

Corpus = prepare_corpus.Corpus
Item = prepare_corpus.Item
PrepareError = prepare_corpus.PrepareError


def _file_item(split: str, item_id: str, keys, labels, path, column: str,
               album_id: str) -> Item:
  """The Item of one file of an album (path None: the cell is empty)."""
  if path is None:
    return Item(split, item_id, keys, labels,
                missing=f'no {column}: the {column} cell of album '
                f'{album_id!r} is empty', wanted=f'{column} column')
  if not fileio.is_file(path):
    return Item(split, item_id, keys, labels,
                missing=f'missing file: {path}', wanted=path)
  return Item(split, item_id, keys, labels, path=path)


def _read_text(row: catalog_lib.Row, skips) -> List[str]:
  """The album's review text as a one-text list ([] when unreadable)."""
  if row.reviews is None:
    return []
  try:
    text = release_format.read_text(row.reviews)
  except release_format.DataFormatError as e:
    # 'line N: why'; the file is the row's path column.
    skips.add('reviews', '', row.album_id, row.reviews,
              str(e).removeprefix(f'{row.reviews}, '))
    return []
  except OSError as e:
    skips.add('reviews', '', row.album_id, row.reviews,
              f'cannot read the reviews ({e})')
    return []
  return [text] if text.strip() else []


def _items(found: catalog_lib.Catalog, splits: Dict[str, List[str]],
           splits_dir, skips):
  """(modality -> split -> Items, split -> album ids kept, album texts)."""
  dataset = found.dataset
  index = dataset.label_index
  modalities = found.modalities
  items = {m: {name: [] for name in splits} for m in modalities}
  kept_splits, texts = {}, {}
  for name, album_ids in splits.items():
    kept_splits[name] = []
    for album_id in album_ids:
      album = dataset.albums.get(album_id)
      if album is None:
        if album_id not in found.rows:
          skips.add('labels', name, album_id, splits_dir,
                    f'album is in the split files but not in '
                    f'{found.path.name}')
        continue
      kept_splits[name].append(album_id)
      row = found.rows[album_id]
      labels = [index[label] for label in album.labels]
      keys = {'album_id': album_id}
      if 'audio' in items:
        tracks = [(t, found.track_paths[t]) for t in album.track_ids]
        for track, path in tracks or [(catalog_lib.track_id(album_id, 0),
                                       None)]:
          items['audio'][name].append(_file_item(
              name, track, {'track_id': track, **keys}, labels, path,
              'audio', album_id))
      if 'image' in items:
        items['image'][name].append(_file_item(
            name, album_id, keys, labels, row.cover, 'cover', album_id))
      if 'text' in items:
        items['text'][name].append(Item(name, album_id, keys, labels))
        texts[album_id] = _read_text(row, skips)
  return items, kept_splits, texts


@fileio.listed_folders()
def load_catalog_corpus(path, *, splits=None, seed: int = 0,
                        min_albums: int = 1,
                        skips: prepare_corpus.SkipLog) -> Corpus:
  """Reads a catalog CSV into per-modality Items.

  Args:
    path: the catalog CSV (its taxonomy.tsv beside it, when there).
    splits: RELEASE_SPLITS (the `split` column; the default when the
      header has one), COMPUTED_SPLITS (the artist-filtered 80/10/10 split
      with `seed`; the default without the column) or a directory of
      items_index_*.tsv of album ids.
    seed: split seed.
    min_albums: keep labels on >= this many albums.
    skips: receives the rows left out (malformed, repeated album_id, empty
      labels, a bad split), albums with no kept label or in no split, and
      review files that cannot be read.

  Returns:
    The Corpus (dataset 'catalog'); `omitted` names the modalities the
    catalog has no column for.
  """
  path = epath.Path(path)
  if not path.is_file():
    raise PrepareError(f'--manifest {path} is not a file; give the catalog '
                       'CSV (docs/data_formats.md §1.3).')
  splits_dir = split_choice.checked_splits('catalog', splits, path)
  found = catalog_lib.load_catalog(
      path, min_albums=min_albums,
      on_bad_row=prepare_corpus.row_reporter(skips, path))
  dataset = found.dataset
  splits = split_choice.resolve_splits(
      lambda: splits_lib.mumu_splits(dataset, seed), splits_dir,
      found.release_splits)
  split_of = {a: name for name, ids in splits.items() for a in ids}
  for album_id in dataset.dropped_albums:
    skips.add('labels', split_of.get(album_id, ''), album_id, path,
              'no usable label: every label of the album is on fewer than '
              f'{min_albums} albums')
  if splits_dir == split_choice.RELEASE_SPLITS:
    unsplit = [a for a in dataset.albums if a not in split_of]
    for album_id in unsplit:
      skips.add('metadata', '', album_id, path,
                f'line {found.rows[album_id].line}: empty split cell; give '
                'train, val or test (or prepare with --splits compute)')
    unsplit = len(unsplit)
  else:
    unsplit = split_choice.report_unsplit(
        skips, dataset.albums, split_of, path.name, splits_dir, 'album')
  items, kept_splits, texts = _items(found, splits, splits_dir, skips)
  dropped = len(dataset.dropped_albums)
  in_splits = sum(map(len, kept_splits.values()))
  metadata = {
      'rows': prepare_corpus.count('rows', dataset.rows,
                                   dataset.rows - dataset.skipped_rows,
                                   dataset.skipped_rows),
      'albums': prepare_corpus.count('albums', len(found.rows), in_splits,
                                     dropped + unsplit)}
  omitted = {modality: f'{found.path.name} has no {column!r} column'
             for column, modality in catalog_lib.COLUMN_MODALITY.items()
             if column not in found.columns}
  return Corpus('catalog', tuple(dataset.labels), kept_splits, items, texts,
                os.fspath(path), path.name, metadata, omitted)

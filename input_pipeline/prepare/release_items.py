"""What `mmgenre prepare --dataset mumu|msdi` reads: a release corpus as Items.

`load_mumu_corpus` and `load_msdi_corpus` read a corpus directory
(docs/data_formats.md §1) and its splits (`splits`, split_choice.py: the
release split, the MSD-I default; computed with a seed, the MuMu default; or
a directory of items_index_*.tsv: our own, or the authors'
items_index_{split}_<dataset>.tsv as they ship, MuMu's paper split among
them) into a prepare_corpus.Corpus: for every modality and split, the Items
to turn into records, each with its labels and its input file, or why the
file is missing. What is left out on the way goes to the SkipLog.

  skips = prepare_corpus.SkipLog()
  corpus = release_items.load_mumu_corpus('runs/data/synthetic', skips=skips)
  corpus.items['audio']['train'][0]   # Item(split='train', item_id=..., ...)
  corpus.metadata['albums']           # {'read': 600, 'kept': 600, ...}

No TensorFlow or JAX here.
"""

import os
from typing import Dict, Mapping, Sequence

from etils import epath
from absl import logging

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from input_pipeline.features import text as text_lib
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import split_choice


def _item(split, item_id, keys, labels, path,
          looked_for) -> prepare_corpus.Item:
  if path is None:
    return prepare_corpus.Item(
        split, item_id, keys, labels,
        missing=f'missing file: no {looked_for}', wanted=looked_for)
  return prepare_corpus.Item(split, item_id, keys, labels,
                             path=os.fspath(path))


def _audio_item(data_dir, split, track_id, album_id,
                labels) -> prepare_corpus.Item:
  path = prepare_corpus.find_file(data_dir / layout.AUDIO_DIR, track_id,
                                  prepare_corpus.AUDIO_EXTENSIONS)
  looked_for = (f'{layout.AUDIO_DIR}/{track_id}.'
                f'{{{",".join(prepare_corpus.AUDIO_EXTENSIONS)}}}')
  return _item(split, track_id, {'track_id': track_id, 'album_id': album_id},
               labels, path, looked_for)


# The media of a corpus in a bucket are found in listings of their folders.
@fileio.listed_folders()
def load_mumu_corpus(data_dir, *, splits=None, seed: int = 0,
                     min_albums: int = 1,
                     skips: prepare_corpus.SkipLog) -> prepare_corpus.Corpus:
  """Reads a MuMu corpus directory into per-modality Items.

  Args:
    data_dir: the corpus (docs/data_formats.md §1).
    splits: a directory, or COMPUTED_SPLITS (mumu_splits with `seed`, also
      when None). The directory holds our items_index_{split}.tsv of album
      ids, or the authors' split (the paper's): their album-level set
      items_index_{split}_<dataset>.tsv, whose albums every modality
      follows, and optionally their track-level set, whose tracks audio
      then follows (release_split_sets). The release file has no split
      column: RELEASE_SPLITS is a PrepareError.
    seed: split seed.
    min_albums: keep labels on >= this many albums.
    skips: receives the CSV rows and review lines left out, albums (tracks
      of a track-level set) without a usable label, in a split file but not
      in the CSV, or in no split file, and unknown labels.

  Returns:
    The Corpus.
  """
  data_dir = epath.Path(data_dir)
  splits_dir = split_choice.checked_splits('mumu', splits)
  csv_path = next((data_dir / name for name in layout.MUMU_CSVS
                   if (data_dir / name).is_file()), None)
  if csv_path is None:
    raise prepare_corpus.PrepareError(
        f'{data_dir} has none of {list(layout.MUMU_CSVS)}; is --data a MuMu '
        'corpus directory?')
  labels_path = data_dir / layout.MUMU_LABELS_TSV
  taxonomy_path = data_dir / layout.MUMU_TAXONOMY_TSV
  dataset = mumu.load_mumu(
      csv_path,
      labels_path=labels_path if labels_path.is_file() else None,
      taxonomy_path=taxonomy_path if taxonomy_path.is_file() else None,
      min_albums=min_albums,
      on_bad_row=prepare_corpus.row_reporter(skips, csv_path))
  for label, n in dataset.unknown_labels.items():
    skips.add('labels', '', label, labels_path,
              f'unknown label: not in {layout.MUMU_LABELS_TSV}, dropped from '
              f'{n} album(s)')
  sets = split_choice.release_split_sets(splits_dir, {
      split_choice.ALBUM_IDS: set(dataset.albums).union(
          dataset.dropped_albums, dataset.lost_albums),
      split_choice.TRACK_IDS: dataset.track_album})
  if sets:
    splits = sets[split_choice.ALBUM_IDS].splits
  else:
    splits = split_choice.resolve_splits(
        lambda: splits_lib.mumu_splits(dataset, seed), splits_dir)
  origin = split_choice.SplitOrigin(splits_dir,
                                    sets.get(split_choice.ALBUM_IDS))
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
  unsplit = split_choice.report_unsplit(
      skips, dataset.albums, split_of, csv_path.name, origin.path(), 'album',
      origin.files())
  items, kept_splits = _mumu_items(
      data_dir, dataset, splits, reported, origin, csv_path, skips,
      with_audio=split_choice.TRACK_IDS not in sets)
  track_splits, tracks = {}, None
  if split_choice.TRACK_IDS in sets:
    items['audio'], track_splits, tracks = _track_set_items(
        data_dir, dataset, kept_splits,
        split_choice.SplitOrigin(splits_dir, sets[split_choice.TRACK_IDS]),
        csv_path, skips)
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
      'rows': prepare_corpus.count(
          'rows', dataset.rows, dataset.rows - dataset.skipped_rows,
          dataset.skipped_rows),
      'albums': prepare_corpus.count(
          'albums', albums, in_splits,
          len(dropped) + len(dataset.lost_albums) + unsplit),
      'review_lines': prepare_corpus.count(
          'review lines', reviews.lines,
          reviews.lines - reviews.skipped_lines, reviews.skipped_lines)}
  if tracks is not None:
    metadata['tracks'] = tracks
  return prepare_corpus.Corpus(
      'mumu', tuple(dataset.labels), kept_splits, items, reviews.texts,
      os.fspath(reviews_path), csv_path.name, metadata,
      track_splits=track_splits, **_release_source(splits_dir, sets))


def _release_source(splits_dir: str, sets: Mapping[str, splits_lib.SplitSet]
                    ) -> Dict[str, str]:
  """The Corpus's splits_source and splits_from of the authors' sets ({}
  without: the manifest's then follow from `splits`)."""
  if not sets:
    return {}
  return {'splits_source': split_choice.RELEASE_SPLITS,
          'splits_from': '; '.join(
              f'{os.path.join(splits_dir, s.files)} ({kind} ids)'
              for kind, s in sets.items())}


def _mumu_items(data_dir: epath.Path, dataset: mumu.MuMuDataset, splits,
                reported, origin: split_choice.SplitOrigin, csv_path,
                skips: prepare_corpus.SkipLog, *, with_audio: bool = True):
  """(modality -> split -> Items, split -> album ids kept) of MuMu.

  with_audio: False leaves items['audio'] empty (a track-level set makes
  them: _track_set_items).
  """
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
          skips.add('labels', name, album_id, origin.path(name),
                    f'album is in {origin.files(name)} but not in '
                    f'{csv_path.name}')
        continue
      kept_splits[name].append(album_id)
      labels = [index[label] for label in album.labels]
      for track_id in album.track_ids if with_audio else ():
        items['audio'][name].append(
            _audio_item(data_dir, name, track_id, album_id, labels))
      cover = prepare_corpus.find_file(data_dir / layout.COVERS_DIR, album_id,
                                       prepare_corpus.IMAGE_EXTENSIONS)
      items['image'][name].append(_item(
          name, album_id, {'album_id': album_id}, labels, cover,
          f'{layout.COVERS_DIR}/{album_id}.'
          f'{{{",".join(prepare_corpus.IMAGE_EXTENSIONS)}}}'))
      items['text'][name].append(
          prepare_corpus.Item(name, album_id, {'album_id': album_id}, labels))
  return items, kept_splits


def _track_set_items(data_dir: epath.Path, dataset: mumu.MuMuDataset,
                     kept_splits: Mapping[str, Sequence[str]],
                     origin: split_choice.SplitOrigin, csv_path,
                     skips: prepare_corpus.SkipLog):
  """The audio Items of MuMu by the authors' track-level set.

  Audio is the tracks of the albums kept (in kept_splits), each in the
  split of the track-level set, in its file order (its album's split may
  differ: counted in a warning). A track of the set not in the CSV (or of
  an album with no usable label) is reported; one of an album in no
  album-level file is not again (the album is).

  Returns:
    (split -> audio Items, split -> their track ids, the manifest's
    metadata count of `tracks`: the kept albums' tracks = in the set +
    reported in none of its files).
  """
  albums_of, album_split = {}, {}
  for name, album_ids in kept_splits.items():
    for album_id in album_ids:
      album_split[album_id] = name
      for track_id in dataset.albums[album_id].track_ids:
        albums_of.setdefault(track_id, []).append(album_id)
  index = dataset.label_index
  audio = {name: [] for name in kept_splits}
  track_splits = {name: [] for name in kept_splits}
  moved = 0
  for name, track_ids in origin.split_set.splits.items():
    for track_id in track_ids:
      if track_id not in albums_of:
        if track_id not in dataset.track_album:
          skips.add('labels', name, track_id, origin.path(name),
                    f'track is in {origin.files(name)} but not in '
                    f'{csv_path.name} (or its album has no usable label, or '
                    'every row of it is left out)')
        continue
      track_splits[name].append(track_id)
      for album_id in albums_of[track_id]:
        album = dataset.albums[album_id]
        audio[name].append(_audio_item(
            data_dir, name, track_id, album_id,
            [index[label] for label in album.labels]))
        moved += album_split[album_id] != name
  in_set = {t for track_ids in track_splits.values() for t in track_ids}
  unsplit = 0
  for album_id in album_split:
    for track_id in dataset.albums[album_id].track_ids:
      if track_id not in in_set:
        unsplit += 1
        skips.add('metadata', '', track_id, origin.path(),
                  f'track of album {album_id!r} is in {csv_path.name} but in '
                  f'none of {origin.files()}, so its audio is not prepared; '
                  'add it to a split file to use it')
  if moved:
    logging.warning('%d audio track(s) of %s are in another split than '
                    'their album in the album-level set.', moved,
                    origin.files())
  read = sum(len(dataset.albums[a].track_ids) for a in album_split)
  kept = sum(map(len, audio.values()))
  return audio, track_splits, prepare_corpus.count('tracks', read, kept,
                                                   unsplit)


@fileio.listed_folders()
def load_msdi_corpus(data_dir, *, splits=None, seed: int = 0,
                     skips: prepare_corpus.SkipLog) -> prepare_corpus.Corpus:
  """Reads an MSD-I corpus directory into per-modality Items.

  Args:
    data_dir: the corpus, with MSD-I_dataset.tsv; `image_url` is a path
      relative to it.
    splits: RELEASE_SPLITS (the `set` column, also when None),
      COMPUTED_SPLITS (msdi_splits with `seed`), or a directory of
      items_index_*.tsv of track ids: our own items_index_{split}.tsv, or
      one set of the authors' items_index_{split}_<dataset>.tsv
      (release_split_sets; `release` in the manifest).
    seed: split seed.
    skips: receives rows with an unknown genre (msdi.load_msdi leaves them
      out, in memory), malformed and repeated rows (with the release split:
      an empty or unknown `set` too), tracks in no split file and split
      entries not in the TSV.

  Returns:
    The Corpus.
  """
  data_dir = epath.Path(data_dir)
  tsv_path = data_dir / layout.MSDI_TSV
  if not tsv_path.is_file():
    raise prepare_corpus.PrepareError(
        f'{tsv_path} not found; is --data an MSD-I corpus directory?')

  def unknown_genre(track_id: str, genre: str, line: int) -> None:
    # One bad row must not stop the job: it is skipped and reported.
    skips.add('labels', '', track_id, tsv_path,
              f'unknown label {genre!r} (line {line}); MSD-I genres are '
              f'{list(msdi.MSDI_GENRES)}')

  splits_dir = split_choice.splits_arg('msdi', splits)
  # The release split needs the `set` column: without it the header is an
  # error naming the fix; an empty or unknown set is a bad row.
  dataset = msdi.load_msdi(
      tsv_path, on_unknown_genre=unknown_genre,
      on_bad_row=prepare_corpus.row_reporter(skips, tsv_path),
      require_set=splits_dir == split_choice.RELEASE_SPLITS)
  sets = split_choice.release_split_sets(
      splits_dir, {split_choice.TRACK_IDS: dataset.tracks})
  if sets:
    splits = sets[split_choice.TRACK_IDS].splits
  else:
    splits = split_choice.resolve_splits(
        lambda: splits_lib.msdi_splits(dataset, seed), splits_dir,
        dataset.release_splits)
  origin = split_choice.SplitOrigin(splits_dir,
                                    sets.get(split_choice.TRACK_IDS))
  split_of = {t: name for name, ids in splits.items() for t in ids}
  unsplit = split_choice.report_unsplit(
      skips, dataset.tracks, split_of, tsv_path.name, origin.path(), 'track',
      origin.files())
  index = dataset.genre_index
  items = {m: {name: [] for name in splits} for m in ('audio', 'image')}
  kept_splits = {}
  for name, track_ids in splits.items():
    kept_splits[name] = []
    for track_id in track_ids:
      track = dataset.tracks.get(track_id)
      if track is None:
        skips.add('labels', name, track_id, origin.path(name),
                  f'track is in {origin.files(name)} but not in '
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
      'rows': prepare_corpus.count('rows', dataset.rows, tracks,
                                   dataset.skipped_rows),
      'tracks': prepare_corpus.count(
          'tracks', tracks, sum(map(len, kept_splits.values())), unsplit)}
  return prepare_corpus.Corpus(
      'msdi', tuple(dataset.genres), kept_splits, items,
      metadata_file=tsv_path.name, metadata=metadata,
      **_release_source(splits_dir, sets))


def _msdi_image_item(data_dir: epath.Path, split: str,
                     track: msdi.MSDITrack, labels) -> prepare_corpus.Item:
  """The cover Item of an MSD-I track (image_url relative to --data)."""
  keys = {'track_id': track.track_id, 'album_id': track.album_index}
  if '://' in track.image_url:
    return prepare_corpus.Item(
        split, track.track_id, keys, labels,
        missing=f'remote image_url {track.image_url}; download the covers '
        'and give paths relative to --data', wanted=track.image_url)
  cover = data_dir / track.image_url if track.image_url else None
  return _item(split, track.track_id, keys, labels,
               cover if cover is not None and fileio.is_file(cover) else None,
               track.image_url or '(empty image_url)')

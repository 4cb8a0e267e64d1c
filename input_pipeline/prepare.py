"""`mmgenre prepare`: features of a corpus into TFRecord shards + manifest.

Reads a corpus directory (docs/data_formats.md §1), computes the features of
SPEC §2 for every item of every split and writes (docs/data_formats.md §3):

  OUT/splits/items_index_{train,val,test}.tsv   the splits used
  OUT/audio_stats.npz                           patch mean/std, train only
  OUT/text_vectorizer.json                      tf-idf, fitted on train only
  OUT/{audio,image,text}/{split}-{i:05d}-of-{n:05d}.tfrecord
  OUT/audio_windows/{split}-{i:05d}-of-{n:05d}.tfrecord
                                                whole-track prediction
                                                windows (not with
                                                --no-windows)
  OUT/skipped.tsv                               every input left out, and why
  OUT/manifest.json                             written last: the run is
                                                complete when it exists

Bad inputs never stop the job: a missing, empty or undecodable audio file or
cover, an album whose reviews are empty, an album with no known label are
skipped, named in skipped.tsv and counted; for every modality and split,
read = written + skipped.

  mmgenre prepare --dataset mumu --data runs/data/synthetic \
      --out runs/data/shards

Audio patches are computed in worker processes (SPEC §2: one seeded random
15 s crop per track) and stored raw; the reader standardises them with
audio_stats.npz. The same worker call, from the same decoded samples, cuts
the track's prediction windows (SPEC §2: 15 % dropped at each end, 322-frame
windows with 50 % overlap), one `audio_windows` record each, for every split;
a track that cannot be read is skipped (and reported) once, for both. This
module needs TensorFlow (to write TFRecords) but not JAX.
"""

import argparse
import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import datetime
import hashlib
import importlib.metadata
import io
import multiprocessing
import os
import pathlib
import platform
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from absl import logging
import numpy as np
import tqdm

from input_pipeline import features
from input_pipeline import fileio
from input_pipeline import msdi
from input_pipeline import mumu
from input_pipeline import splits as splits_lib
from input_pipeline import tfrecord

# Bumped when the manifest or record layout changes (2: audio_windows).
MANIFEST_VERSION = 2
MANIFEST = 'manifest.json'
SKIPPED = 'skipped.tsv'
SKIPPED_COLUMNS = ('stage', 'split', 'item_id', 'path', 'reason')
AUDIO_STATS = 'audio_stats.npz'
TEXT_VECTORIZER = 'text_vectorizer.json'
SPLITS_SUBDIR = 'splits'
# Corpus files (docs/data_formats.md §1). The multi-label MuMu file is the
# one the paper uses; the single-label release file has the same columns.
MUMU_CSVS = ('MuMu_dataset_multi-label.csv', 'MuMu_dataset_single-label.csv')
MUMU_LABELS = 'genre_labels_MuMu.tsv'
MUMU_TAXONOMY = 'genre_taxonomy.tsv'
REVIEWS = 'reviews.jsonl'
MSDI_TSV = 'MSD-I_dataset.tsv'
AUDIO_DIR = 'audio'
COVERS_DIR = 'covers'
AUDIO_EXTENSIONS = ('wav', 'flac', 'ogg', 'mp3')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')
# Records per shard: ~64 MB of audio patches (124 KB each), enough shards of
# the real MuMu train split (~116 K tracks) for dozens of hosts.
DEFAULT_SHARD_SIZE = 512
DEFAULT_IMAGE_SIZE = 224
# Futures in flight per worker: keeps the workers busy without holding every
# decoded patch of a large corpus in memory.
IN_FLIGHT_PER_WORKER = 4
STAGES = ('labels', 'audio', 'image', 'text')


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


def track_seed(seed: int, track_id: str) -> int:
  """The crop seed of a track: a stable hash of (seed, track id).

  Python's hash() changes between processes; sha256 does not, so the same
  seed gives the same patches on every run and worker count.
  """
  digest = hashlib.sha256(f'{seed}/{track_id}'.encode('utf-8')).digest()
  return int.from_bytes(digest[:4], 'little')


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
  path = find_file(data_dir / AUDIO_DIR, track_id, AUDIO_EXTENSIONS)
  looked_for = f'{AUDIO_DIR}/{track_id}.{{{",".join(AUDIO_EXTENSIONS)}}}'
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
  csv_path = next((data_dir / name for name in MUMU_CSVS
                   if (data_dir / name).is_file()), None)
  if csv_path is None:
    raise PrepareError(f'{data_dir} has none of {list(MUMU_CSVS)}; is '
                       '--data a MuMu corpus directory?')
  labels_path = data_dir / MUMU_LABELS
  taxonomy_path = data_dir / MUMU_TAXONOMY
  dataset = mumu.load_mumu(
      csv_path,
      labels_path=labels_path if labels_path.is_file() else None,
      taxonomy_path=taxonomy_path if taxonomy_path.is_file() else None,
      min_albums=min_albums)
  for label, n in dataset.unknown_labels.items():
    skips.add('labels', '', label, labels_path,
              f'unknown label: not in {MUMU_LABELS}, dropped from {n} '
              'album(s)')
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
      cover = find_file(data_dir / COVERS_DIR, album_id, IMAGE_EXTENSIONS)
      items['image'][name].append(_item(
          name, album_id, {'album_id': album_id}, labels, cover,
          f'{COVERS_DIR}/{album_id}.{{{",".join(IMAGE_EXTENSIONS)}}}'))
      items['text'][name].append(
          Item(name, album_id, {'album_id': album_id}, labels))
  reviews_path = data_dir / REVIEWS
  texts = {}
  if reviews_path.is_file():
    texts = mumu.load_reviews(reviews_path, album_ids=dataset.albums)
  else:
    logging.warning('%s not found: every album will be skipped for text.',
                    reviews_path)
  return Corpus('mumu', tuple(dataset.labels), kept_splits, items, texts,
                os.fspath(reviews_path))


def _filtered_msdi_tsv(tsv_path: pathlib.Path, skips: SkipLog) -> str:
  """Copies the MSD-I TSV without rows of unknown genre (they are skipped).

  msdi.load_msdi rejects the whole file on an unknown genre; here one bad row
  must not stop the job.
  """
  with open(tsv_path, encoding='utf-8-sig', newline='') as f:
    reader = csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE)
    columns = mumu.read_header(reader, tsv_path, msdi.MSDI_COLUMNS, 'tab')
    f.seek(0)
    lines = f.read().splitlines()
  out = [lines[0]]
  genre_at, track_at = columns['genre'], columns['msd_track_id']
  for line_number, line in enumerate(lines[1:], start=2):
    row = line.split('\t')
    if len(row) > max(genre_at, track_at) and row[genre_at].strip():
      try:
        msdi.canonical_genre(row[genre_at].strip())
      except ValueError:
        skips.add('labels', '', row[track_at].strip(), tsv_path,
                  f'unknown label {row[genre_at].strip()!r} (line '
                  f'{line_number}); MSD-I genres are {list(msdi.MSDI_GENRES)}')
        continue
    out.append(line)
  fd, tmp = tempfile.mkstemp(prefix='msdi-', suffix='.tsv')
  with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
    f.write('\n'.join(out) + '\n')
  return tmp


def load_msdi_corpus(data_dir, *, splits_dir=None, seed: int = 0,
                     skips: SkipLog) -> Corpus:
  """Reads an MSD-I corpus directory into per-modality Items.

  Args:
    data_dir: the corpus, with MSD-I_dataset.tsv; `image_url` is a path
      relative to it.
    splits_dir: items_index_*.tsv of track ids; computed (msdi_splits with
      `seed`) when None.
    seed: split seed.
    skips: receives rows with an unknown genre.

  Returns:
    The Corpus.
  """
  data_dir = pathlib.Path(data_dir)
  tsv_path = data_dir / MSDI_TSV
  if not tsv_path.is_file():
    raise PrepareError(f'{tsv_path} not found; is --data an MSD-I corpus '
                       'directory?')
  filtered = _filtered_msdi_tsv(tsv_path, skips)
  try:
    dataset = msdi.load_msdi(filtered)
  finally:
    os.remove(filtered)
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
                  f'track is in the split files but not in {MSDI_TSV} (or '
                  'its genre is unknown)')
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


class WorkerPool:
  """Runs feature functions in worker processes, results in input order.

  forkserver/spawn, not fork: the parent holds TensorFlow threads. A worker
  that crashes (a decoder segfault on a corrupt file) costs only the item it
  was working on: the pool is rebuilt and the remaining items resubmitted.
  """

  def __init__(self, workers: int):
    self.workers = workers
    self._pool = None

  def _new_pool(self):
    method = ('forkserver' if 'forkserver' in
              multiprocessing.get_all_start_methods() else 'spawn')
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=self.workers,
        mp_context=multiprocessing.get_context(method))

  def close(self):
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def map(self, fn: Callable, jobs: Sequence[Item],
          kwargs_fn: Callable[[Item], Dict[str, Any]]) -> Iterator[tuple]:
    """Yields (job, result, error) for every job, in order.

    Args:
      fn: a module-level function fn(path, **kwargs) (it is pickled).
      jobs: Items with a path.
      kwargs_fn: job -> keyword arguments of fn.
    """
    if self.workers <= 1:
      for job in jobs:
        try:
          yield job, fn(job.path, **kwargs_fn(job)), None
        except Exception as e:  # pylint: disable=broad-except
          yield job, None, e
      return
    jobs = list(jobs)
    window = self.workers * IN_FLIGHT_PER_WORKER
    # pending always holds jobs[position - len(pending):position], in order.
    position = 0
    pending = collections.deque()
    suspect = None  # The head job when the pool last broke.
    while position < len(jobs) or pending:
      if self._pool is None:
        self._pool = self._new_pool()
      # After a crash the head job runs alone, so a second crash names it.
      limit = 1 if suspect is not None else window
      while position < len(jobs) and len(pending) < limit:
        job = jobs[position]
        pending.append((job, self._pool.submit(fn, job.path,
                                               **kwargs_fn(job))))
        position += 1
      job, future = pending[0]
      try:
        result, error = future.result(), None
      except concurrent.futures.process.BrokenProcessPool:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        if suspect is job:
          pending.popleft()
          suspect = None
          yield job, None, RuntimeError(
              f'the worker process crashed twice reading {job.path}')
        else:
          suspect = job
        position -= len(pending)  # Resubmit what was in flight.
        pending.clear()
        continue
      except Exception as e:  # pylint: disable=broad-except
        result, error = None, e
      pending.popleft()
      if suspect is job:
        suspect = None
      yield job, result, error


def _reason(error: BaseException) -> str:
  if isinstance(error, features.FeatureError):
    return str(error)
  return f'{type(error).__name__}: {error}'


@dataclasses.dataclass
class ModalityResult:
  """What one modality wrote: counts and shards per split."""
  counts: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)
  shards: Dict[str, List[dict]] = dataclasses.field(default_factory=dict)
  vocab_size: Optional[int] = None  # Text only: the tf-idf vocabulary size.

  def record(self, split, read, written, skipped, shards, *,
             records: Optional[int] = None) -> None:
    """Counts in items, and records written (default: one per item)."""
    if read != written + skipped:
      raise AssertionError(
          f'{split}: read {read} != written {written} + skipped {skipped}; '
          'this is a bug in prepare.')
    self.counts[split] = {'read': read, 'written': written,
                          'skipped': skipped,
                          'records': written if records is None else records}
    self.shards[split] = [s.to_json() for s in shards]


@dataclasses.dataclass(frozen=True)
class Output:
  """A record kind written from the feature value of each item.

  Attributes:
    kind: the record kind (its directory under OUT and manifest key).
    specs: its feature specs.
    records: (item, value) -> the values of its records for the item; they
      are kept in one shard (ShardedWriter.write_group).
  """
  kind: str
  specs: Any
  records: Callable[[Item, Any], List[Dict[str, Any]]]


def _write_features(modality: str, corpus: Corpus, out: pathlib.Path,
                    outputs: Sequence[Output], pool: WorkerPool, fn: Callable,
                    kwargs_fn: Callable[[Item], Dict[str, Any]],
                    skips: SkipLog, shard_size: int, progress: bool,
                    on_value: Optional[Callable] = None
                    ) -> Dict[str, ModalityResult]:
  """Computes fn(path) for every item of a modality and writes the shards.

  An item that fails is skipped once (one skipped.tsv row, under `modality`)
  and left out of every output, so every output's counts, in items, are the
  same.

  Returns:
    output kind -> its result.
  """
  results = {output.kind: ModalityResult() for output in outputs}
  for split, items in corpus.items[modality].items():
    written = skipped = 0
    records = collections.Counter()
    with contextlib.ExitStack() as stack:
      writers = {output.kind: stack.enter_context(tfrecord.ShardedWriter(
          out / output.kind, split, shard_size=shard_size, root=out))
                 for output in outputs}
      ready = [item for item in items if item.path is not None]
      for item in items:
        if item.path is None:
          skips.add(modality, split, item.item_id, item.wanted, item.missing)
          skipped += 1
      bar = tqdm.tqdm(total=len(ready), desc=f'{modality} {split}',
                      unit='item', disable=not progress, leave=False)
      for item, value, error in pool.map(fn, ready, kwargs_fn):
        bar.update()
        if error is not None:
          skips.add(modality, split, item.item_id, item.path, _reason(error))
          skipped += 1
          continue
        for output in outputs:
          group = [tfrecord.encode_example(values, output.specs)
                   for values in output.records(item, value)]
          writers[output.kind].write_group(group)
          records[output.kind] += len(group)
        written += 1
        if on_value is not None:
          on_value(split, value)
      bar.close()
    # The writers are closed (shards renamed) when the `with` block ends.
    for output in outputs:
      results[output.kind].record(split, len(items), written, skipped,
                                  writers[output.kind].shards,
                                  records=records[output.kind])
  return results


def _value_output(kind: str, specs, value_key: str) -> Output:
  """One record per item: its keys, the value under `value_key`, labels."""
  return Output(kind, specs, lambda item, value: [
      {**item.keys, value_key: value, 'labels': item.labels}])


def audio_features(path, *, seed: int, windows: bool) -> tuple:
  """(patch, windows or None) of a track; runs in a worker process.

  Args:
    path: the audio file.
    seed: the patch crop seed (`track_seed`).
    windows: also cut the whole-track windows (one decode for both).

  Returns:
    patch: float32 [322, 96]; windows: float32 [n, 322, 96] or None.
  """
  if windows:
    return features.audio_patch_and_windows(path, seed=seed)
  return features.audio_patch(path, seed=seed), None


def _audio_outputs(specs: Dict[str, Any], windows: bool) -> List[Output]:
  outputs = [Output('audio', specs['audio'], lambda item, value: [
      {**item.keys, 'patch': value[0], 'labels': item.labels}])]
  if windows:
    outputs.append(Output(
        tfrecord.AUDIO_WINDOWS, specs[tfrecord.AUDIO_WINDOWS],
        lambda item, value: [
            {**item.keys, 'window': i, 'num_windows': len(value[1]),
             'patch': window, 'labels': item.labels}
            for i, window in enumerate(value[1])]))
  return outputs


class RunningStats:
  """Mean and std per (frame, bin) of the train patches, in float64."""

  def __init__(self, shape):
    self.count = 0
    self.sum = np.zeros(shape, np.float64)
    self.sum_sq = np.zeros(shape, np.float64)

  def add(self, patch: np.ndarray) -> None:
    patch = np.asarray(patch, np.float64)
    self.count += 1
    self.sum += patch
    self.sum_sq += patch * patch

  def mean_std(self):
    mean = self.sum / self.count
    var = np.maximum(self.sum_sq / self.count - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def _save_npz_atomic(path, **arrays) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  fileio.write_atomic(path, buffer.getvalue())


def prepare_text(corpus: Corpus, out: pathlib.Path, specs, *,
                 enrichment, skips: SkipLog, shard_size: int,
                 progress: bool) -> Optional[ModalityResult]:
  """Aggregates reviews, fits tf-idf on train, writes sparse text rows.

  Returns:
    The result, or None when no tf-idf vectorizer can be fitted on the
    training texts (none, or too few); every album is then skipped.
  """
  dictionary = features.read_enrichment(enrichment) if enrichment else None
  texts = {}
  result = ModalityResult()
  skipped = collections.Counter()
  for split, items in corpus.items['text'].items():
    for item in tqdm.tqdm(items, desc=f'text {split}', unit='album',
                          disable=not progress, leave=False):
      reviews = corpus.texts.get(item.item_id, [])
      text = features.aggregate_reviews(reviews) if reviews else ''
      if not text.strip():
        skips.add('text', split, item.item_id, corpus.reviews_path,
                  'empty review text: the album has no non-empty review'
                  if not reviews else 'empty review text after aggregation')
        skipped[split] += 1
        continue
      if dictionary is not None:
        text = features.enrich(text, dictionary)
      texts[split, item.item_id] = text
  train_texts = [text for (split, _), text in texts.items()
                 if split == 'train']
  try:
    vectorizer = features.fit_tfidf(train_texts)
  except features.FeatureError as e:
    # Too few (or identical) training texts: no vector space to write.
    logging.warning('No text shards: %s', e)
    for split, items in corpus.items['text'].items():
      for item in items:
        if (split, item.item_id) in texts:
          skips.add('text', split, item.item_id, corpus.reviews_path,
                    f'no tf-idf vectorizer: {e}')
          skipped[split] += 1
    return None
  features.save_vectorizer(vectorizer, out / TEXT_VECTORIZER)
  for split, items in corpus.items['text'].items():
    kept = [item for item in items if (split, item.item_id) in texts]
    with tfrecord.ShardedWriter(out / 'text', split, shard_size=shard_size,
                                root=out) as writer:
      if kept:
        rows = vectorizer.transform([texts[split, i.item_id] for i in kept])
        rows = rows.tocsr()
        rows.sort_indices()
      for row, item in enumerate(kept):
        span = slice(rows.indptr[row], rows.indptr[row + 1])
        writer.write(tfrecord.encode_example(
            {**item.keys, 'tfidf_indices': rows.indices[span],
             'tfidf_values': rows.data[span], 'labels': item.labels}, specs))
    result.record(split, len(items), len(kept), skipped[split],
                  writer.shards)
  result.vocab_size = len(vectorizer.vocabulary_)
  return result


def _versions() -> Dict[str, str]:
  versions = {'python': platform.python_version()}
  for package in ('mmgenre_jax', 'numpy', 'tensorflow', 'tensorflow-cpu',
                  'librosa', 'soundfile', 'scikit-learn', 'pillow'):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      pass
  return versions


def prepare(dataset: str,
            data_dir,
            out_dir,
            *,
            splits_dir=None,
            image_size: int = DEFAULT_IMAGE_SIZE,
            shard_size: int = DEFAULT_SHARD_SIZE,
            enrichment=None,
            workers: Optional[int] = None,
            seed: int = 0,
            min_albums: int = 1,
            windows: bool = True,
            progress: bool = True) -> Dict[str, Any]:
  """Writes the shards, statistics, skip report and manifest of a corpus.

  Args:
    dataset: 'mumu' or 'msdi'.
    data_dir: the corpus directory (docs/data_formats.md §1).
    out_dir: the output directory (created; an earlier manifest is removed
      first, so a crash never leaves a manifest over mixed shards).
    splits_dir: items_index_*.tsv to use; computed with `seed` when None.
    image_size: S of the stored [S, S, 3] covers.
    shard_size: records per shard.
    enrichment: entity dictionary (enrichment.tsv) to enrich review texts
      with; none when None.
    workers: processes for audio and images (default os.cpu_count()).
    seed: split seed and audio crop seed.
    min_albums: MuMu: keep labels on >= this many albums.
    windows: also write the whole-track `audio_windows` records of every
      split (SPEC §2 prediction); False is `--no-windows`.
    progress: show tqdm progress bars.

  Returns:
    The manifest (also in out_dir/manifest.json).
  """
  start = time.time()
  if dataset not in tfrecord.DATASET_MODALITIES:
    raise ValueError(f'Unknown dataset {dataset!r}; expected one of '
                     f'{list(tfrecord.DATASET_MODALITIES)}.')
  if image_size < 1 or shard_size < 1:
    raise ValueError(f'image_size ({image_size}) and shard_size '
                     f'({shard_size}) must be >= 1.')
  workers = (os.cpu_count() or 1) if workers is None else int(workers)
  if workers < 1:
    raise ValueError(f'workers={workers}; use 1 or more processes.')
  data_dir, out = pathlib.Path(data_dir), pathlib.Path(out_dir)
  if not data_dir.is_dir():
    raise PrepareError(f'--data {data_dir} is not a directory.')
  if enrichment is not None and not pathlib.Path(enrichment).is_file():
    raise PrepareError(f'--enrichment {enrichment} not found.')
  out.mkdir(parents=True, exist_ok=True)
  (out / MANIFEST).unlink(missing_ok=True)

  skips = SkipLog()
  if dataset == 'mumu':
    corpus = load_mumu_corpus(data_dir, splits_dir=splits_dir, seed=seed,
                              min_albums=min_albums, skips=skips)
  else:
    corpus = load_msdi_corpus(data_dir, splits_dir=splits_dir, seed=seed,
                              skips=skips)
  splits_lib.write_splits(corpus.splits, out / SPLITS_SUBDIR)
  patch_shape = (features.PATCH_FRAMES, features.N_BINS)
  kinds = tfrecord.DATASET_MODALITIES[dataset] + (
      (tfrecord.AUDIO_WINDOWS,) if windows else ())
  specs = {m: tfrecord.feature_specs(dataset, m, patch_shape=patch_shape,
                                     image_size=image_size)
           for m in kinds}
  if not windows:
    # Shards of an earlier run with windows would not match this manifest.
    for old in (out / tfrecord.AUDIO_WINDOWS).glob(
        f'*{tfrecord.SHARD_SUFFIX}'):
      old.unlink()
  results = {}
  stats = RunningStats(patch_shape)
  pool = WorkerPool(workers)
  try:
    results.update(_write_features(
        'audio', corpus, out, _audio_outputs(specs, windows), pool,
        audio_features,
        lambda item: {'seed': track_seed(seed, item.item_id),
                      'windows': windows},
        skips, shard_size, progress,
        on_value=lambda split, v: stats.add(v[0]) if split == 'train'
        else None))
    results.update(_write_features(
        'image', corpus, out, [_value_output('image', specs['image'],
                                             'image')],
        pool, features.load_image, lambda item: {'size': image_size}, skips,
        shard_size, progress))
  finally:
    pool.close()
  if stats.count == 0:
    raise PrepareError(
        'No training track has a usable audio file, so the standardisation '
        f'statistics cannot be computed; see {out / SKIPPED}.')
  mean, std = stats.mean_std()
  _save_npz_atomic(out / AUDIO_STATS, mean=mean, std=std,
                   count=np.int64(stats.count))
  vocab_size = None
  omitted = {}
  if not windows:
    omitted[tfrecord.AUDIO_WINDOWS] = 'prepared with --no-windows'
  if dataset == 'mumu':
    text = prepare_text(corpus, out, specs['text'], enrichment=enrichment,
                        skips=skips, shard_size=shard_size,
                        progress=progress)
    if text is not None:
      results['text'] = text
      vocab_size = text.vocab_size
    else:
      omitted['text'] = ('no tf-idf vectorizer could be fitted on the '
                         f'training texts; every album is in {SKIPPED}')
  skips.write(out / SKIPPED)

  modalities = {}
  for modality, result in results.items():
    modalities[modality] = {
        'features': tfrecord.specs_to_json(specs[modality]),
        'counts': result.counts,
        'shards': result.shards,
    }
  manifest = {
      'format_version': MANIFEST_VERSION,
      'complete': True,
      'dataset': dataset,
      'labels': list(corpus.labels),
      'num_labels': len(corpus.labels),
      'label_type': 'multi_hot' if dataset == 'mumu' else 'index',
      'image_size': image_size,
      'patch_shape': list(patch_shape),
      'audio_windows': ({'drop': features.WINDOW_DROP,
                         'overlap': features.WINDOW_OVERLAP,
                         'frames': features.PATCH_FRAMES}
                        if windows else None),
      'vocab_size': vocab_size,
      'image_mean': [float(v) for v in features.IMAGENET_MEAN],
      'image_std': [float(v) for v in features.IMAGENET_STD],
      'splits_dir': SPLITS_SUBDIR,
      'splits_source': (os.fspath(splits_dir) if splits_dir is not None
                        else f'computed (seed {seed})'),
      'split_sizes': {name: len(ids) for name, ids in corpus.splits.items()},
      'audio_stats': AUDIO_STATS,
      'audio_stats_count': stats.count,
      'text_vectorizer': TEXT_VECTORIZER if 'text' in results else None,
      'modalities': modalities,
      'omitted_modalities': omitted,
      'skipped': {stage: skips.count(stage) for stage in STAGES},
      'skipped_file': SKIPPED,
      'versions': _versions(),
      'args': {'dataset': dataset, 'data': os.fspath(data_dir),
               'out': os.fspath(out),
               'splits': None if splits_dir is None else os.fspath(
                   splits_dir),
               'image_size': image_size, 'shard_size': shard_size,
               'enrichment': None if enrichment is None else os.fspath(
                   enrichment),
               'workers': workers, 'seed': seed, 'min_albums': min_albums,
               'windows': windows},
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'elapsed_s': round(time.time() - start, 1),
  }
  fileio.write_json_atomic(out / MANIFEST, manifest)
  return manifest


def summary(manifest: Dict[str, Any]) -> str:
  """A table of written/skipped items per modality and split."""
  lines = [f'{manifest["dataset"]}: {manifest["num_labels"]} labels, '
           f'splits {manifest["split_sizes"]}, '
           f'{manifest["elapsed_s"]:.1f} s']
  lines.append(f'{"modality":<13} {"split":<6} {"read":>7} {"written":>8} '
               f'{"skipped":>8} {"records":>8} {"shards":>7}')
  for modality, entry in manifest['modalities'].items():
    for split, c in entry['counts'].items():
      lines.append(f'{modality:<13} {split:<6} {c["read"]:>7} '
                   f'{c["written"]:>8} {c["skipped"]:>8} '
                   f'{c.get("records", c["written"]):>8} '
                   f'{len(entry["shards"][split]):>7}')
  skipped = {k: v for k, v in manifest['skipped'].items() if v}
  lines.append(f'skipped: {skipped or "none"}'
               + (f' (reasons in {manifest["skipped_file"]})'
                  if skipped else ''))
  return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--dataset', required=True, choices=('mumu', 'msdi'),
                      help='Corpus format.')
  parser.add_argument('--data', required=True,
                      help='Corpus directory (docs/data_formats.md §1).')
  parser.add_argument('--out', required=True, help='Output directory.')
  parser.add_argument('--splits', default=None,
                      help='Directory with items_index_{train,val,test}.tsv '
                      '(default: computed with --seed).')
  parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE,
                      help=f'Side of the stored covers (default '
                      f'{DEFAULT_IMAGE_SIZE}).')
  parser.add_argument('--shard-size', type=int, default=DEFAULT_SHARD_SIZE,
                      help=f'Records per shard (default {DEFAULT_SHARD_SIZE}).')
  parser.add_argument('--enrichment', default=None,
                      help='mumu: entity dictionary (entity<TAB>categories) '
                      'to enrich review texts with (SPEC §2).')
  parser.add_argument('--workers', type=int, default=None,
                      help='Worker processes (default: all CPU cores).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Split and audio crop seed (default 0).')
  parser.add_argument('--min-albums', type=int, default=1,
                      help='mumu: keep labels on >= this many albums '
                      f'(the paper: {mumu.PAPER_MIN_ALBUMS}; default 1).')
  parser.add_argument('--no-windows', action='store_true',
                      help='Do not write the whole-track audio_windows '
                      'records (SPEC §2 prediction windows, every split); '
                      'faster and smaller, but whole-track evaluation and '
                      'extraction then cannot run on these shards.')
  parser.add_argument('--no-progress', action='store_true',
                      help='Hide the progress bars.')


def main(args: argparse.Namespace) -> int:
  try:
    manifest = prepare(
        args.dataset, args.data, args.out, splits_dir=args.splits,
        image_size=args.image_size, shard_size=args.shard_size,
        enrichment=args.enrichment, workers=args.workers, seed=args.seed,
        min_albums=args.min_albums, windows=not args.no_windows,
        progress=not args.no_progress)
  except (OSError, ValueError, PrepareError) as e:
    print(f'mmgenre prepare: error: {e}', file=sys.stderr)
    return 1
  print(summary(manifest))
  print(f'Shards and manifest written to {args.out}')
  return 0

"""The records `mmgenre prepare` writes, modality by modality.

A `MediaStep` says how a media modality's records are made: the feature
function of an Item's file and the record kinds (`Output`) written from its
value (audio gives `audio` and `audio_windows` records from one decode).
`item_records` turns one item's result into its encoded records or the
reason it is skipped. `write_features` runs a step over every Item of a
modality (in a `prepare_workers.WorkerPool`) and writes the shards, skipping,
once, an item whose input fails; `prepare_text` fits the tf-idf space on the
training texts (`album_text`) and writes the sparse rows (`text_records`).
Both count, per split, read = written + skipped (`ModalityResult`, the
manifest's `counts` and `shards`). `RunningStats` accumulates the training
patch statistics of audio_stats.npz. The same pieces make the Beam pipeline
(beam_prepare), so both executors write the same records. Needs TensorFlow
(to write TFRecords), not JAX.
"""

import collections
import contextlib
import dataclasses
import io
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from etils import epath
from absl import logging
import numpy as np
import tqdm

from input_pipeline import features
from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import workers as prepare_workers
from input_pipeline.records import tfrecord
from input_pipeline.features import text as text_lib


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
  records: Callable[[prepare_corpus.Item, Any], List[Dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class MediaStep:
  """How the records of one media modality are made from its Items' files.

  Attributes:
    fn: a module-level fn(path, **kwargs) -> value; it is pickled to the
      worker processes (prepare_workers.audio_features,
      features.image.load_image).
    kwargs: Item -> the keyword arguments of fn.
    outputs: the record kinds written from each value.
    stats: the first part of the training values (the audio patches) goes
      into audio_stats.npz.
  """
  fn: Callable
  kwargs: Callable[[prepare_corpus.Item], Dict[str, Any]]
  outputs: Sequence[Output]
  stats: bool = False


def _reason(error: BaseException) -> str:
  """The skipped.tsv reason of an item whose feature function raised."""
  if isinstance(error, features.FeatureError):
    return str(error)
  return f'{type(error).__name__}: {error}'


def _non_finite(value) -> Optional[str]:
  """Why a feature value must not be written (NaN or inf in it), or None.

  A float array with NaN would pass the encoder and poison training and the
  statistics; the item is skipped instead, like one that cannot be read.
  """
  parts = value if isinstance(value, tuple) else (value,)
  for part in parts:
    if (isinstance(part, np.ndarray) and part.dtype.kind == 'f' and
        not np.all(np.isfinite(part))):
      return (f'the features hold {int(np.sum(~np.isfinite(part)))} NaN or '
              'infinite values; the item is not written')
  return None


def item_records(outputs: Sequence[Output], item: prepare_corpus.Item,
                 value: Any, error: Optional[BaseException]
                 ) -> Tuple[Optional[str], Dict[str, List[bytes]]]:
  """What one item's feature result becomes.

  Args:
    outputs: the record kinds written from a value.
    item: the item.
    value, error: the feature function's result (prepare_workers.run_job).

  Returns:
    (the skipped.tsv reason, {}) when the item is skipped, else (None,
    output kind -> the item's serialised records, kept in one shard).
  """
  reason = _reason(error) if error is not None else _non_finite(value)
  if reason is not None:
    return reason, {}
  return None, {output.kind: [tfrecord.encode_example(values, output.specs)
                              for values in output.records(item, value)]
                for output in outputs}


def write_features(modality: str, corpus: prepare_corpus.Corpus,
                   out: epath.Path, step: MediaStep,
                   pool: prepare_workers.WorkerPool,
                   skips: prepare_corpus.SkipLog, shard_size: int,
                   progress: bool, on_value: Optional[Callable] = None
                   ) -> Dict[str, ModalityResult]:
  """Runs a step over every item of a modality and writes the shards.

  An item that fails is skipped once (one skipped.tsv row, under `modality`)
  and left out of every output, so every output's counts, in items, are the
  same.

  Returns:
    output kind -> its result.
  """
  outputs = step.outputs
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
          skips.add_missing(modality, item)
          skipped += 1
      bar = tqdm.tqdm(total=len(ready), desc=f'{modality} {split}',
                      unit='item', disable=not progress, leave=False)
      for item, value, error in pool.map(step.fn, ready, step.kwargs):
        bar.update()
        reason, groups = item_records(outputs, item, value, error)
        if reason is not None:
          skips.add(modality, split, item.item_id, item.path, reason)
          skipped += 1
          continue
        for kind, group in groups.items():
          writers[kind].write_group(group)
          records[kind] += len(group)
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


def value_output(kind: str, specs, value_key: str) -> Output:
  """One record per item: its keys, the value under `value_key`, labels."""
  return Output(kind, specs, lambda item, value: [
      {**item.keys, value_key: value, 'labels': item.labels}])


def audio_outputs(specs: Dict[str, Any], windows: bool) -> List[Output]:
  """Records of a `prepare_workers.audio_features` value (patch, windows).

  One `audio` record of the patch and, with `windows`, one `audio_windows`
  record per window of the track (kept together in one shard).
  """
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

  def merge(self, other: 'RunningStats') -> 'RunningStats':
    """Adds the patches of another accumulator (partial sums of a Beam
    combine); returns self."""
    self.count += other.count
    self.sum += other.sum
    self.sum_sq += other.sum_sq
    return self

  def mean_std(self):
    mean = self.sum / self.count
    var = np.maximum(self.sum_sq / self.count - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def save_npz_atomic(path, **arrays) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  fileio.write_atomic(path, buffer.getvalue())


def save_audio_stats(out: epath.Path, stats: RunningStats) -> None:
  """OUT/audio_stats.npz: mean and std [frames, bins] float32, count."""
  mean, std = stats.mean_std()
  save_npz_atomic(out / layout.AUDIO_STATS_NPZ, mean=mean, std=std,
                  count=np.int64(stats.count))


def check_stats_count(count: int, out: epath.Path) -> None:
  """A TooManySkippedError when no training patch went into the
  statistics: every training track was tried and skipped."""
  if count == 0:
    raise prepare_corpus.TooManySkippedError(
        'No training track has a usable audio file, so the standardisation '
        f'statistics cannot be computed; see {out / layout.SKIPPED_TSV}.')


def check_enrichment(path) -> None:
  """Reads --enrichment before any work: a PrepareError when it is no file,
  the FeatureError of its first bad line (read_enrichment), not after the
  media shards are written."""
  if not epath.Path(path).is_file():
    raise prepare_corpus.PrepareError(f'--enrichment {path} not found.')
  text_lib.read_enrichment(path)


def album_text(reviews: Sequence[str], dictionary=None
               ) -> Tuple[Optional[str], Optional[str]]:
  """The text of an album from its reviews (Sec 7.3.2).

  Args:
    reviews: the album's review texts.
    dictionary: the enrichment entities (text_lib.read_enrichment), or None.

  Returns:
    (text, None), or (None, the skipped.tsv reason) when it is empty.
  """
  text = text_lib.aggregate_reviews(reviews) if reviews else ''
  if not text.strip():
    return None, ('empty review text: the album has no non-empty review'
                  if not reviews else 'empty review text after aggregation')
  if dictionary is not None:
    text = text_lib.enrich(text, dictionary)
  return text, None


def no_vectorizer_reason(error: BaseException) -> str:
  """The skipped.tsv reason of a text when no tf-idf space can be fitted."""
  return f'no tf-idf vectorizer: {error}'


def text_records(vectorizer, items: Sequence[prepare_corpus.Item],
                 texts: Sequence[str], specs) -> List[bytes]:
  """The serialised text records of items, one each.

  Args:
    vectorizer: the fitted tf-idf space (text_lib.fit_tfidf).
    items: the albums.
    texts: their texts (album_text), in the same order.
    specs: the text feature specs.

  Returns:
    One record per item: its keys, the sorted indices and values of its
    L2-normalised tf-idf row, its labels. A row depends on its text alone,
    so any batching of the items gives the same records.
  """
  if not items:
    return []
  rows = vectorizer.transform(list(texts)).tocsr()
  rows.sort_indices()
  records = []
  for row, item in enumerate(items):
    span = slice(rows.indptr[row], rows.indptr[row + 1])
    records.append(tfrecord.encode_example(
        {**item.keys, 'tfidf_indices': rows.indices[span],
         'tfidf_values': rows.data[span], 'labels': item.labels}, specs))
  return records


def prepare_text(corpus: prepare_corpus.Corpus, out: epath.Path, specs, *,
                 enrichment, skips: prepare_corpus.SkipLog, shard_size: int,
                 progress: bool) -> Optional[ModalityResult]:
  """Aggregates reviews, fits tf-idf on train, writes sparse text rows.

  Returns:
    The result, or None when no tf-idf vectorizer can be fitted on the
    training texts (none, or too few); every album is then skipped.
  """
  dictionary = text_lib.read_enrichment(enrichment) if enrichment else None
  texts = {}
  result = ModalityResult()
  skipped = collections.Counter()
  for split, items in corpus.items['text'].items():
    for item in tqdm.tqdm(items, desc=f'text {split}', unit='album',
                          disable=not progress, leave=False):
      text, reason = album_text(corpus.texts.get(item.item_id, []),
                                dictionary)
      if reason is not None:
        skips.add('text', split, item.item_id, corpus.reviews_path, reason)
        skipped[split] += 1
        continue
      texts[split, item.item_id] = text
  train_texts = [text for (split, _), text in texts.items()
                 if split == 'train']
  try:
    vectorizer = text_lib.fit_tfidf(train_texts)
  except features.FeatureError as e:
    # Too few (or identical) training texts: no vector space to write.
    logging.warning('No text shards: %s', e)
    for split, items in corpus.items['text'].items():
      for item in items:
        if (split, item.item_id) in texts:
          skips.add('text', split, item.item_id, corpus.reviews_path,
                    no_vectorizer_reason(e))
          skipped[split] += 1
    return None
  text_lib.save_vectorizer(vectorizer, out / layout.TEXT_VECTORIZER_JSON)
  for split, items in corpus.items['text'].items():
    kept = [item for item in items if (split, item.item_id) in texts]
    with tfrecord.ShardedWriter(out / 'text', split, shard_size=shard_size,
                                root=out) as writer:
      for record in text_records(
          vectorizer, kept, [texts[split, i.item_id] for i in kept], specs):
        writer.write(record)
    result.record(split, len(items), len(kept), skipped[split],
                  writer.shards)
  result.vocab_size = len(vectorizer.vocabulary_)
  return result

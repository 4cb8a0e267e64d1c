"""Data sources of training and evaluation: what a network reads, batched.

Two sources give the same interface (eval_kind, num_batches, batches):

- ShardSource: a shard network (registry: `shard_input`) reads the
  records of `mmgenre prepare` through tf.data: its TFRecord shards
  (config.data.source 'shards', input_pipeline/records/shard_reader.py) or
  the TFDS datasets built from them ('tfds', input_pipeline/tfds/reader.py),
  the same batches either way (open_data).
- RepresentationSource: a fusion / alignment stage (registry:
  `reads_representations`) reads the representations extracted by earlier
  stages, joined by item (mmgenre_jax/data/representations.py,
  docs/workdirs.md §2).

Their batches are this process's share of a global batch, as numpy:
  the network input(s) [B, ...] (ShardSource: registry.shard_input(config)[1],
    e.g. 'patch' float32 [B, frames, bins, 1], 'tfidf' float32 [B, V] or
    'image' float32 [B, S, S, 3];
    RepresentationSource: registry.INPUT_PREFIX + name, float32 [B, R_name]),
  'labels' multi-hot float32 [B, L] or class ids int32 [B],
  'mask' float32 [B] (0 on padding rows),
  'ids' str [B] (track ids where the records have them, else album ids) and
  'album_ids' str [B].
Every process yields the same number of batches (padding with mask 0), so
multi-host steps stay in lockstep. device_batch.model_batch turns one into
the global jax arrays of a step.
"""

import os
from typing import Dict, Iterator, Mapping, Optional, Tuple

from absl import logging
import jax
import ml_collections
import numpy as np

from input_pipeline.records import shard_reader
from input_pipeline.records import tfrecord
from mmgenre_jax import errors
from mmgenre_jax.data import representations
from mmgenre_jax.models import registry


# config.data.source: where a shard network reads its records (open_data).
SOURCES = ('shards', 'tfds')
# Per-epoch shuffling seed = seed * EPOCH_SEED_STRIDE + epoch (mod 2**31):
# every epoch has its own order, the same in every run with the same seed.
EPOCH_SEED_STRIDE = 1_000_003


def _pad_rows(value: np.ndarray, size: int) -> np.ndarray:
  """Pads axis 0 to `size` with zeros ('' for strings)."""
  value = np.asarray(value)
  if len(value) == size:
    return value
  padding = np.zeros((size - len(value),) + value.shape[1:], value.dtype)
  return np.concatenate([value, padding])


def array_batches(arrays: Mapping[str, np.ndarray], batch_size: int, *,
                  order: Optional[np.ndarray] = None,
                  skip: int = 0) -> Iterator[Dict[str, np.ndarray]]:
  """This process's slices of global batches of in-memory rows.

  Global batch b holds rows order[b * G:(b + 1) * G], G = batch_size *
  process_count; process p feeds its p-th slice of batch_size rows, padded
  (mask 0) where the rows run out, so every process runs the same steps.

  Args:
    arrays: key -> [N, ...] (same N).
    batch_size: this process's rows per batch.
    order: row order (default: 0..N-1).
    skip: batches to skip (a resumed epoch).

  Yields:
    key -> [batch_size, ...] plus 'mask' float32 [batch_size].
  """
  n = len(next(iter(arrays.values())))
  order = np.arange(n) if order is None else np.asarray(order)
  global_size = batch_size * jax.process_count()
  start = jax.process_index() * batch_size
  for b in range(skip, -(-n // global_size)):
    rows = order[b * global_size:(b + 1) * global_size][
        start:start + batch_size]
    batch = {k: _pad_rows(np.asarray(v)[rows], batch_size)
             for k, v in arrays.items()}
    batch['mask'] = _pad_rows(np.ones(len(rows), np.float32), batch_size)
    yield batch


def _padded(batches: Iterator[Dict[str, np.ndarray]],
            num_batches: int) -> Iterator[Dict[str, np.ndarray]]:
  """Exactly num_batches batches; after the data ends, all-padding ones.

  Every process must run the same number of steps; a process whose share of
  the shards is smaller feeds batches with mask 0 (ignored by the losses and
  metrics).
  """
  last = None
  for _ in range(num_batches):
    batch = next(batches, None)
    if batch is None:
      if last is None:
        raise ValueError('A process has no data at all for this split; '
                         'prepare the shards with more files per split.')
      batch = {k: np.zeros_like(v) for k, v in last.items()}
    last = batch
    yield batch


def epoch_seed(seed: int, epoch: int) -> int:
  """The shuffling seed of one training epoch (EPOCH_SEED_STRIDE)."""
  return (int(seed) * EPOCH_SEED_STRIDE + int(epoch)) % (2**31 - 1)


def open_data(config: ml_collections.ConfigDict):
  """The records of a shard network, after config.data.source.

  Returns:
    shard_reader.ShardData (source 'shards': config.data.shard_dir) or
    input_pipeline.tfds.reader.TfdsData (source 'tfds': the datasets
    `{config.data.dataset}/{kind}` in config.data.tfds_data_dir); the two
    give the same manifest keys and batches.

  Raises:
    errors.ConfigError: an unknown source, or source 'shards' without
      config.data.shard_dir.
    input_pipeline.records.shard_reader.ManifestError: nothing prepared or built
    there.
  """
  source = config.data.get('source') or 'shards'
  if source == 'tfds':
    # Imported here: TFDS is not needed to read shards.
    # pylint: disable-next=g-import-not-at-top
    from input_pipeline.tfds import reader as tfds_data
    return tfds_data.TfdsData(config.data.dataset,
                              config.data.get('tfds_data_dir') or None)
  if source != 'shards':
    raise errors.ConfigError(
        f'config.data.source={source!r}; use one of {SOURCES}.')
  if not config.data.get('shard_dir'):
    raise errors.ConfigError(
        'config.data.shard_dir is empty; set --config.data.shard_dir to '
        'the --out directory of `mmgenre prepare` (or read TFDS datasets '
        'with --config.data.source=tfds).')
  return shard_reader.ShardData(config.data.shard_dir)


def as_data(data):
  """open_data's records, given them or a shard directory (str or path)."""
  if isinstance(data, (str, os.PathLike)):
    return shard_reader.ShardData(data)
  return data


class ShardSource:
  """Batches of a shard network: its records (open_data) via tf.data.

  Every batch has the network input, 'labels', 'mask', and 'ids' (track ids
  where the records have them, else album ids) and 'album_ids' (str).
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.data = open_data(config)
    self.manifest = self.data.manifest
    self.modality, self.input_key = registry.shard_input(config)
    # Training augmentation of covers (augment.ImageAugment fields).
    augment = config.data.get('image_augment')
    self.image_augment = None if augment is None else dict(augment)

  def eval_kind(self, split: str, extract: bool) -> Tuple[str, bool, bool]:
    """(record kind, average windows per track, average tracks per album).

    Audio networks are tested and extracted on whole tracks
    (docs/fidelity.md), and on MuMu per album (paper Sec 7.3.1, albums from
    their tracks); validation during training keeps the single patch per
    track.
    """
    if self.modality != 'audio' or not (extract or split == 'test'):
      return self.modality, False, False
    by_album = self.manifest['dataset'] in tfrecord.ALBUM_DATASETS
    if split in self.data.splits(tfrecord.AUDIO_WINDOWS):
      return tfrecord.AUDIO_WINDOWS, True, by_album
    logging.warning(
        '%s has no %s %s records (prepared with --no-windows?): predicting '
        'each track from its single training patch instead of its whole-'
        'track windows.', self.data.where, tfrecord.AUDIO_WINDOWS, split)
    return self.modality, False, by_album

  def num_batches(self, split: str, batch_size: int,
                  kind: Optional[str] = None) -> int:
    """Batches per pass, the same on every process (the longest share)."""
    count = jax.process_count()
    sizes = [self.data.num_examples(kind or self.modality, split,
                                    process_index=i, process_count=count)
             for i in range(count)]
    return max(-(-n // batch_size) for n in sizes)

  def batches(self, split: str, batch_size: int, *,
              kind: Optional[str] = None, seed: Optional[int] = None,
              skip: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    """One pass over a split (shuffled by `seed` when given)."""
    kind = kind or self.modality
    ds = self.data.make_dataset(
        kind, split, batch_size=batch_size,
        shuffle=seed is not None, seed=seed or 0, pad_final_batch=True,
        image_augment=self.image_augment)
    batches = _padded(shard_reader.as_numpy_batches(ds),
                      self.num_batches(split, batch_size, kind))
    for index, batch in enumerate(batches):
      if index >= skip:
        batch['ids'] = batch.get('track_id', batch['album_id'])
        batch['album_ids'] = batch['album_id']
        yield batch


class RepresentationSource:
  """Batches of a fusion / alignment stage: joined extracted rows."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.inputs = {k: str(v) for k, v in
                   (config.data.get('inputs') or {}).items()}
    self._joined: Dict[str, representations.Joined] = {}

  def split(self, split: str) -> representations.Joined:
    if split not in self._joined:
      self._joined[split] = representations.load_joined(self.inputs, split)
    return self._joined[split]

  def eval_kind(self, split: str, extract: bool) -> Tuple[None, bool, bool]:
    del split, extract  # Rows are already items.
    return None, False, False

  def num_batches(self, split: str, batch_size: int,
                  kind: Optional[str] = None) -> int:
    del kind
    return -(-len(self.split(split)) // (batch_size * jax.process_count()))

  def arrays(self, split: str) -> Dict[str, np.ndarray]:
    joined = self.split(split)
    labels = joined.labels
    labels = (labels.astype(np.float32) if labels.ndim == 2
              else labels.astype(np.int32))
    arrays = {registry.INPUT_PREFIX + n: v for n, v in joined.inputs.items()}
    arrays.update(labels=labels, ids=joined.ids, album_ids=joined.album_ids)
    return arrays

  def batches(self, split: str, batch_size: int, *,
              kind: Optional[str] = None, seed: Optional[int] = None,
              skip: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    del kind
    n = len(self.split(split))
    order = (None if seed is None
             else np.random.default_rng(seed).permutation(n))
    return array_batches(self.arrays(split), batch_size, order=order,
                         skip=skip)


def make_source(config: ml_collections.ConfigDict):
  """ShardSource or RepresentationSource, after config.model.name."""
  if registry.network(config.model).reads_representations:
    return RepresentationSource(config)
  return ShardSource(config)

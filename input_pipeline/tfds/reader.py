"""The trainer's reader of the TFDS datasets built by input_pipeline/tfds.

  data = tfds_data.TfdsData('mumu', data_dir='runs/tfds')
  data.manifest['labels']             # the preparation's manifest
  ds = data.make_dataset('audio', 'train', batch_size=32, shuffle=True)
  for batch in shard_reader.as_numpy_batches(ds):
    batch['patch']                     # float32 [32, 322, 96, 1], as shards

Each record kind is its own dataset, `{dataset}/{kind}` (mumu/audio,
mumu/audio_windows, mumu/image, mumu/text), in one TFDS data_dir. TfdsData
reads the ones built there and offers what shard_reader.ShardData offers on
shards (the interface mmgenre_jax/data/sources.py reads): the manifest of
the preparation (kept in each dataset's metadata.json), and batches made by
shard_reader.batch_records, the shard reader's own decoding, standardisation
(with the audio_stats.npz kept beside each dataset), crops, shuffles and
padding.

Order. A dataset keeps the shards' record order (the builders disable TFDS's
shuffling), so an unshuffled pass gives the records in shard order; a
shuffled one shuffles the files, then the records with the shard reader's
buffer and seeds. Where the shards and the TFDS dataset split a split into
the same files (one file each: a split under prepare's DEFAULT_SHARD_SIZE
records and TFDS's shard size), shuffled batches are the same as well;
otherwise they are another, equally random, order.

Per-host sharding: process p of n reads tfds.split_for_jax_process(split,
process_index=p, process_count=n), an even share of the examples (the shard
reader deals whole shard files instead).

The datasets are read from their files (read_only_builder, as tfds.builder
does for datasets without code): a config of other settings built into
another data_dir under a standard name reads the same way.
"""

import logging
import os
from typing import Any, Dict, List, Optional

from etils import epath
import tensorflow_datasets as tfds
from tensorflow_datasets.core import read_only_builder

from input_pipeline.records import shard_reader
from input_pipeline import startup
from input_pipeline.records import tfrecord

tf = startup.import_tensorflow()

# The datasets with a TFDS builder (input_pipeline/tfds/{mumu,msdi}.py); a
# catalog has none.
DATASETS = ('mumu', 'msdi')
# The metadata.json key of the preparation's manifest (written by
# input_pipeline/tfds/prepared.py).
MANIFEST_KEY = 'manifest'

# Manifest fields that describe one record kind's records: taken from that
# kind's dataset (an image dataset may be built at another image_size).
KIND_FIELDS = {'image': ('image_size', 'stored_image_size', 'image_mean',
                         'image_std'),
               'text': ('vocab_size', 'text_vectorizer')}
# Fields every dataset of one data_dir must agree on: one label space, one
# split, so that the label factors and the fusion stages join.
SHARED_FIELDS = ('dataset', 'labels', 'label_type', 'split_sizes')

# TFDS warns on every shuffled read of an ordered dataset (one line per
# epoch); make_dataset shuffles on purpose, so that line is dropped.
ORDERED_READ_WARNING = ("Dataset is an ordered dataset "
                        "('disable_shuffling=True')")


class _DropOrderedReadWarning(logging.Filter):
  """Drops ORDERED_READ_WARNING records."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ORDERED_READ_WARNING)


logging.getLogger('absl').addFilter(_DropOrderedReadWarning())


class TfdsData:
  """The built `{dataset}/{kind}` datasets of a TFDS data_dir.

  Attributes:
    dataset: 'mumu' or 'msdi'.
    data_dir: the TFDS data_dir (TFDS's default when none is given).
    where: a description for messages.
    manifest: the preparation's manifest, its `modalities` the built kinds
      (their `features` and `counts`; no shard lists).
  """

  def __init__(self, dataset: str, data_dir: Optional[str] = None):
    if dataset not in DATASETS:
      raise ValueError(f'No TFDS builder for dataset {dataset!r}; there are '
                       f'{list(DATASETS)} (input_pipeline/tfds).')
    self.dataset = dataset
    self.data_dir = os.fspath(data_dir or tfds.core.constants.DATA_DIR)
    self.where = f'TFDS {dataset} in {self.data_dir}'
    self._builders = {}
    self._manifests = {}
    for kind in (tfrecord.DATASET_MODALITIES[dataset] +
                 (tfrecord.AUDIO_WINDOWS,)):
      self._open(kind)
    if not self._builders:
      raise shard_reader.ManifestError(
          f'No {dataset} dataset is built in {self.data_dir}; build them '
          f'with `mmgenre tfds {dataset} --manual-dir CORPUS --data-dir '
          f'{self.data_dir}` (docs/scale.md).')
    self.manifest = self._merged_manifest()

  def _open(self, kind: str) -> None:
    """Reads the dataset of one kind, when a finished one is there."""
    # Looked for first: TFDS logs an error for every name it cannot find.
    if not (epath.Path(self.data_dir) / self.dataset / kind).is_dir():
      return
    name = f'{self.dataset}/{kind}'
    try:
      builder = read_only_builder.builder_from_files(name,
                                                     data_dir=self.data_dir)
    except tfds.core.DatasetNotFoundError:
      return  # Only an unfinished build (incomplete.*) is there.
    manifest = builder.info.metadata.get(MANIFEST_KEY)
    if not isinstance(manifest, dict):
      raise shard_reader.ManifestError(
          f'{builder.data_dir} has no {MANIFEST_KEY!r} in its metadata.json:'
          f' it was not built by input_pipeline/tfds; build {name} again '
          'with `mmgenre tfds`.')
    self._builders[kind] = builder
    self._manifests[kind] = manifest

  def _merged_manifest(self) -> Dict[str, Any]:
    """One manifest for every built kind (SHARED_FIELDS checked)."""
    kinds = list(self._manifests)
    first = self._manifests[kinds[0]]
    merged = dict(first)
    merged['modalities'] = {}
    for kind, manifest in self._manifests.items():
      differ = [key for key in SHARED_FIELDS
                if manifest.get(key) != first.get(key)]
      if differ:
        raise shard_reader.ManifestError(
            f'{self.where}: {self.dataset}/{kind} and '
            f'{self.dataset}/{kinds[0]} differ in {differ}: they were built '
            'from other corpora or splits; build every config from the same '
            'corpus and settings.')
      merged['modalities'][kind] = manifest['modalities'][kind]
      for key in KIND_FIELDS.get(kind, ()):
        merged[key] = manifest.get(key)
    return merged

  def _builder(self, kind: str):
    if kind not in self._builders:
      raise shard_reader.ManifestError(
          f'{self.where} has no {self.dataset}/{kind} dataset (it has '
          f'{sorted(self._builders)}); build it with `mmgenre tfds '
          f'{self.dataset}/{kind} --manual-dir CORPUS --data-dir '
          f'{self.data_dir}`.')
    return self._builders[kind]

  def splits(self, kind: str) -> List[str]:
    """The splits of a record kind ([] when it is not built)."""
    builder = self._builders.get(kind)
    return list(builder.info.splits) if builder is not None else []

  def _process_split(self, kind: str, split: str, process_index,
                     process_count):
    """(builder, this process's sub-split, its example count)."""
    builder = self._builder(kind)
    if split not in builder.info.splits:
      raise ValueError(f'{self.where}: {self.dataset}/{kind} has no split '
                       f'{split!r}; it has {list(builder.info.splits)}.')
    process_index, process_count = shard_reader.process_defaults(process_index,
                                                             process_count)
    subsplit = tfds.split_for_jax_process(split, process_index=process_index,
                                          process_count=process_count)
    return builder, subsplit, builder.info.splits[subsplit].num_examples

  def num_examples(self, kind: str, split: str, *,
                   process_index: Optional[int] = None,
                   process_count: Optional[int] = None) -> int:
    """Records this process reads per epoch of a split."""
    return self._process_split(kind, split, process_index, process_count)[2]

  def make_dataset(self, kind: str, split: str, *, shuffle: bool = False,
                   seed: int = 0, process_index: Optional[int] = None,
                   process_count: Optional[int] = None,
                   **batching: Any) -> tf.data.Dataset:
    """pipeline.make_dataset's batches, from the TFDS dataset of a kind.

    Args:
      kind: 'audio', 'audio_windows', 'image' or 'text'.
      split: 'train', 'val' or 'test'.
      shuffle: shuffle files and records (and augment covers), as
        make_dataset.
      seed: shuffling and augmentation seed.
      process_index: this process; default jax.process_index().
      process_count: processes; default jax.process_count().
      **batching: make_dataset's batch_size, repeat, drop_remainder,
        pad_final_batch and image_augment.

    Returns:
      make_dataset's dataset of batches.
    """
    startup.hide_gpus_from_tf()
    builder, subsplit, records = self._process_split(
        kind, split, process_index, process_count)
    if not records:
      raise ValueError(
          f'{self.where}: {self.dataset}/{kind} {split} has no example for '
          f'{subsplit}; run fewer processes than the split has examples.')
    # The shard reader's file order: up to 4 files at a time when
    # shuffling, one after the other (the stored order) otherwise. The
    # ordering guard refuses shuffled reads of an ordered dataset; here they
    # are meant.
    read_config = tfds.ReadConfig(
        shuffle_seed=seed, interleave_cycle_length=4 if shuffle else 1,
        interleave_block_length=1, try_autocache=False,
        enable_ordering_guard=False)
    ds = builder.as_dataset(split=subsplit, shuffle_files=shuffle,
                            read_config=read_config)
    # TFDS examples are already parse_example's dicts.
    return shard_reader.batch_records(
        ds, self._manifests[kind], builder.data_dir, kind,
        parse=lambda example: example, records=records,
        batching=shard_reader.Batching(shuffle=shuffle, seed=seed,
                                       **batching))

  def album_labels(self, kind: str, split: str) -> tf.data.Dataset:
    """(album_id tf.string, label indices int64 [n]) of every record.

    Only the two keys are decoded (the label factors read every album).
    """
    builder, _, _ = self._process_split(kind, split, 0, 1)
    ds = builder.as_dataset(
        split=split,
        decoders=tfds.decode.PartialDecoding({'album_id': True,
                                              'labels': True}),
        read_config=tfds.ReadConfig(interleave_cycle_length=1,
                                    try_autocache=False))
    return ds.map(lambda e: (e['album_id'], tf.reshape(e['labels'], [-1])))


"""tf.data reader of the shards written by `mmgenre prepare`.

  ds = shard_reader.make_dataset('runs/data/shards', 'audio', 'train',
                                 batch_size=32, shuffle=True, repeat=True)
  for batch in shard_reader.as_numpy_batches(ds):
    batch['patch']   # float32 [32, 322, 96, 1], standardised (train stats)
    batch['labels']  # float32 [32, L] multi-hot (MuMu) | int32 [32] (MSD-I)
    batch['mask']    # float32 [32]: 1 for real examples, 0 for padding

Whole-track prediction (docs/fidelity.md) reads the `audio_windows` records
the same way, in a fixed order, padded to whole batches:

  ds = shard_reader.make_dataset(shard_dir, 'audio_windows', 'test',
                                 batch_size=32, pad_final_batch=True)
  # + 'window', 'num_windows' int32 [32]: average the outputs per track_id.

Each process reads its own shard files (round-robin by process index), so
multi-host training sees every record once per epoch; the windows of a track
are always in one shard, so each process sees whole tracks. TensorFlow runs
on the CPU only: GPUs are hidden from it so that it does not reserve
accelerator memory that JAX needs.

shard_dir may be a local directory or a gs://bucket/... URL: the manifest
and statistics are read through etils.epath, and tf.data reads the shard
files by their URL itself (docs/tpu_pod.md §3).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from etils import epath
import numpy as np

from input_pipeline import errors as input_errors
from input_pipeline.records import augment as augment_lib
from input_pipeline.records import object_records
from input_pipeline import layout
from input_pipeline.features import normalisation
from input_pipeline import startup
from input_pipeline.records import tfrecord

tf = startup.import_tensorflow()

MANIFEST = layout.MANIFEST_JSON
# Keys every reader needs; a manifest without them is from an unfinished or
# foreign run.
REQUIRED_MANIFEST_KEYS = ('format_version', 'complete', 'dataset', 'labels',
                          'label_type', 'image_size', 'patch_shape',
                          'modalities', 'audio_stats')
# Re-exported: the standardisation shared with prediction.
STD_FLOOR = normalisation.STD_FLOOR
# Records in the shuffle buffer (about 250 MB of audio patches at most).
SHUFFLE_BUFFER = 2048


class ManifestError(input_errors.InputError, ValueError):
  """The shard directory has no usable manifest."""


def load_manifest(shard_dir) -> Dict[str, Any]:
  """Reads shard_dir/manifest.json, checking that the run completed.

  Args:
    shard_dir: the --out directory of `mmgenre prepare`.

  Returns:
    The manifest dict.
  """
  path = epath.Path(shard_dir) / MANIFEST
  hint = (f'run `mmgenre prepare --dataset ... --data ... --out {shard_dir}` '
          '(again) to write it.')
  if not path.is_file():
    raise ManifestError(f'{path} not found: {shard_dir} holds no complete '
                        f'prepared shards; {hint}')
  try:
    manifest = json.loads(path.read_text(encoding='utf-8'))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ManifestError(f'{path} is not valid JSON ({e}); {hint}') from None
  if not isinstance(manifest, dict):
    raise ManifestError(f'{path} is not a JSON object; {hint}')
  missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
  if missing:
    raise ManifestError(f'{path} lacks the keys {missing} (incomplete or '
                        f'from another tool); {hint}')
  if manifest['complete'] is not True:
    raise ManifestError(f'{path} marks an incomplete run; {hint}')
  return manifest


def verify_shards(shard_dir, manifest: Optional[Mapping[str, Any]] = None
                  ) -> int:
  """Checks that every shard exists and matches its manifest sha256.

  Returns:
    The number of shard files checked.
  """
  manifest = manifest or load_manifest(shard_dir)
  checked = 0
  for modality, entry in manifest['modalities'].items():
    for split, shards in entry['shards'].items():
      for shard in shards:
        path = epath.Path(shard_dir) / shard['file']
        if not path.is_file():
          raise ManifestError(f'{path} ({modality} {split}) is listed in the '
                              'manifest but missing; prepare again.')
        digest = tfrecord.sha256_file(path)
        if digest != shard['sha256']:
          raise ManifestError(f'{path} has sha256 {digest}, the manifest '
                              f'says {shard["sha256"]}: the file changed '
                              'after it was written; prepare again.')
        checked += 1
  return checked


def load_audio_stats(shard_dir) -> Tuple[np.ndarray, np.ndarray]:
  """The training-split patch statistics, std floored (see STD_FLOOR).

  Returns:
    mean, std: float32 [frames, bins].
  """
  return audio_stats_in(load_manifest(shard_dir), shard_dir)


def audio_stats_in(manifest: Mapping[str, Any],
                   stats_dir) -> Tuple[np.ndarray, np.ndarray]:
  """load_audio_stats of a manifest already read (shards or a TFDS dataset).

  Args:
    manifest: a shard manifest, or the one a TFDS dataset keeps
      (input_pipeline/tfds/reader.py).
    stats_dir: the directory holding manifest['audio_stats'].
  """
  return normalisation.read_audio_stats(
      epath.Path(stats_dir) / manifest['audio_stats'],
      manifest['patch_shape'], error=ManifestError)


def shard_files(shard_dir, shards: List[Mapping[str, Any]]) -> List[str]:
  """The paths of manifest shard entries, as strings for tf.data.

  A gs://bucket/... shard_dir stays a URL (pathlib would turn it into the
  local path gs:/bucket/...), read by object_records.
  """
  return [os.fspath(epath.Path(shard_dir) / s['file']) for s in shards]


def _split_entry(manifest, shard_dir, modality: str, split: str):
  modalities = manifest['modalities']
  if modality == tfrecord.AUDIO_WINDOWS and modality not in modalities:
    why = manifest.get('omitted_modalities', {}).get(
        modality, 'prepared before audio_windows records existed')
    raise ManifestError(
        f'{shard_dir} has no {modality!r} records ({why}), which whole-track '
        f'evaluation and extraction read; run `mmgenre prepare --out '
        f'{shard_dir} ...` again without --no-windows to write them.')
  if modality not in modalities:
    raise ValueError(f'{shard_dir} has no {modality!r} shards; it has '
                     f'{sorted(modalities)}.')
  entry = modalities[modality]
  if split not in entry['shards']:
    raise ValueError(f'{shard_dir} has no {modality!r} split {split!r}; it '
                     f'has {sorted(entry["shards"])}.')
  return entry


def process_shards(shards: List[Any], process_index: int,
                   process_count: int) -> List[Any]:
  """This process's share of the shards: every process_count-th one."""
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is not in [0, '
                     f'{process_count}).')
  return shards[process_index::process_count]


def process_defaults(process_index: Optional[int],
                     process_count: Optional[int]) -> Tuple[int, int]:
  """(process_index, process_count), None filled in from JAX."""
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    # Imported here: prepare and TF-only tools must not need JAX.
    if process_index is None:
      process_index = jax.process_index()
    if process_count is None:
      process_count = jax.process_count()
  return int(process_index), int(process_count)


def num_examples(shard_dir, modality: str, split: str, *,
                 process_index: Optional[int] = None,
                 process_count: Optional[int] = None) -> int:
  """Records this process reads per epoch of a split."""
  manifest = load_manifest(shard_dir)
  entry = _split_entry(manifest, shard_dir, modality, split)
  process_index, process_count = process_defaults(process_index,
                                                  process_count)
  return sum(s['records'] for s in process_shards(
      entry['shards'][split], process_index, process_count))


def _labels(labels: tf.Tensor, manifest) -> tf.Tensor:
  if manifest['label_type'] == 'multi_hot':
    one_hot = tf.one_hot(labels, len(manifest['labels']), dtype=tf.float32)
    return tf.minimum(tf.reduce_sum(one_hot, axis=0), 1.0)
  return tf.cast(tf.reshape(labels, []), tf.int32)


def image_sizes(manifest) -> Tuple[int, int]:
  """(C, S): the network's input crop and the side of the stored covers.

  Shards prepared before covers were stored larger than the crop have no
  `stored_image_size`: there S = C (the centre crop is the whole cover).
  """
  crop = int(manifest['image_size'])
  stored = int(manifest.get('stored_image_size') or crop)
  if stored < crop:
    raise ManifestError(f'The manifest stores covers at {stored} px, smaller '
                        f'than the {crop} px crop; prepare again.')
  return crop, stored


def _make_decoder(manifest, stats_dir, modality: str, specs, *, parse,
                  augment: bool, seed: int,
                  image_augment: Optional[augment_lib.ImageAugment] = None):
  """(index, record) -> output dict of one example.

  `parse` turns a record into tfrecord.parse_example's dict (key -> tensor
  of the spec's shape); stats_dir holds manifest['audio_stats'].
  """
  if modality in ('audio', tfrecord.AUDIO_WINDOWS):
    mean, std = audio_stats_in(manifest, stats_dir)
    mean, std = mean[..., None], std[..., None]
  elif modality == 'image':
    image_mean, image_std = normalisation.image_normalisation(manifest)
    crop_size, _ = image_sizes(manifest)
    image_augment = augment_lib.ImageAugment.from_mapping(image_augment)
  else:
    vocab_size = manifest.get('vocab_size')
    if not vocab_size:
      raise ManifestError(f'{stats_dir}: the manifest has no vocab_size for '
                          'the text records; prepare again.')

  def decode(index, record):
    parsed = parse(record)
    out = {key: parsed[key] for key, spec in specs.items()
           if spec.dtype == 'bytes'}
    if modality in ('audio', tfrecord.AUDIO_WINDOWS):
      # Windows are in the patches' raw dB convention: the same statistics.
      patch = tf.expand_dims(parsed['patch'], -1)
      out['patch'] = (patch - mean) / std
      if modality == tfrecord.AUDIO_WINDOWS:
        out['window'] = tf.cast(parsed['window'], tf.int32)
        out['num_windows'] = tf.cast(parsed['num_windows'], tf.int32)
    elif modality == 'image':
      image = tf.cast(parsed['image'], tf.float32) / 255.0
      if augment:
        image = augment_lib.augment_image(
            image, tf.stack([tf.cast(seed, tf.int64), index]), crop_size,
            image_augment)
      else:
        image = augment_lib.centre_crop(image, crop_size)
      out['image'] = (image - image_mean) / image_std
    else:
      indices = tf.expand_dims(parsed['tfidf_indices'], -1)
      out['tfidf'] = tf.scatter_nd(indices, parsed['tfidf_values'],
                                   [vocab_size])
    out['labels'] = _labels(parsed['labels'], manifest)
    out['mask'] = tf.constant(1.0, tf.float32)
    return out

  return decode


def _pad_batch(batch: Dict[str, tf.Tensor], batch_size: int):
  """Pads a (final, short) batch to batch_size; padding has mask 0."""
  n = tf.shape(batch['mask'])[0]
  padded = {}
  for key, value in batch.items():
    paddings = [[0, batch_size - n]] + [[0, 0]] * (value.shape.rank - 1)
    value = tf.pad(value, paddings)
    padded[key] = tf.ensure_shape(value, [batch_size] + value.shape[1:])
  return padded


@dataclasses.dataclass(frozen=True)
class Batching:
  """How records become batches: make_dataset's keywords, held once.

  Attributes: as make_dataset's arguments of the same names.
  """
  batch_size: int
  shuffle: bool = False
  seed: int = 0
  repeat: bool = False
  drop_remainder: bool = False
  pad_final_batch: bool = False
  image_augment: Optional[Mapping[str, Any]] = None


def make_dataset(shard_dir,
                 modality: str,
                 split: str,
                 *,
                 batch_size: int,
                 shuffle: bool = False,
                 seed: int = 0,
                 repeat: bool = False,
                 drop_remainder: bool = False,
                 pad_final_batch: bool = False,
                 image_augment: Optional[Mapping[str, Any]] = None,
                 process_index: Optional[int] = None,
                 process_count: Optional[int] = None) -> tf.data.Dataset:
  """Batches of one modality and split of a prepared shard directory.

  Args:
    shard_dir: the --out directory of `mmgenre prepare`.
    modality: 'audio', 'audio_windows', 'image' or 'text'.
    split: 'train', 'val' or 'test'.
    batch_size: B, examples per batch (of this process).
    shuffle: shuffle shard order and records (seeded by `seed`, a new order
      every epoch); for images also turns on training augmentation
      (augment_image: random-resized crops of the stored cover, colour
      jitter, lighting noise, flips); without it images are the centre
      crop (the evaluation view).
    seed: shuffling and augmentation seed.
    repeat: repeat forever.
    drop_remainder: drop a final batch smaller than B.
    pad_final_batch: pad the final batch to B (padding has mask 0), so every
      batch has the static shape B; overrides drop_remainder.
    image_augment: augment.ImageAugment fields (config.data.image_augment)
      for the training augmentation of images; None is ImageAugment().
    process_index: this process; default jax.process_index().
    process_count: processes; default jax.process_count(). Shard files are
      dealt round-robin, so there must be at least process_count of them.

  Returns:
    A dataset of dicts. Every modality has 'album_id' (and 'track_id' for
    audio, and for MSD-I images) tf.string [B], 'labels' (float32 [B, L]
    multi-hot for MuMu, int32 [B] for MSD-I) and 'mask' float32 [B], plus
      audio: 'patch' float32 [B, frames, bins, 1], standardised with the
        training statistics;
      audio_windows: the same 'patch' (one whole-track window a row), and
        'window' (its index in the track) and 'num_windows' (the track's
        window count), int32 [B] (0 on padding rows);
      image: 'image' float32 [B, C, C, 3], ImageNet-normalised, C =
        manifest `image_size` (cropped from the stored S = manifest
        `stored_image_size` covers);
      text: 'tfidf' float32 [B, V], dense tf-idf rows.
  """
  startup.hide_gpus_from_tf()
  manifest = load_manifest(shard_dir)
  entry = _split_entry(manifest, shard_dir, modality, split)
  process_index, process_count = process_defaults(process_index,
                                                  process_count)
  all_shards = entry['shards'][split]
  shards = process_shards(all_shards, process_index, process_count)
  if not shards:
    raise ValueError(
        f'{shard_dir}: {modality} {split} has {len(all_shards)} shard file(s),'
        f' none for process {process_index} of {process_count}; prepare '
        'again with a smaller --shard-size so that every process gets one.')
  files = shard_files(shard_dir, shards)
  missing = [f for f in files if not epath.Path(f).is_file()]
  if missing:
    raise ManifestError(f'Shard files listed in the manifest are missing: '
                        f'{missing[:3]}; prepare again.')
  specs = tfrecord.specs_from_json(entry['features'])
  batching = Batching(
      batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=repeat,
      drop_remainder=drop_remainder, pad_final_batch=pad_final_batch,
      image_augment=image_augment)

  ds = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  # Files are read one after the other, so an unshuffled pass has the order
  # of the manifest (records in split order).
  ds = ds.interleave(object_records.reader(shard_dir),
                     cycle_length=min(len(files), 4) if shuffle else 1,
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return batch_records(
      ds, manifest, shard_dir, modality,
      parse=lambda record: tfrecord.parse_example(record, specs),
      records=sum(s['records'] for s in shards), batching=batching)


def batch_records(ds: tf.data.Dataset,
                  manifest: Mapping[str, Any],
                  stats_dir,
                  modality: str,
                  *,
                  parse,
                  records: int,
                  batching: Batching) -> tf.data.Dataset:
  """make_dataset after the records are read: shuffle, decode, batch.

  The shard reader (make_dataset) and the TFDS reader
  (input_pipeline/tfds/reader.py) share it, so the same records in the same
  order give the same batches (shuffles, augmentation, standardisation).

  Args:
    ds: this process's records in read order: serialised tf.train.Examples
      (shards) or example dicts (TFDS).
    manifest: the manifest of the records (shards, or the one a TFDS
      dataset keeps); manifest['modalities'][modality]['features'] are
      their keys.
    stats_dir: the directory of manifest['audio_stats'].
    modality: 'audio', 'audio_windows', 'image' or 'text'.
    parse: a record -> tfrecord.parse_example's dict of it (key -> tensor
      of its spec's shape).
    records: how many records `ds` holds (sizes the shuffle buffer).
    batching: how they become batches (make_dataset's keywords).

  Returns:
    make_dataset's dataset.
  """
  batch_size, seed = batching.batch_size, batching.seed
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  specs = tfrecord.specs_from_json(
      manifest['modalities'][modality]['features'])
  if batching.shuffle:
    ds = ds.shuffle(max(1, min(SHUFFLE_BUFFER, records)), seed=seed + 1,
                    reshuffle_each_iteration=True)
  if batching.repeat:
    ds = ds.repeat()
  # The running index seeds augmentation: different for every epoch, the
  # same for every run with the same seed.
  ds = ds.enumerate()
  ds = ds.map(_make_decoder(manifest, stats_dir, modality, specs,
                            parse=parse,
                            augment=batching.shuffle and modality == 'image',
                            seed=seed, image_augment=batching.image_augment),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size,
                drop_remainder=(batching.drop_remainder and
                                not batching.pad_final_batch),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if batching.pad_final_batch:
    ds = ds.map(lambda batch: _pad_batch(batch, batch_size),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE)


class ShardData:
  """The shards of one `mmgenre prepare` run, as the trainer reads them.

  The trainer (mmgenre_jax/data/sources.py) reads records through this
  interface, which input_pipeline.tfds.reader.TfdsData (the TFDS datasets of
  input_pipeline/tfds) has too:

    data.manifest, data.where                 # the manifest; for messages
    data.splits('audio_windows')              # ['train', 'val', 'test']
    data.num_examples('audio', 'train', process_index=0, process_count=1)
    data.make_dataset('audio', 'train', batch_size=32, shuffle=True, ...)
    data.album_labels('audio', 'train')       # (album_id, labels) records
  """

  def __init__(self, shard_dir):
    self.shard_dir = shard_dir
    self.where = os.fspath(shard_dir)
    self.manifest = load_manifest(shard_dir)

  def splits(self, kind: str) -> List[str]:
    """The splits of a record kind ([] when the shards have none)."""
    entry = self.manifest['modalities'].get(kind)
    return list(entry['shards']) if entry else []

  def num_examples(self, kind: str, split: str, *,
                   process_index: Optional[int] = None,
                   process_count: Optional[int] = None) -> int:
    return num_examples(self.shard_dir, kind, split,
                        process_index=process_index,
                        process_count=process_count)

  def make_dataset(self, kind: str, split: str, **kwargs) -> tf.data.Dataset:
    """make_dataset(shard_dir, kind, split, **kwargs)."""
    return make_dataset(self.shard_dir, kind, split, **kwargs)

  def album_labels(self, kind: str, split: str) -> tf.data.Dataset:
    """(album_id tf.string, label indices int64 [n]) of every record.

    Only the two keys are parsed (the label factors read every album).
    """
    entry = _split_entry(self.manifest, self.shard_dir, kind, split)
    specs = tfrecord.specs_from_json(entry['features'])
    specs = {key: specs[key] for key in ('album_id', 'labels')}
    files = shard_files(self.shard_dir, entry['shards'][split])
    return tf.data.Dataset.from_tensor_slices(
        tf.constant(files, tf.string)).flat_map(
        object_records.reader(self.shard_dir)).map(
        lambda r: tfrecord.parse_example(r, specs)).map(
            lambda e: (e['album_id'], tf.reshape(e['labels'], [-1])))


def as_numpy_batches(ds: tf.data.Dataset) -> Iterator[Dict[str, np.ndarray]]:
  """Yields the batches of `ds` as dicts of NumPy arrays.

  String features (ids) come back as NumPy str arrays, not bytes.
  """
  for batch in ds.as_numpy_iterator():
    out = {}
    for key, value in batch.items():
      if isinstance(value, np.ndarray) and value.dtype == object:
        value = np.char.decode(value.astype(np.bytes_), 'utf-8')
      out[key] = value
    yield out

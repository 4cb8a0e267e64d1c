"""tf.data reader of the shards written by `mmgenre prepare`.

  ds = pipeline.make_dataset('runs/data/shards', 'audio', 'train',
                             batch_size=32, shuffle=True, repeat=True)
  for batch in pipeline.as_numpy_batches(ds):
    batch['patch']   # float32 [32, 322, 96, 1], standardised (train stats)
    batch['labels']  # float32 [32, L] multi-hot (MuMu) | int32 [32] (MSD-I)
    batch['mask']    # float32 [32]: 1 for real examples, 0 for padding

Whole-track prediction (SPEC §2) reads the `audio_windows` records the same
way, in a fixed order, padded to whole batches:

  ds = pipeline.make_dataset(shard_dir, 'audio_windows', 'test',
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

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from etils import epath
import numpy as np

from input_pipeline import layout
from input_pipeline import normalisation
from input_pipeline import startup
from input_pipeline import tfrecord

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
# Mild photometric distortions for training covers (SPEC §2: "photometric
# distortions"), on [0, 1] pixel values.
BRIGHTNESS_DELTA = 0.1
CONTRAST_RANGE = (0.9, 1.1)
SATURATION_RANGE = (0.9, 1.1)


class ManifestError(ValueError):
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
  manifest = load_manifest(shard_dir)
  return normalisation.read_audio_stats(
      epath.Path(shard_dir) / manifest['audio_stats'],
      manifest['patch_shape'], error=ManifestError)


def shard_files(shard_dir, shards: List[Mapping[str, Any]]) -> List[str]:
  """The paths of manifest shard entries, as strings for tf.data.

  A gs://bucket/... shard_dir stays a URL, which TFRecordDataset reads
  natively (pathlib would turn it into the local path gs:/bucket/...).
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


def _process_defaults(process_index, process_count) -> Tuple[int, int]:
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
  process_index, process_count = _process_defaults(process_index,
                                                   process_count)
  return sum(s['records'] for s in process_shards(
      entry['shards'][split], process_index, process_count))


def _labels(labels: tf.Tensor, manifest) -> tf.Tensor:
  if manifest['label_type'] == 'multi_hot':
    one_hot = tf.one_hot(labels, len(manifest['labels']), dtype=tf.float32)
    return tf.minimum(tf.reduce_sum(one_hot, axis=0), 1.0)
  return tf.cast(tf.reshape(labels, []), tf.int32)


def _augment_image(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Random flip + mild photometric jitter of a [S, S, 3] [0, 1] image."""
  seeds = tf.random.experimental.stateless_split(seed, 4)
  image = tf.image.stateless_random_flip_left_right(image, seeds[0])
  image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA,
                                               seeds[1])
  image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE,
                                             seed=seeds[2])
  image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE,
                                               seed=seeds[3])
  return tf.clip_by_value(image, 0.0, 1.0)


def _make_decoder(manifest, shard_dir, modality: str, specs, *,
                  augment: bool, seed: int):
  """(index, serialized) -> output dict of one example."""
  if modality in ('audio', tfrecord.AUDIO_WINDOWS):
    mean, std = load_audio_stats(shard_dir)
    mean, std = mean[..., None], std[..., None]
  elif modality == 'image':
    image_mean, image_std = normalisation.image_normalisation(manifest)
  else:
    vocab_size = manifest.get('vocab_size')
    if not vocab_size:
      raise ManifestError(f'{shard_dir}: the manifest has no vocab_size for '
                          'the text shards; prepare again.')

  def decode(index, serialized):
    parsed = tfrecord.parse_example(serialized, specs)
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
        image = _augment_image(
            image, tf.stack([tf.cast(seed, tf.int64), index]))
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
                 process_index: Optional[int] = None,
                 process_count: Optional[int] = None) -> tf.data.Dataset:
  """Batches of one modality and split of a prepared shard directory.

  Args:
    shard_dir: the --out directory of `mmgenre prepare`.
    modality: 'audio', 'audio_windows', 'image' or 'text'.
    split: 'train', 'val' or 'test'.
    batch_size: B, examples per batch (of this process).
    shuffle: shuffle shard order and records (seeded by `seed`, a new order
      every epoch); for images also turns on training augmentation.
    seed: shuffling and augmentation seed.
    repeat: repeat forever.
    drop_remainder: drop a final batch smaller than B.
    pad_final_batch: pad the final batch to B (padding has mask 0), so every
      batch has the static shape B; overrides drop_remainder.
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
      image: 'image' float32 [B, S, S, 3], ImageNet-normalised;
      text: 'tfidf' float32 [B, V], dense tf-idf rows.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  startup.hide_gpus_from_tf()
  manifest = load_manifest(shard_dir)
  entry = _split_entry(manifest, shard_dir, modality, split)
  process_index, process_count = _process_defaults(process_index,
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
  records = sum(s['records'] for s in shards)

  ds = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  # Files are read one after the other, so an unshuffled pass has the order
  # of the manifest (records in split order).
  ds = ds.interleave(tf.data.TFRecordDataset,
                     cycle_length=min(len(files), 4) if shuffle else 1,
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if shuffle:
    ds = ds.shuffle(max(1, min(SHUFFLE_BUFFER, records)), seed=seed + 1,
                    reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  # The running index seeds augmentation: different for every epoch, the
  # same for every run with the same seed.
  ds = ds.enumerate()
  ds = ds.map(_make_decoder(manifest, shard_dir, modality, specs,
                            augment=shuffle and modality == 'image',
                            seed=seed),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size,
                drop_remainder=drop_remainder and not pad_final_batch,
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if pad_final_batch:
    ds = ds.map(lambda batch: _pad_batch(batch, batch_size),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE)


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

"""TFRecord shards: feature specs, tf.train.Example encoding, atomic writer.

The on-disk contract is docs/data_formats.md §3. Each modality has one record
kind, and audio a second one, `audio_windows` (the whole-track prediction
windows); their keys, shapes and dtypes are described by `FeatureSpec`s that
`mmgenre prepare` stores in manifest.json, so the reader (pipeline.py) parses
exactly what was written without knowing how it was made.

  specs = tfrecord.feature_specs('mumu', 'audio', patch_shape=(322, 96))
  with tfrecord.ShardedWriter(out / 'audio', 'train', shard_size=512) as w:
    w.write(tfrecord.encode_example(
        {'track_id': 'TR1', 'album_id': 'B01', 'patch': patch,
         'labels': [3, 7]}, specs))
  shards = w.shards  # [ShardInfo(file, records, sha256)], final names.

This module needs TensorFlow but not JAX, so data preparation runs on hosts
without an accelerator stack.
"""

import dataclasses
import hashlib
import os
import pathlib
from typing import (Any, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from etils import epath
import numpy as np

from input_pipeline import errors as input_errors
from input_pipeline import fileio
from input_pipeline.records import object_records
from input_pipeline import startup

tf = startup.import_tensorflow()

# Record kinds (docs/data_formats.md §3).
MODALITIES = ('audio', 'image', 'text')
# Datasets and which modalities each has: MSD-I has no reviews (paper Sec 6).
# A catalog (input_pipeline/formats/catalog.py) is laid out as MuMu: albums with
# label lists, their tracks, cover and reviews.
DATASET_MODALITIES = {'mumu': ('audio', 'image', 'text'),
                      'msdi': ('audio', 'image'),
                      'catalog': ('audio', 'image', 'text')}
# Album-level, multi-label datasets: `labels` a list of label indices, cover
# and text records keyed by album only, audio predicted per album.
ALBUM_DATASETS = ('mumu', 'catalog')
# Whole-track prediction windows of the audio (docs/fidelity.md): one record per
# window, written beside the 'audio' records (one per track) of every dataset.
AUDIO_WINDOWS = 'audio_windows'
RECORD_KINDS = MODALITIES + (AUDIO_WINDOWS,)
# Stored dtypes. 'uint8' is an array kept as one raw bytes value (covers:
# 150 KB as bytes instead of 150 K int64 list entries).
DTYPES = ('bytes', 'int64', 'float32', 'uint8')
# Shard file names: {split}-{index:05d}-of-{count:05d}.tfrecord.
SHARD_SUFFIX = '.tfrecord'
TMP_SUFFIX = fileio.TMP_SUFFIX


class ShardFormatError(input_errors.InputError, ValueError):
  """A value does not match its feature spec, or a shard is unreadable."""


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """How one key of a record is stored.

  Attributes:
    dtype: one of DTYPES.
    shape: the array shape, or None for a variable-length list.
  """
  dtype: str
  shape: Optional[Tuple[int, ...]] = ()

  def __post_init__(self):
    if self.dtype not in DTYPES:
      raise ValueError(f'FeatureSpec dtype {self.dtype!r} is not one of '
                       f'{DTYPES}.')

  @property
  def size(self) -> Optional[int]:
    """Number of elements of a fixed-shape value; None if variable."""
    return None if self.shape is None else int(np.prod(self.shape, dtype=int))

  def to_json(self) -> Dict[str, Any]:
    return {'dtype': self.dtype,
            'shape': None if self.shape is None else list(self.shape)}

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> 'FeatureSpec':
    shape = value.get('shape')
    return cls(dtype=value['dtype'],
               shape=None if shape is None else tuple(int(d) for d in shape))


Specs = Mapping[str, FeatureSpec]


def feature_specs(dataset: str,
                  modality: str,
                  *,
                  patch_shape: Sequence[int] = (322, 96),
                  image_size: int = 224) -> Dict[str, FeatureSpec]:
  """The keys of one record kind (docs/data_formats.md §3).

  Args:
    dataset: 'mumu' or 'catalog' (album-level multi-label: `labels` is a
      list of label indices) or 'msdi' (track-level single label: one
      index).
    modality: one of MODALITIES, or AUDIO_WINDOWS (audio windows: the audio
      keys plus `window`, the window's index in its track, and
      `num_windows`, the track's window count).
    patch_shape: (frames, bins) of an audio patch or window.
    image_size: S of the stored uint8 [S, S, 3] covers.

  Returns:
    key -> FeatureSpec, in record order.
  """
  if dataset not in DATASET_MODALITIES:
    raise ValueError(f'Unknown dataset {dataset!r}; expected one of '
                     f'{list(DATASET_MODALITIES)}.')
  if modality == AUDIO_WINDOWS:
    audio = feature_specs(dataset, 'audio', patch_shape=patch_shape)
    ids = {key: audio[key] for key in ('track_id', 'album_id')}
    return {**ids, 'window': FeatureSpec('int64'),
            'num_windows': FeatureSpec('int64'), 'patch': audio['patch'],
            'labels': audio['labels']}
  if modality not in DATASET_MODALITIES[dataset]:
    raise ValueError(f'Dataset {dataset!r} has no {modality!r} records; its '
                     f'modalities are {DATASET_MODALITIES[dataset]} (and '
                     f'{AUDIO_WINDOWS!r}).')
  labels = (FeatureSpec('int64', None) if dataset in ALBUM_DATASETS
            else FeatureSpec('int64', (1,)))
  ids = {'track_id': FeatureSpec('bytes'), 'album_id': FeatureSpec('bytes')}
  if dataset in ALBUM_DATASETS and modality != 'audio':
    # MuMu covers and reviews belong to albums, not tracks.
    del ids['track_id']
  if modality == 'audio':
    body = {'patch': FeatureSpec('float32', tuple(int(d) for d in patch_shape))}
  elif modality == 'image':
    body = {'image': FeatureSpec('uint8', (int(image_size), int(image_size),
                                           3))}
  else:
    body = {'tfidf_indices': FeatureSpec('int64', None),
            'tfidf_values': FeatureSpec('float32', None)}
  return {**ids, **body, 'labels': labels}


def specs_to_json(specs: Specs) -> Dict[str, Dict[str, Any]]:
  return {key: spec.to_json() for key, spec in specs.items()}


def specs_from_json(value: Mapping[str, Any]) -> Dict[str, FeatureSpec]:
  return {key: FeatureSpec.from_json(spec) for key, spec in value.items()}


def _check_size(key: str, spec: FeatureSpec, array: np.ndarray) -> None:
  if spec.shape is not None and array.size != spec.size:
    raise ShardFormatError(
        f'Feature {key!r} has {array.size} values (shape {array.shape}); its '
        f'spec says shape {spec.shape}.')


def _varint(value: int) -> bytes:
  """A protobuf base-128 varint."""
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    if not value:
      out.append(byte)
      return bytes(out)
    out.append(byte | 0x80)


def _float_list(array: np.ndarray) -> 'tf.train.FloatList':
  """tf.train.FloatList(value=array), built from its wire bytes.

  The same message (so the same serialised bytes) as the constructor, which
  copies a [322 x 96] patch into the protobuf one Python float at a time:
  ~3 ms a record, most of `mmgenre prepare`'s main process. A FloatList is
  field 1 (`repeated float`, packed: wire type 2), so its bytes are the tag,
  the byte length and the little-endian float32 values.
  """
  data = np.ascontiguousarray(array, '<f4').tobytes()
  return tf.train.FloatList.FromString(b'\x0a' + _varint(len(data)) + data)


def encode_example(values: Mapping[str, Any], specs: Specs) -> bytes:
  """Serialises one record as a tf.train.Example.

  Args:
    values: key -> value for every key of `specs`: str/bytes for 'bytes',
      array-likes for the others (fixed-shape values may be any shape with
      the right number of elements; they are stored flat).
    specs: key -> FeatureSpec.

  Returns:
    The serialised tf.train.Example.
  """
  missing = [key for key in specs if key not in values]
  extra = [key for key in values if key not in specs]
  if missing or extra:
    raise ShardFormatError(f'Record keys do not match the spec: missing '
                           f'{missing}, unexpected {extra}.')
  feature = {}
  for key, spec in specs.items():
    value = values[key]
    if spec.dtype == 'bytes':
      if isinstance(value, str):
        value = value.encode('utf-8')
      if not isinstance(value, bytes):
        raise ShardFormatError(f'Feature {key!r} must be str or bytes, got '
                               f'{type(value).__name__}.')
      feature[key] = tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[value]))
    elif spec.dtype == 'uint8':
      array = np.asarray(value)
      if array.dtype != np.uint8:
        raise ShardFormatError(f'Feature {key!r} must be uint8, got '
                               f'{array.dtype}.')
      _check_size(key, spec, array)
      feature[key] = tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[array.tobytes()]))
    elif spec.dtype == 'int64':
      array = np.asarray(value).reshape(-1)
      if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ShardFormatError(f'Feature {key!r} must hold integers, got '
                               f'{array.dtype}.')
      _check_size(key, spec, array)
      feature[key] = tf.train.Feature(
          int64_list=tf.train.Int64List(value=array.astype(np.int64)))
    else:
      array = np.asarray(value, np.float32).reshape(-1)
      _check_size(key, spec, array)
      if not np.all(np.isfinite(array)):
        raise ShardFormatError(f'Feature {key!r} has non-finite values.')
      feature[key] = tf.train.Feature(float_list=_float_list(array))
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  # Deterministic: protobuf map order otherwise follows the per-process string
  # hash, so the same values gave different bytes (and shard checksums) on
  # every run.
  return example.SerializeToString(deterministic=True)


def decode_example(serialized: bytes, specs: Specs) -> Dict[str, Any]:
  """Parses one record with NumPy (tests, inspection; no tf.data).

  Args:
    serialized: a tf.train.Example as written by encode_example.
    specs: key -> FeatureSpec.

  Returns:
    key -> str for 'bytes' keys, else np.ndarray of the spec's shape (1-D for
    variable-length keys).
  """
  example = tf.train.Example.FromString(serialized)
  features = example.features.feature
  out = {}
  for key, spec in specs.items():
    if key not in features:
      raise ShardFormatError(f'Record has no key {key!r}; it has '
                             f'{sorted(features)}.')
    feature = features[key]
    if spec.dtype == 'bytes':
      out[key] = feature.bytes_list.value[0].decode('utf-8')
      continue
    if spec.dtype == 'uint8':
      array = np.frombuffer(feature.bytes_list.value[0], np.uint8)
    elif spec.dtype == 'int64':
      array = np.asarray(feature.int64_list.value, np.int64)
    else:
      array = np.asarray(feature.float_list.value, np.float32)
    _check_size(key, spec, array)
    out[key] = array if spec.shape is None else array.reshape(spec.shape)
  return out


def parsing_spec(specs: Specs) -> Dict[str, Any]:
  """tf.io.parse_example features for `specs` (values come back flat)."""
  tf_dtypes = {'bytes': tf.string, 'uint8': tf.string, 'int64': tf.int64,
               'float32': tf.float32}
  parsing = {}
  for key, spec in specs.items():
    dtype = tf_dtypes[spec.dtype]
    if spec.shape is None:
      parsing[key] = tf.io.VarLenFeature(dtype)
    elif spec.dtype in ('bytes', 'uint8'):
      parsing[key] = tf.io.FixedLenFeature([], dtype)
    else:
      parsing[key] = tf.io.FixedLenFeature([spec.size], dtype)
  return parsing


def parse_example(serialized: tf.Tensor, specs: Specs) -> Dict[str, tf.Tensor]:
  """Parses one serialised record in a tf.data map.

  Args:
    serialized: scalar tf.string.
    specs: key -> FeatureSpec.

  Returns:
    key -> tensor: tf.string scalars for 'bytes', uint8 of the spec's shape
    for 'uint8', the spec's shape for fixed int64/float32 keys, and dense 1-D
    tensors for variable-length keys.
  """
  parsed = tf.io.parse_single_example(serialized, parsing_spec(specs))
  out = {}
  for key, spec in specs.items():
    value = parsed[key]
    if spec.shape is None:
      value = tf.sparse.to_dense(value)
    elif spec.dtype == 'uint8':
      value = tf.reshape(tf.io.decode_raw(value, tf.uint8), spec.shape)
    elif spec.dtype != 'bytes':
      value = tf.reshape(value, spec.shape)
    out[key] = value
  return out


def shard_name(split: str, index: int, count: int) -> str:
  return f'{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}'


def sha256_file(path, chunk_bytes: int = 1 << 20) -> str:
  """Hex sha256 of a file (a local path or a gs:// URL)."""
  digest = hashlib.sha256()
  with epath.Path(path).open('rb') as f:
    for chunk in iter(lambda: f.read(chunk_bytes), b''):
      digest.update(chunk)
  return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class ShardInfo:
  """A finished shard: path relative to the writer's root, records, sha256."""
  file: str
  records: int
  sha256: str

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


class ShardedWriter:
  """Writes records of one split into numbered shards, atomically.

  Records go to hidden temporary files `.{split}-{i:05d}*.tmp` in `out_dir`,
  `shard_size` records each. The shard count is known only when the last
  record is in (inputs may be skipped), so `close()` renames every temporary
  file to its final `{split}-{i:05d}-of-{n:05d}.tfrecord` name: a reader never
  sees a partial shard, and a crashed run leaves only `.tmp` files (removed by
  `abort()` on an exception inside a `with` block). Shards of an earlier run
  of the same split are deleted at close. For a URL `out_dir` the temporary
  files are local and each shard is one object upload at close
  (fileio.publish).
  """

  def __init__(self, out_dir, split: str, *, shard_size: int,
               root: Optional[os.PathLike] = None):
    """Opens nothing yet; the first write creates the first shard.

    Args:
      out_dir: the modality directory (created if needed).
      split: the file name prefix.
      shard_size: records per shard (> 0); `write_group` may exceed it.
      root: ShardInfo.file is relative to it (default: out_dir's parent).
    """
    if shard_size <= 0:
      raise ValueError(f'shard_size must be > 0, got {shard_size}.')
    self.out_dir = epath.Path(out_dir)
    self.out_dir.mkdir(parents=True, exist_ok=True)
    self.root = epath.Path(root) if root is not None else self.out_dir.parent
    self.split = split
    self.shard_size = shard_size
    self.shards: List[ShardInfo] = []
    self._temps: List[Tuple[pathlib.Path, int]] = []
    self._writer = None
    self._count = 0
    self._closed = False

  @property
  def num_records(self) -> int:
    return sum(n for _, n in self._temps) + self._count

  def _roll(self) -> None:
    self._finish_current()
    name = fileio.temp_file(
        self.out_dir, prefix=f'.{self.split}-{len(self._temps):05d}-')
    self._path = pathlib.Path(name)
    self._writer = tf.io.TFRecordWriter(name)
    self._count = 0

  def _finish_current(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._temps.append((self._path, self._count))
      self._writer = None
      self._count = 0

  def write(self, record: bytes) -> None:
    """Appends one serialised record."""
    self.write_group([record])

  def write_group(self, records: Sequence[bytes]) -> None:
    """Appends records that must stay in one shard (a track's windows).

    A new shard is started only before a group, so a shard holds fewer than
    shard_size + len(group) records. Processes read whole shards
    (pipeline.process_shards), so each one then sees whole tracks.
    """
    if self._closed:
      raise RuntimeError(f'ShardedWriter for {self.split!r} is closed.')
    if not records:
      return
    if self._writer is None or self._count >= self.shard_size:
      self._roll()
    for record in records:
      self._writer.write(record)
    self._count += len(records)

  def close(self) -> List[ShardInfo]:
    """Renames the finished shards to their final names.

    Returns:
      One ShardInfo per shard (one empty shard when no record was written).
    """
    if self._closed:
      return self.shards
    if self._writer is None and not self._temps:
      # An empty split still gets one (empty) shard, so that readers see an
      # empty dataset rather than a missing one.
      self._roll()
    self._finish_current()
    self._closed = True
    # Earlier shards of this split (another shard count) must not mix in.
    for old in self.out_dir.glob(f'{self.split}-*-of-*{SHARD_SUFFIX}'):
      old.unlink()
    n = len(self._temps)
    for i, (tmp, records) in enumerate(self._temps):
      final = self.out_dir / shard_name(self.split, i, n)
      digest = sha256_file(tmp)
      fileio.publish(os.fspath(tmp), final)
      self.shards.append(ShardInfo(
          file=final.relative_to(self.root).as_posix(), records=records,
          sha256=digest))
    self._temps = []
    return self.shards

  def abort(self) -> None:
    """Removes the temporary files; nothing is renamed."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None
      self._temps.append((self._path, self._count))
    for tmp, _ in self._temps:
      if tmp.exists():
        tmp.unlink()
    self._temps = []
    self._closed = True

  def __enter__(self) -> 'ShardedWriter':
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()


def iter_records(paths: Sequence[os.PathLike]) -> Iterator[bytes]:
  """The serialised records of some shard files, in order, one at a time
  (a URL's through fileio: object_records)."""
  for path in paths:
    if not fileio.is_local(path):
      try:
        yield from object_records.iter_records(path)
      except object_records.TruncatedError as e:
        raise ShardFormatError(str(e)) from None
      continue
    try:
      for record in tf.data.TFRecordDataset(os.fspath(path)):
        yield record.numpy()
    except tf.errors.DataLossError as e:
      raise ShardFormatError(f'{path} is not a complete TFRecord file ({e}); '
                             'prepare the shards again.') from None


def read_records(paths: Sequence[os.PathLike]) -> List[bytes]:
  """All serialised records of some shard files, in order (eager, small)."""
  return list(iter_records(paths))

"""object_records: TFRecord files read through fileio equal TensorFlow's
reader, locally and from a GCS server on 127.0.0.1; a cut or corrupted
file is an error, never fewer records."""

from etils import epath
import numpy as np
import pytest
import tensorflow as tf

from input_pipeline.records import object_records
from input_pipeline.records import tfrecord


@pytest.fixture(scope='module')
def shard(tmp_path_factory):
  path = tmp_path_factory.mktemp('object_records') / 'a.tfrecord'
  rng = np.random.default_rng(0)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for size in (0, 1, 12, 1000, 124032):
      writer.write(rng.bytes(size))
  return path


def _tf_records(path):
  return [r.numpy() for r in tf.data.TFRecordDataset(str(path))]


def test_local_and_bucket_reads_equal_tensorflows(shard, bucket_dir):
  expected = _tf_records(shard)
  assert list(object_records.iter_records(shard)) == expected
  url = f'{bucket_dir}/a.tfrecord'
  epath.Path(url).write_bytes(shard.read_bytes())
  files = tf.data.Dataset.from_tensor_slices([url, url])
  read = files.interleave(object_records.reader(bucket_dir), cycle_length=2)
  got = [r for r in read.as_numpy_iterator()]
  assert sorted(got) == sorted(expected * 2)
  assert tfrecord.read_records([url]) == expected


@pytest.mark.parametrize('damage', ['cut', 'flip'])
def test_a_damaged_file_is_an_error(shard, tmp_path, damage):
  data = bytearray(shard.read_bytes())
  if damage == 'cut':
    data = data[:-3]
  else:
    data[-100] ^= 1  # Inside the last record: its checksum fails.
  broken = tmp_path / 'b.tfrecord'
  broken.write_bytes(bytes(data))
  with pytest.raises(object_records.TruncatedError, match='not a complete'):
    list(object_records.iter_records(broken))

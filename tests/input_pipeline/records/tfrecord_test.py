"""input_pipeline.records.tfrecord: the record encoding, byte for byte."""

import numpy as np
import pytest

from input_pipeline.records import tfrecord

tf = tfrecord.tf


@pytest.mark.parametrize('size', [0, 1, 31, 32, 33, 4096, 322 * 96])
def test_float_lists_are_the_protobuf_constructors_bytes(size):
  # 32 floats are 128 bytes: the first length that takes a 2-byte varint.
  array = np.random.default_rng(size).normal(size=size).astype(np.float32)
  array[:1] = -0.0  # The sign of zero survives both ways.
  fast = tf.train.Feature(float_list=tfrecord._float_list(array))
  slow = tf.train.Feature(float_list=tf.train.FloatList(value=array))
  assert fast.SerializeToString() == slow.SerializeToString()
  np.testing.assert_array_equal(np.asarray(fast.float_list.value), array)


def test_a_record_encodes_to_the_same_bytes_as_before():
  """The bytes of the shards (their manifest sha256) do not change."""
  specs = tfrecord.feature_specs('mumu', tfrecord.AUDIO_WINDOWS,
                                 patch_shape=(322, 96))
  values = {'track_id': 'T1', 'album_id': 'A1', 'window': 2,
            'num_windows': 5,
            'patch': np.random.default_rng(0).normal(
                size=(322, 96)).astype(np.float32),
            'labels': [3, 1, 4]}
  feature = {
      'track_id': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[b'T1'])),
      'album_id': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[b'A1'])),
      'window': tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
      'num_windows': tf.train.Feature(int64_list=tf.train.Int64List(
          value=[5])),
      'patch': tf.train.Feature(float_list=tf.train.FloatList(
          value=values['patch'].reshape(-1))),
      'labels': tf.train.Feature(int64_list=tf.train.Int64List(
          value=[3, 1, 4]))}
  expected = tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString(deterministic=True)
  assert tfrecord.encode_example(values, specs) == expected
  decoded = tfrecord.decode_example(expected, specs)
  np.testing.assert_array_equal(decoded['patch'], values['patch'])

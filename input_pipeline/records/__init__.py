"""The prepared shards: their record format, tf.data reader, augmentation.

  tfrecord.py      feature specs, tf.train.Example encoding, atomic writer
  shard_reader.py  tf.data reader of the shards and their manifest
  augment.py       the covers' crops and training augmentation, in tf
"""

"""Raw data -> features -> TFRecord shards -> tf.data batches."""

"""A CPU-friendly test configuration: LOW-4x70 COSINE, tiny batches.

  python main.py --config=configs/test.py --workdir=/tmp/mmgenre_test \
      --config.data.shard_dir=/tmp/shards

Used by tests/mmgenre_jax/train/loop_test.py; not an experiment of the paper.
"""

import ml_collections

from configs import default as default_lib


def get_config() -> ml_collections.ConfigDict:
  """The smallest paper network (LOW-4x70, Table 5) for a few CPU steps."""
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  config.model.name = 'audio_cnn'
  config.model.width = 'low'
  config.model.kernels = '4x70'
  default_lib.set_target(config, 'cosine')
  # Few labels in a tiny corpus: d must not exceed the number of labels.
  config.data.factor_dim = 4
  # LOW has no dropout in the paper; a little here exercises the dropout rng
  # (folded with the step) that resuming must reproduce.
  config.model.dropout = 0.25
  config.train.batch_size = 4
  config.train.num_epochs = 2
  config.train.log_every_steps = 2
  config.eval.batch_size = 4
  return config

"""Trains, evaluates or summarises one experiment of mmgenre_jax.

This file is intentionally kept short. The majority of the logic is in
libraries that can be easily tested and imported in Colab.

  python main.py --config=configs/mumu_cosine.py --workdir=runs/mumu_cosine
  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=/tmp/w --mode=summary
"""

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory to store model data.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'extract', 'summary'],
                  'What to do with the experiment.')
config_flags.DEFINE_config_file(
    'config', None, 'File path to the experiment configuration.',
    lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # Hide any GPUs from TensorFlow. Otherwise TF might reserve memory and make
  # it unavailable to JAX.
  tf.config.experimental.set_visible_devices([], 'GPU')

  if FLAGS.mode == 'summary':
    from mmgenre_jax import summary  # pylint: disable=g-import-not-at-top
    summary.print_summary(FLAGS.config)
    return
  logging.info('mode=%s workdir=%s', FLAGS.mode, FLAGS.workdir)
  raise app.UsageError(
      f'--mode={FLAGS.mode} needs the trainer (mmgenre_jax/train.py), which '
      'is not part of this release yet; --mode=summary works.')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)

"""Trains, evaluates or summarises one experiment of mmgenre_jax.

This file is intentionally kept short. The majority of the logic is in
libraries that can be easily tested and imported in Colab.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.data.shard_dir=runs/data/shards
  python main.py ... --mode=evaluate --checkpoint=best --split=test
  python main.py ... --mode=extract --split=all   # representations/<name>/
  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=/tmp/w --mode=summary

A pipeline config (configs/mumu_cosine.py, ...) runs every mode on each of
its stages (mmgenre_jax/pipelines/), or only on --stage=NAME.

A user error (mmgenre_jax/errors.py: no prepared shards, a workdir of
another experiment or in use by another job, no checkpoint, an unknown
stage, a diverged run) ends with one line `error: ...` on stderr and exit
status 2, as in every `mmgenre` command; anything else is a bug and keeps
its traceback.
"""

import logging as python_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

# Light (no JAX or TF at import): the flags name its modes and splits.
from mmgenre_jax import main_modes

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory to store model data.')
flags.DEFINE_enum('mode', 'train', list(main_modes.MODES),
                  'What to do with the experiment.')
flags.DEFINE_string('checkpoint', None, "evaluate/extract: 'best', 'latest' "
                    "or a step (default: best if there is one).")
flags.DEFINE_enum('split', 'test', list(main_modes.SPLITS),
                  "evaluate/extract: which split; extract also takes 'all' "
                  '(train, val and test).')
flags.DEFINE_string('stage', None, 'Pipeline configs: run evaluate, extract '
                    'or summary on this stage only (default: every stage).')
flags.DEFINE_bool('follow', False, 'evaluate: evaluate each new checkpoint '
                  'of a running training job until it is done.')
config_flags.DEFINE_config_file(
    'config', None, 'File path to the experiment configuration.',
    lock_config=True)
flags.DEFINE_bool('checkpoint_logs', False, 'Show the INFO logs of orbax '
                  '(a dozen lines per checkpoint save).')


def _quiet_checkpoint_logs(record) -> bool:
  """absl log filter: orbax's INFO lines drown the training progress."""
  return record.levelno >= python_logging.WARNING or 'orbax' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if not FLAGS.checkpoint_logs:
    logging.get_absl_handler().addFilter(_quiet_checkpoint_logs)
  # TensorFlow (tf.data) without its start-up notices and off the GPUs, which
  # JAX owns; also drops JAX's "no TPU here" notice.
  from input_pipeline import startup  # pylint: disable=g-import-not-at-top
  startup.import_tensorflow()
  from mmgenre_jax import errors  # pylint: disable=g-import-not-at-top
  # JAX's persistent compilation cache, before the first compilation:
  # evaluate, extract and a resumed run load the steps an earlier process
  # of the experiment compiled.
  startup.enable_compilation_cache()
  try:
    main_modes.run(FLAGS.config, FLAGS.workdir, mode=FLAGS.mode,
                   stage=FLAGS.stage, checkpoint=FLAGS.checkpoint,
                   split=FLAGS.split, follow=FLAGS.follow)
  except errors.UserError as e:
    # Mistakes in the command or the files it names: the message is the fix,
    # a traceback would bury it. Every other exception keeps its traceback.
    print(errors.one_line(e), file=sys.stderr, flush=True)
    return errors.EXIT_CODE
  return 0


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)

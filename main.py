"""Trains, evaluates or summarises one experiment of mmgenre_jax.

This file is intentionally kept short. The majority of the logic is in
libraries that can be easily tested and imported in Colab.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.data.shard_dir=runs/data/shards
  python main.py ... --mode=evaluate --checkpoint=best --split=test
  python main.py ... --mode=extract --split=all   # representations/<name>/
  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=/tmp/w --mode=summary
"""

import logging as python_logging

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Directory to store model data.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'extract', 'summary'],
                  'What to do with the experiment.')
flags.DEFINE_string('checkpoint', None, "evaluate/extract: 'best', 'latest' "
                    "or a step (default: best if there is one).")
flags.DEFINE_string('split', 'test', "evaluate/extract: which split; "
                    "extract also takes 'all' (train, val and test).")
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
  if FLAGS.mode == 'summary':
    from mmgenre_jax import summary  # pylint: disable=g-import-not-at-top
    summary.print_summary(FLAGS.config)
    return
  from mmgenre_jax import sharding  # pylint: disable=g-import-not-at-top
  # Before anything touches the devices (multi-process launches).
  sharding.maybe_initialize_distributed()
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax import evaluate
  from mmgenre_jax import train
  # pylint: enable=g-import-not-at-top
  logging.info('mode=%s workdir=%s', FLAGS.mode, FLAGS.workdir)
  if FLAGS.mode == 'train':
    # pylint: disable=g-import-not-at-top
    from mmgenre_jax.pipelines import runner
    from mmgenre_jax.pipelines import spec
    # pylint: enable=g-import-not-at-top
    if spec.is_pipeline(FLAGS.config):
      # A multi-stage experiment (configs/mumu_cosine.py, ...): every stage
      # in its own sub-workdir, then report.md and results.json.
      runner.run_pipeline(FLAGS.config, FLAGS.workdir)
      return
    report = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  elif FLAGS.mode == 'evaluate':
    report = evaluate.evaluate(FLAGS.config, FLAGS.workdir,
                               checkpoint=FLAGS.checkpoint, split=FLAGS.split,
                               follow=FLAGS.follow)
  else:
    splits = (evaluate.representations.SPLITS if FLAGS.split == 'all'
              else (FLAGS.split,))
    written = evaluate.extract_all(FLAGS.config, FLAGS.workdir,
                                   splits=splits, checkpoint=FLAGS.checkpoint)
    for paths in written.values():
      for path in paths.values():
        print(path)
    return
  # The last stdout line: the metrics, for scripts.
  print(evaluate.to_json_line(report), flush=True)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)

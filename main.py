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

A user error (no prepared shards, a workdir of another experiment or in use
by another job, no checkpoint, an unknown stage, a diverged run) ends with
one line `error: ...` on stderr and exit status 2; anything else is a bug
and keeps its traceback.
"""

import logging as python_logging
import sys

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
flags.DEFINE_enum('split', 'test', ['train', 'val', 'test', 'all'],
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


def _splits():
  """--split as the tuple of splits extract writes."""
  from mmgenre_jax import representations  # pylint: disable=g-import-not-at-top
  return representations.SPLITS if FLAGS.split == 'all' else (FLAGS.split,)


def _print_paths(written) -> None:
  """extract: each representation file written, one per line."""
  for paths in written.values():
    for path in paths.values():
      print(path, flush=True)


def _check_flags(config, is_pipeline: bool) -> None:
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax import errors
  if FLAGS.mode == 'evaluate' and FLAGS.split == 'all':
    raise errors.UserError('--split=all is for --mode=extract; evaluate '
                           'one split: --split=train, val or test.')
  if FLAGS.stage is not None and not is_pipeline:
    raise errors.UserError(
        f'--stage={FLAGS.stage} needs a pipeline config (configs/'
        f'mumu_cosine.py, ...); {config.model.name} is a single network.')
  if FLAGS.stage is not None and FLAGS.mode == 'train':
    raise errors.UserError(
        '--stage is for --mode=evaluate, extract and summary; training runs '
        'the whole pipeline (complete stages are skipped).')


def _run(config) -> None:
  """The mode on a single-network or a pipeline config."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.pipelines import spec
  is_pipeline = spec.is_pipeline(config)
  _check_flags(config, is_pipeline)
  if FLAGS.mode == 'summary':
    if is_pipeline:
      from mmgenre_jax.pipelines import modes
      modes.print_summary(config, FLAGS.workdir, stage=FLAGS.stage)
    else:
      from mmgenre_jax import summary
      summary.print_summary(config)
    return
  from mmgenre_jax import sharding
  # Before anything touches the devices (multi-process launches).
  sharding.maybe_initialize_distributed()
  from mmgenre_jax import evaluate
  from mmgenre_jax import train
  from mmgenre_jax.pipelines import modes
  from mmgenre_jax.pipelines import runner
  # pylint: enable=g-import-not-at-top
  logging.info('mode=%s workdir=%s', FLAGS.mode, FLAGS.workdir)
  # Each run ends with one JSON line on stdout (per stage of a pipeline),
  # for scripts.
  if FLAGS.mode == 'train' and is_pipeline:
    # Every stage in its own sub-workdir, then report.md and results.json.
    runner.run_pipeline(config, FLAGS.workdir)
  elif FLAGS.mode == 'train':
    print(evaluate.to_json_line(
        train.train_and_evaluate(config, FLAGS.workdir)), flush=True)
  elif FLAGS.mode == 'evaluate' and is_pipeline:
    for _, report in modes.evaluate_stages(
        config, FLAGS.workdir, stage=FLAGS.stage,
        checkpoint=FLAGS.checkpoint, split=FLAGS.split, follow=FLAGS.follow):
      print(evaluate.to_json_line(report), flush=True)
  elif FLAGS.mode == 'evaluate':
    print(evaluate.to_json_line(evaluate.evaluate(
        config, FLAGS.workdir, checkpoint=FLAGS.checkpoint, split=FLAGS.split,
        follow=FLAGS.follow)), flush=True)
  elif is_pipeline:
    for name, written in modes.extract_stages(
        config, FLAGS.workdir, stage=FLAGS.stage, splits=_splits(),
        checkpoint=FLAGS.checkpoint):
      _print_paths(written)
      print(evaluate.to_json_line({'stage': name, 'representations': {
          split: {rep: str(path) for rep, path in paths.items()}
          for split, paths in written.items()}}), flush=True)
  else:
    _print_paths(evaluate.extract_all(config, FLAGS.workdir,
                                      splits=_splits(),
                                      checkpoint=FLAGS.checkpoint))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if not FLAGS.checkpoint_logs:
    logging.get_absl_handler().addFilter(_quiet_checkpoint_logs)
  # TensorFlow (tf.data) without its start-up notices and off the GPUs, which
  # JAX owns; also drops JAX's "no TPU here" notice.
  from input_pipeline import startup  # pylint: disable=g-import-not-at-top
  startup.import_tensorflow()
  # pylint: disable=g-import-not-at-top
  from input_pipeline import pipeline
  from mmgenre_jax import errors
  # pylint: enable=g-import-not-at-top
  try:
    _run(FLAGS.config)
  except (errors.UserError, pipeline.ManifestError) as e:
    # Mistakes in the command or the files it names: the message is the fix,
    # a traceback would bury it. Every other exception keeps its traceback.
    print(errors.one_line(e), file=sys.stderr, flush=True)
    return errors.EXIT_CODE
  return 0


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)

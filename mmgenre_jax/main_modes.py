"""What main.py runs: one mode on a single-network or a pipeline config.

  modes_lib.run(config, workdir, mode='evaluate', checkpoint='best',
                split='test')

Every mode ends with one JSON line on stdout per network (per stage of a
pipeline), for scripts; extract first prints each file it wrote. Mistakes a
user can fix raise mmgenre_jax.errors.UserError, which main.py prints as one
line.
"""

from typing import Optional

from absl import logging
import ml_collections

from mmgenre_jax import errors

MODES = ('train', 'evaluate', 'extract', 'summary')
SPLITS = ('train', 'val', 'test', 'all')


def _splits(split: str):
  """--split as the tuple of splits extract writes."""
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.data import representations
  return representations.SPLITS if split == 'all' else (split,)


def _print_paths(written) -> None:
  """extract: each representation file written, one per line."""
  for paths in written.values():
    for path in paths.values():
      print(path, flush=True)


def _check_flags(config, is_pipeline: bool, mode: str, split: str,
                 stage: Optional[str]) -> None:
  if mode == 'evaluate' and split == 'all':
    raise errors.UserError('--split=all is for --mode=extract; evaluate '
                           'one split: --split=train, val or test.')
  if stage is not None and not is_pipeline:
    raise errors.UserError(
        f'--stage={stage} needs a pipeline config (configs/'
        f'mumu_cosine.py, ...); {config.model.name} is a single network.')
  if stage is not None and mode == 'train':
    raise errors.UserError(
        '--stage is for --mode=evaluate, extract and summary; training runs '
        'the whole pipeline (complete stages are skipped).')


def run(config: ml_collections.ConfigDict, workdir: str, *, mode: str,
        stage: Optional[str] = None, checkpoint: Optional[str] = None,
        split: str = 'test', follow: bool = False) -> None:
  """Runs `mode` (MODES) on a single-network or pipeline config.

  Args:
    config: an experiment or pipeline config (configs/*.py).
    workdir: the (pipeline) workdir.
    mode: 'train', 'evaluate', 'extract' or 'summary'.
    stage: pipelines: only this stage (evaluate, extract, summary).
    checkpoint: evaluate/extract: 'best', 'latest' or a step.
    split: evaluate: 'train', 'val' or 'test'; extract also 'all'.
    follow: evaluate: follow a running training job.
  """
  # pylint: disable=g-import-not-at-top
  from input_pipeline import layout
  from mmgenre_jax.pipelines import definition
  is_pipeline = definition.is_pipeline(config)
  _check_flags(config, is_pipeline, mode, split, stage)
  if is_pipeline:
    # Stages the shards cannot feed (a catalog without reviews) are left out.
    config = definition.for_shards(config,
                             layout.read_manifest(config.data.shard_dir))
    for name, why in (config.get('dropped_stages') or {}).items():
      print(f'[{config.name}] stage {name} left out: {why}', flush=True)
  if mode == 'summary':
    if is_pipeline:
      from mmgenre_jax.pipelines import stage_modes
      stage_modes.print_summary(config, workdir, stage=stage)
    else:
      from mmgenre_jax.data import facts
      from mmgenre_jax.models import parameter_table
      parameter_table.print_summary(config, facts.trained(workdir))
    return
  from mmgenre_jax import sharding
  # Before anything touches the devices (multi-process launches).
  sharding.maybe_initialize_distributed()
  from mmgenre_jax.evaluation import evaluate
  from mmgenre_jax.evaluation import extract
  from mmgenre_jax.pipelines import runner
  from mmgenre_jax.pipelines import stage_modes
  from mmgenre_jax.train import loop as train_loop
  # pylint: enable=g-import-not-at-top
  logging.info('mode=%s workdir=%s', mode, workdir)
  if mode == 'train' and is_pipeline:
    # Every stage in its own sub-workdir, then report.md and results.json.
    runner.run_pipeline(config, workdir)
  elif mode == 'train':
    print(evaluate.to_json_line(train_loop.train_and_evaluate(config, workdir)),
          flush=True)
  elif mode == 'evaluate' and is_pipeline:
    for _, report in stage_modes.evaluate_stages(
        config, workdir, stage=stage, checkpoint=checkpoint, split=split,
        follow=follow):
      print(evaluate.to_json_line(report), flush=True)
  elif mode == 'evaluate':
    print(evaluate.to_json_line(evaluate.evaluate(
        config, workdir, checkpoint=checkpoint, split=split, follow=follow)),
          flush=True)
  elif is_pipeline:
    for name, written in stage_modes.extract_stages(
        config, workdir, stage=stage, splits=_splits(split),
        checkpoint=checkpoint):
      _print_paths(written)
      print(evaluate.to_json_line({'stage': name, 'representations': {
          s: {rep: str(path) for rep, path in paths.items()}
          for s, paths in written.items()}}), flush=True)
  else:
    _print_paths(extract.extract_all(config, workdir, splits=_splits(split),
                                     checkpoint=checkpoint))

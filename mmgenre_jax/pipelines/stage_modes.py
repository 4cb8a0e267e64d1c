"""main.py's summary, evaluate and extract modes on a pipeline config.

  python main.py --config=configs/mumu_cosine.py:cpu \
      --workdir=runs/mumu_cosine --mode=summary   # every stage's table
  python main.py ... --mode=evaluate [--stage=audio] [--checkpoint=best]
  python main.py ... --mode=extract --split=all [--stage=audio_text_image]

Each stage runs with the config the pipeline trains it with
(runner.resolve_stage_config) in its stage workdir W/<stage>, in
config.stage_order, or only the stage --stage names. Training a pipeline is
runner.run_pipeline.

  for name, report in stage_modes.evaluate_stages(config,
                                                  'runs/mumu_cosine'):
    print(name, report['roc_auc'])
"""

import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from etils import epath
import ml_collections

from mmgenre_jax import errors
from mmgenre_jax.data import facts
from mmgenre_jax.data import representations
from mmgenre_jax.pipelines import runner
from mmgenre_jax.pipelines import definition

# Seconds between two looks for a stage's inputs in follow mode.
POLL_SECONDS = 10.0


def select_stages(config: ml_collections.ConfigDict,
                  stage: Optional[str] = None) -> List[str]:
  """The stages a mode runs on: all, in order, or the one `stage` names.

  Raises:
    errors.UnknownStageError: `stage` is not a stage of the pipeline.
  """
  definition.validate(config)
  order = list(config.stage_order)
  if stage is None:
    return order
  if stage not in order:
    raise errors.UnknownStageError(
        f'--stage={stage}: pipeline {config.name} has no such stage; its '
        f'stages are {", ".join(order)}.')
  return [stage]


def print_summary(config: ml_collections.ConfigDict, workdir,
                  *, stage: Optional[str] = None) -> int:
  """Prints each stage's parameter table, then the totals.

  A stage trained in `workdir` is sized by the data it was trained on
  (its data_facts.json: the label count of the shards, the fused vectors'
  sizes), so that the totals are those of the trained networks; a stage not
  trained yet by its config (a fusion's inputs linked from its input
  stages' networks, definition.link_input_dims). The last line printed is
  `total_params=N`, the sum over the stages.

  Returns:
    N, the trainable parameters of the selected stages together.
  """
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.models import parameter_table
  names = select_stages(config, stage)
  totals = []
  for name in names:
    stage_config = runner.resolve_stage_config(config, name, workdir)
    print(f'== stage {name} ({config.stages[name].kind}): '
          f'{definition.config_string(config.stages[name], stage_config)}')
    totals.append((name, parameter_table.print_summary(
        stage_config, facts.trained(epath.Path(workdir) / name))))
    print()
  width = max(len(name) for name in names)
  print(f'pipeline {config.name}: {len(names)} stage(s)')
  for name, total in totals:
    print(f'  {name:<{width}}  {total:>13,}')
  total = sum(count for _, count in totals)
  print(f'total_params={total}')
  return total


def _require_checkpoints(config, workdir, names: Sequence[str]) -> None:
  """Fails before any work when a selected stage has no checkpoint."""
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.train import checkpoints
  trained = {name: any(step is not None for step in
                       checkpoints.latest_steps(workdir / name).values())
             for name in config.stage_order}
  untrained = [name for name in names if not trained[name]]
  if not untrained:
    return
  train = (f'python main.py --config={config.config_ref} '
           f'--workdir={workdir}')
  ready = [name for name in config.stage_order if trained[name]]
  hint = (f', or pick a trained stage with --stage ({", ".join(ready)})'
          if ready else '')
  raise errors.NoCheckpointError(
      f'{workdir}: stage(s) {", ".join(untrained)} have no checkpoint; '
      f'train the pipeline first ({train}){hint}.')


def _wait_for_inputs(config, name: str, workdir, poll_seconds: float,
                     timeout_s: Optional[float]) -> None:
  """Follow mode: waits until the stages `name` reads have extracted."""
  start = time.time()
  while True:
    missing = [f'{source}/{path}'
               for rep, source in config.stages[name].inputs.items()
               for path in runner.missing_representations(workdir / source,
                                                          (rep,))]
    if not missing:
      return
    if timeout_s is not None and time.time() - start > timeout_s:
      raise TimeoutError(
          f'Stage {name} still lacks its inputs {missing} in {workdir} '
          f'after {timeout_s:.0f} s; is the pipeline training there?')
    time.sleep(poll_seconds)


def evaluate_stages(config: ml_collections.ConfigDict, workdir,
                    *, stage: Optional[str] = None,
                    checkpoint: Any = None, split: str = 'test',
                    follow: bool = False,
                    poll_seconds: float = POLL_SECONDS,
                    timeout_s: Optional[float] = None
                    ) -> Iterator[Tuple[str, Dict[str, Any]]]:
  """evaluate.evaluate on each selected stage, in order.

  Args:
    config: a pipeline config.
    workdir: the pipeline workdir W.
    stage: only this stage (default: all).
    checkpoint, split, follow, poll_seconds, timeout_s: as in
      evaluate.evaluate. With follow=True each stage is followed until its
      training is done (a fusion / alignment stage once its inputs are
      extracted), as the pipeline trains them one after another.

  Yields:
    (stage name, its report with 'stage': name added), as each finishes.

  Raises:
    errors.UnknownStageError, errors.WorkdirError, errors.NoCheckpointError
    (outside follow mode, before any stage is evaluated).
  """
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.evaluation import evaluate
  workdir = epath.Path(workdir)
  names = select_stages(config, stage)
  runner.check_pipeline_workdir(config, workdir)
  if not follow:
    _require_checkpoints(config, workdir, names)
  for name in names:
    if follow:
      _wait_for_inputs(config, name, workdir, poll_seconds, timeout_s)
    stage_config = runner.resolve_stage_config(config, name, workdir)
    report = evaluate.evaluate(stage_config, workdir / name,
                               checkpoint=checkpoint, split=split,
                               follow=follow, poll_seconds=poll_seconds,
                               timeout_s=timeout_s)
    report['stage'] = name
    yield name, report


def extract_stages(config: ml_collections.ConfigDict, workdir,
                   *, stage: Optional[str] = None,
                   splits: Sequence[str] = representations.SPLITS,
                   checkpoint: Any = None
                   ) -> Iterator[Tuple[str, Dict[str, Dict[str, Any]]]]:
  """extract.extract_all on each selected stage, in order.

  A fusion / alignment stage reads the representations its input stages
  wrote (their training split sizes its network), so extracting every stage
  in order also refreshes what the later ones read.

  Yields:
    (stage name, split -> representation name -> path written).

  Raises:
    As evaluate_stages.
  """
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.evaluation import extract
  workdir = epath.Path(workdir)
  names = select_stages(config, stage)
  runner.check_pipeline_workdir(config, workdir)
  _require_checkpoints(config, workdir, names)
  for name in names:
    stage_config = runner.resolve_stage_config(config, name, workdir)
    yield name, extract.extract_all(stage_config, workdir / name,
                                     splits=splits, checkpoint=checkpoint)

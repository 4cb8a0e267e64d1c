"""A trained stage restored from one of its checkpoints, ready to evaluate.

  found = restore.checkpoint(config, workdir, 'best')
  found.stage.task.evaluate_split(found.stage.steps, found.state,
                                  found.stage.config, 'test')

The same set-up as training (train/setup.py), so evaluating the best
checkpoint of a finished run on the same devices reproduces its
test_metrics.json. The checkpoint is looked up before any data is read or
compiled: a workdir without it fails fast with errors.NoCheckpointError.
"""

import dataclasses
from typing import Any, Optional, Union

import ml_collections

from mmgenre_jax import errors
from mmgenre_jax.train import checkpoints
from mmgenre_jax.train import setup as setup_lib
from mmgenre_jax.train import train_state

CheckpointSpec = Optional[Union[str, int]]


def find_checkpoint(managers, checkpoint: CheckpointSpec, workdir):
  """(manager, step, kind) of 'best', 'latest' or a step number."""
  latest, best = managers
  if latest.latest_step() is None and best.latest_step() is None:
    raise errors.NoCheckpointError(
        f'{workdir} has no checkpoint (checkpoints/best and '
        'checkpoints/latest are empty or absent); train there first '
        f'(python main.py --config=... --workdir={workdir}) or pass the '
        '--workdir of a trained run.')
  if checkpoint is None:
    checkpoint = 'best' if best.latest_step() is not None else 'latest'
  if isinstance(checkpoint, str) and checkpoint.isdigit():
    checkpoint = int(checkpoint)
  if checkpoint in ('best', 'latest'):
    manager = best if checkpoint == 'best' else latest
    step = manager.latest_step()
    if step is None:
      raise errors.NoCheckpointError(
          f'{workdir} has no {checkpoint} checkpoint (looked in '
          f'{manager.directory}); train first, or pass --checkpoint=latest.')
    return manager, step, checkpoint
  if isinstance(checkpoint, int):
    for kind, manager in (('latest', latest), ('best', best)):
      if checkpoint in manager.all_steps():
        return manager, checkpoint, kind
    raise errors.NoCheckpointError(
        f'No checkpoint of step {checkpoint} in {workdir}; it has latest '
        f'{latest.all_steps()} and best {best.all_steps()}.')
  raise errors.UserError(f'--checkpoint={checkpoint}: use best, latest or '
                         'a step number.')


class Evaluator:
  """Restores checkpoints of one workdir and evaluates them."""

  def __init__(self, config: ml_collections.ConfigDict, workdir):
    self.workdir = workdir
    self.stage = setup_lib.setup(config, workdir)
    self.abstract_state = train_state.abstract_train_state(
        config, self.stage.model, self.stage.mesh, facts=self.stage.facts)

  def restore(self, manager, step: int):
    """(state, checkpoints.Progress) of one saved step."""
    return checkpoints.restore(manager, step, self.abstract_state)

  def evaluate(self, state, split: str, *, collect: bool = False):
    """The task's SplitResult of `state` on a split."""
    return self.stage.task.evaluate_split(self.stage.steps, state,
                                          self.stage.config, split,
                                          collect=collect)

  def collects_scores(self, split: str) -> bool:
    return self.stage.task.collects_scores(self.stage.steps, split)


@dataclasses.dataclass(frozen=True)
class Restored:
  """One checkpoint restored: its evaluator, state, progress, step, kind."""
  evaluator: Evaluator
  state: Any
  progress: checkpoints.Progress
  step: int
  kind: str


def checkpoint(config: ml_collections.ConfigDict, workdir,
               spec: CheckpointSpec) -> Restored:
  """Looks up `spec` (before reading any data) and restores it."""
  managers = checkpoints.managers(workdir, read_only=True)
  try:
    manager, step, kind = find_checkpoint(managers, spec, workdir)
    evaluator = Evaluator(config, workdir)
    state, progress = evaluator.restore(manager, step)
  finally:
    for manager in managers:
      manager.close()
  return Restored(evaluator=evaluator, state=state, progress=progress,
                  step=int(step), kind=kind)

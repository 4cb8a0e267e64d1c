"""Orbax checkpoints of a stage workdir: the one module that reads and writes them.

Training saves {'state': the TrainState's state dict, 'meta': progress} in two
series, S/checkpoints/latest (resume) and S/checkpoints/best (lowest
validation loss), one checkpoint each (docs/workdirs.md §1). Training and
evaluation restore into a TrainState (`restore`); tagging reads the
variables without building an optimizer (`restore_variables`).

  latest, best = checkpoints.managers(workdir)
  checkpoints.save(latest, step, state, meta)
  state, meta = checkpoints.restore(best, best.latest_step(), abstract_state)
  variables = checkpoints.restore_variables(workdir)   # {'params': ...}

One job writes a workdir's checkpoints at a time: train/workdir_guard.py.
"""

import contextlib
import dataclasses
import logging as std_logging
from typing import Any, Dict, Iterator, Optional, Tuple

from absl import logging
from etils import epath
import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

from input_pipeline import fileio
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib



@dataclasses.dataclass
class Progress:
  """Training progress, saved beside the state (checkpoint key 'meta').

  Attributes:
    epoch: epochs done (validated).
    batches_in_epoch: batches done of the current epoch (a mid-epoch
      checkpoint resumes after them).
    best_val_loss: the lowest validation loss so far.
    bad_epochs: epochs since it improved (early stopping).
    best_epoch: the epoch of checkpoints/best (-1: none yet).
    train_seconds: training time, evaluation excluded, over resumed parts.
    timed_batches: the batches train_seconds covers.
  """
  epoch: int = 0
  batches_in_epoch: int = 0
  best_val_loss: float = np.inf
  bad_epochs: int = 0
  best_epoch: int = -1
  train_seconds: float = 0.0
  timed_batches: int = 0


class CheckpointError(errors.UserError, ValueError):
  """A workdir has no checkpoint to read; the message says what to do."""


def _root(workdir) -> epath.Path:
  # Orbax needs an absolute directory: a local workdir is made absolute, a
  # URL (gs://bucket/...) is one already and passes through unchanged.
  root = epath.Path(workdir)
  if fileio.is_local(root):
    root = root.absolute()
  return root / workdir_lib.CHECKPOINTS_DIR


def manager(workdir, kind: str, *, read_only: bool = False
            ) -> ocp.CheckpointManager:
  """The manager of one series (workdir_lib.LATEST or BEST): one checkpoint."""
  # Both series may save the same step at once; orbax names its
  # multi-process barriers after the step, so each needs its own prefix.
  # A read-only manager keeps and saves nothing; saying so up front spares
  # orbax's warnings that it overrides max_to_keep and save_interval_steps.
  options = ocp.CheckpointManagerOptions(
      max_to_keep=None if read_only else 1,
      save_interval_steps=0 if read_only else 1,
      create=not read_only, read_only=read_only,
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          barrier_sync_key_prefix=kind))
  return ocp.CheckpointManager(_root(workdir) / kind, options=options)


def managers(workdir, *, read_only: bool = False
             ) -> Tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
  """(latest, best): one checkpoint each, under workdir/checkpoints/."""
  return (manager(workdir, workdir_lib.LATEST, read_only=read_only),
          manager(workdir, workdir_lib.BEST, read_only=read_only))


def save(mngr: ocp.CheckpointManager, step: int, state: Any,
         progress: Progress) -> None:
  """Saves (state, progress) as `step` (asynchronously; orbax finishes it)."""
  item = {'state': flax.serialization.to_state_dict(state),
          'meta': {k: np.asarray(v) for k, v in
                   dataclasses.asdict(progress).items()}}
  mngr.save(step, args=ocp.args.StandardSave(item), force=True)


def _meta_target() -> Dict[str, np.ndarray]:
  # Floats are float64, so that a restored best loss compares exactly.
  return {k: np.asarray(v, np.float64 if isinstance(v, float) else np.int64)
          for k, v in dataclasses.asdict(Progress()).items()}


def restore(mngr: ocp.CheckpointManager, step: int,
            state: Any) -> Tuple[Any, Progress]:
  """Restores (state, progress) of `step` into the structure of `state`.

  Args:
    mngr: a manager from `managers`.
    step: the saved step.
    state: a TrainState, concrete or abstract (jax.ShapeDtypeStruct leaves
      with shardings); the restored arrays get its shardings.

  Returns:
    The restored TrainState and its Progress.
  """
  target = {'state': flax.serialization.to_state_dict(state),
            'meta': _meta_target()}
  restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
  new_state = flax.serialization.from_state_dict(state, restored['state'])
  return new_state, Progress(**{k: np.asarray(v).item() for k, v in
                                restored['meta'].items()})


# Orbax warns on every read-only manager it opens; tagging opens one per
# stage on each load, where the notice is expected and only noise on stderr.
_READ_ONLY_NOTICE = 'Given directory is read only'


class _DropReadOnlyNotice(std_logging.Filter):

  def filter(self, record: std_logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_READ_ONLY_NOTICE)


@contextlib.contextmanager
def _without_read_only_notice() -> Iterator[None]:
  notice = _DropReadOnlyNotice()
  logger = logging.get_absl_logger()
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


def restore_variables(workdir) -> Dict[str, Any]:
  """params (+ batch_stats) of the best checkpoint, else the latest.

  Restored without a target (orbax reads the saved tree), so neither the
  model nor the optimizer needs to be rebuilt; opens the series read-only,
  so a stage workdir is never written to.

  Args:
    workdir: a stage workdir S.

  Returns:
    {'params': ..., ['batch_stats': ...]} as numpy arrays.

  Raises:
    CheckpointError: neither series holds a checkpoint.
  """
  for kind in workdir_lib.CHECKPOINT_KINDS:
    if not workdir_lib.checkpoint_dir(workdir, kind).exists():
      continue
    with _without_read_only_notice():
      mngr = manager(workdir, kind, read_only=True)
    try:
      step: Optional[int] = mngr.latest_step()
      if step is None:
        continue
      restored = mngr.restore(step, args=ocp.args.StandardRestore())
    finally:
      mngr.close()
    state = restored['state']
    variables = {'params': jax.device_get(state['params'])}
    if state.get('batch_stats'):
      variables['batch_stats'] = jax.device_get(state['batch_stats'])
    if kind != workdir_lib.BEST:
      logging.warning('%s has no best checkpoint; using the latest (step %d).',
                      workdir, step)
    return variables
  raise CheckpointError(
      f'{workdir}: no checkpoint in checkpoints/best or checkpoints/latest; '
      'train the stage first (python main.py --config=... --workdir=...).')


def latest_steps(workdir) -> Dict[str, Optional[int]]:
  """{LATEST: step or None, BEST: step or None}, read without writing."""
  steps = {}
  for kind in workdir_lib.CHECKPOINT_KINDS:
    steps[kind] = None
    if not workdir_lib.checkpoint_dir(workdir, kind).exists():
      continue
    with _without_read_only_notice():
      mngr = manager(workdir, kind, read_only=True)
    try:
      steps[kind] = mngr.latest_step()
    finally:
      mngr.close()
  return steps

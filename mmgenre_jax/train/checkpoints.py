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
  with checkpoints.workdir_lock(workdir):              # one writer at a time
    ...

The lock (`workdir_lock`, S/training.lock) keeps a second training job off a
workdir whose checkpoints one job is writing (docs/workdirs.md §1).
"""

import contextlib
import datetime
import fcntl
import json
import logging as std_logging
import os
import socket
import sys
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

from absl import logging
from etils import epath
import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

from input_pipeline import fileio
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib

# Training progress saved beside the state; floats are float64 so that a
# restored best loss compares exactly.
META_DEFAULTS = {'epoch': 0, 'batches_in_epoch': 0,
                 'best_val_loss': np.inf, 'bad_epochs': 0,
                 'best_epoch': -1, 'train_seconds': 0.0, 'timed_batches': 0}


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
         meta: Mapping[str, Any]) -> None:
  """Saves (state, meta) as `step` (asynchronously; orbax finishes it)."""
  item = {'state': flax.serialization.to_state_dict(state),
          'meta': {k: np.asarray(v) for k, v in meta.items()}}
  mngr.save(step, args=ocp.args.StandardSave(item), force=True)


def _meta_target() -> Dict[str, np.ndarray]:
  return {k: np.asarray(v, np.float64 if isinstance(v, float) else np.int64)
          for k, v in META_DEFAULTS.items()}


def restore(mngr: ocp.CheckpointManager, step: int,
            state: Any) -> Tuple[Any, Dict[str, Any]]:
  """Restores (state, meta) of `step` into the structure of `state`.

  Args:
    mngr: a manager from `managers`.
    step: the saved step.
    state: a TrainState, concrete or abstract (jax.ShapeDtypeStruct leaves
      with shardings); the restored arrays get its shardings.

  Returns:
    The restored TrainState and its meta dict (python scalars).
  """
  target = {'state': flax.serialization.to_state_dict(state),
            'meta': _meta_target()}
  restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
  new_state = flax.serialization.from_state_dict(state, restored['state'])
  meta = {k: np.asarray(v).item() for k, v in restored['meta'].items()}
  return new_state, meta


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


# --- One writer per workdir ------------------------------------------------

# Locks this process holds: lock file path -> [fd, depth]. Re-entrant, so a
# caller holding a workdir's lock may call code that takes it again.
_HELD: Dict[str, list] = {}


def _locked_message(workdir, path: str, fd: int) -> str:
  """Who holds the lock (the JSON line its holder wrote) and what to do."""
  try:
    holder = json.loads(os.pread(fd, 4096, 0).decode('utf-8'))
    who = (f'pid {holder["pid"]} on host {holder["host"]} (since '
           f'{holder["since"]}: {holder["command"]})')
    host = holder['host']
  except (OSError, ValueError, KeyError, TypeError):
    # The holder has locked but not yet written its line.
    who, host = 'another process (it has not written its pid yet)', 'any host'
  return (f'{workdir} is in use: {path} is held by {who}. Wait for that '
          'job, or stop it (the lock goes with its process, kill -9 '
          'included), or pick another --workdir. Only if no such process '
          f'runs on {host} (a crashed machine sharing this directory over '
          f'NFS) delete {path}.')


def _acquire(workdir) -> Callable[[], None]:
  """Takes workdir/LOCK_FILE; returns the function that releases it."""
  path = os.path.realpath(os.fspath(
      epath.Path(workdir) / workdir_lib.LOCK_FILE))
  if path in _HELD:
    _HELD[path][1] += 1
  else:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Never deleted: unlinking a lock file another process has open lets a
    # third one lock a new file of the same name beside it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      message = _locked_message(workdir, path, fd)
      os.close(fd)
      raise errors.WorkdirLockedError(message) from None
    line = {'pid': os.getpid(), 'host': socket.gethostname(),
            'since': datetime.datetime.now().isoformat(timespec='seconds'),
            'command': ' '.join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(line) + '\n').encode('utf-8'), 0)
    _HELD[path] = [fd, 1]

  def release() -> None:
    held = _HELD[path]
    held[1] -= 1
    if held[1] == 0:
      del _HELD[path]
      fcntl.flock(held[0], fcntl.LOCK_UN)
      os.close(held[0])

  return release


@contextlib.contextmanager
def workdir_lock(workdir) -> Iterator[None]:
  """Holds workdir/LOCK_FILE for the block: one training job per workdir.

  An exclusive fcntl.flock on the open file: the kernel releases it when the
  process ends, however it ends (kill -9 included), so a stopped run never
  leaves a stale lock on a local disk; the file stays and names its last
  holder (pid, host, start time, command). A second job fails at once with
  errors.WorkdirLockedError naming the holder. Re-entrant in one process.
  Only process 0 of a multi-host run takes it (the others write no
  checkpoint alone). gs:// workdirs have no lock (a warning says so):
  keeping to one job there is the user's part (docs/workdirs.md §1).

  Args:
    workdir: a stage or pipeline workdir (created if needed).

  Raises:
    errors.WorkdirLockedError: another live process holds the lock.
  """
  if jax.process_index() != 0:
    yield
    return
  if not fileio.is_local(epath.Path(workdir)):
    logging.warning('%s is not on a local disk: no %s lock; make sure no '
                    'other job trains in it.', workdir, workdir_lib.LOCK_FILE)
    yield
    return
  release = _acquire(workdir)
  try:
    yield
  finally:
    release()

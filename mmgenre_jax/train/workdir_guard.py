"""Who may use a workdir: one job at a time, one experiment for ever.

`workdir_lock` holds S/training.lock (W/training.lock for a pipeline) while a
job trains there: a second job fails at once naming the holder.
`check_workdir` refuses a workdir whose config.json names another network,
target or dataset (resuming there would mix two experiments, or fail deep in
orbax on a shape). Both errors are one line a user can act on
(mmgenre_jax/errors.py).

  with workdir_guard.workdir_lock(workdir):
    workdir_guard.check_workdir(config, workdir)
    ...
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
from typing import Any, Callable, Dict, Iterator, Mapping

from absl import logging
from etils import epath
import jax
import ml_collections

from input_pipeline import fileio
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib


# The fields of a workdir's config.json that tell one experiment from another:
# resuming or evaluating with another network, target or dataset would mix
# two experiments (or fail deep in orbax on a shape).
WORKDIR_IDENTITY = (('model', 'name'), ('model', 'target'),
                    ('data', 'dataset'))


def _identity(config: Mapping[str, Any]) -> Dict[str, Any]:
  """{'model.name': ..., 'model.target': ..., 'data.dataset': ...}."""
  values = {}
  for section, field in WORKDIR_IDENTITY:
    node = config.get(section) or {}
    values[f'{section}.{field}'] = node.get(field)
  return values


def _describe(identity: Mapping[str, Any]) -> str:
  return ', '.join(f'{key.split(".")[-1]} {value}'
                   for key, value in identity.items())


def check_workdir(config: ml_collections.ConfigDict, workdir) -> None:
  """Checks that `workdir` is empty or holds this experiment.

  Args:
    config: the experiment config about to train, evaluate or extract.
    workdir: its stage workdir S; S/config.json (written when training
      starts) names the network, target and dataset of the run there.

  Raises:
    errors.WorkdirError: S/config.json names another model.name,
      model.target or data.dataset, or S is a pipeline workdir.
  """
  workdir = epath.Path(workdir)
  pipeline_record = workdir_lib.read_pipeline(workdir)
  if pipeline_record is not None:
    raise errors.WorkdirError(
        f'{workdir} is the workdir of pipeline '
        f'{pipeline_record.get("name")!r} ({pipeline_record.get("config")}), '
        'not of one network; pass that pipeline config, or a stage workdir '
        f'{workdir}/<stage>, or pick another --workdir.')
  saved = workdir_lib.read_json(workdir / workdir_lib.CONFIG_JSON)
  if not isinstance(saved, dict):
    return
  old, new = _identity(saved), _identity(config)
  if old != new:
    raise errors.WorkdirError(
        f'{workdir} holds another experiment ({_describe(old)}; this config: '
        f'{_describe(new)}); pick another --workdir (or delete {workdir} '
        'to start over).')


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

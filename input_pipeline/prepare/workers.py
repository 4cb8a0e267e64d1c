"""The feature jobs of `mmgenre prepare` and the processes that run them.

Audio patches and covers are computed in worker processes (Sec 3.1: one
seeded random 15 s crop per track, `track_seed`); `WorkerPool.map` yields the
results in input order, so the shards do not depend on the worker count. A
worker runs a module-level function of a path (`audio_features`,
`features.image.load_image`); this module imports neither TensorFlow nor JAX,
so a worker that unpickles `audio_features` does not load them.

  pool = prepare_workers.WorkerPool(4)
  try:
    for item, value, error in pool.map(prepare_workers.audio_features, items,
                                       lambda item: {'seed': 0,
                                                     'windows': False}):
      ...   # value: (patch float32 [322, 96], None); error: an exception
  finally:
    pool.close()

The pool starts its workers with forkserver (or spawn), which re-imports the
caller's main module in every worker: a program that starts the preparation
(job.prepare, a TFDS builder's download_and_prepare, WorkerPool) must be a
script file whose top-level code is under `if __name__ == '__main__':`. Not
a program read from standard input (`python - < prog.py`), whose main module
no worker can re-import. A new pool runs a probe before any item; when its
workers cannot start, `map` raises WorkerStartError, naming the cause and
the fix, and no item is tried or reported skipped (`workers=1` runs the
items in this process, without workers).
"""

import collections
import concurrent.futures
import hashlib
import multiprocessing
import os
import sys
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

from input_pipeline import errors as input_errors
from input_pipeline import fileio
from input_pipeline import startup

# Not release_items (its Items are the jobs): a worker imports this module
# to unpickle `audio_features`, and release_items brings scikit-learn
# (features.text, seconds per worker) that no worker needs.
from input_pipeline.features import audio as audio_lib

# Futures in flight per worker: keeps the workers busy without holding every
# decoded patch of a large corpus in memory.
IN_FLIGHT_PER_WORKER = 4
# Seconds a new pool's first worker has to start and run the probe: it
# imports the feature code (librosa), seconds on a busy machine.
PROBE_TIMEOUT_S = 300
# XLA on one thread in each worker (the JAX front end): the pool already
# runs a worker per core, and XLA's own thread pool per worker would make
# them compete (BENCHMARKS.md §11).
WORKER_XLA_FLAGS = ('--xla_cpu_multi_thread_eigen=false '
                    'intra_op_parallelism_threads=1')


class WorkerStartError(input_errors.UserError, RuntimeError):
  """The worker processes could not start: no item was tried."""


def track_seed(seed: int, track_id: str) -> int:
  """The crop seed of a track: a stable hash of (seed, track id).

  Python's hash() changes between processes; sha256 does not, so the same
  seed gives the same patches on every run and worker count.
  """
  digest = hashlib.sha256(f'{seed}/{track_id}'.encode('utf-8')).digest()
  return int.from_bytes(digest[:4], 'little')


def audio_features(path, *, seed: int, windows: bool,
                   frontend: Optional[str] = None) -> tuple:
  """(patch, windows or None) of a track; runs in a worker process.

  Args:
    path: the audio file.
    seed: the patch crop seed (`track_seed`).
    windows: also cut the whole-track windows (one decode for both).
    frontend: the audio front end's name; None: frontends.DEFAULT.

  Returns:
    patch: float32 [322, 96]; windows: float32 [n, 322, 96] or None.
  """
  if windows:
    return audio_lib.audio_patch_and_windows(path, seed=seed,
                                             frontend=frontend)
  return audio_lib.audio_patch(path, seed=seed, frontend=frontend), None


def run_job(fn: Callable, job: Any,
            kwargs_fn: Callable[[Any], Dict[str, Any]]) -> tuple:
  """(job, fn(job.path, **kwargs_fn(job)), None), or (job, None, error).

  In this process: WorkerPool.map with one worker, and the Beam workers of
  beam_prepare (which are processes of their own already).
  """
  try:
    return job, on_file(fn, job.path, **kwargs_fn(job)), None
  except Exception as e:  # pylint: disable=broad-except
    # A bad input must not stop the job: the caller skips and reports it.
    return job, None, e


def on_file(fn: Callable, path, **kwargs) -> Any:
  """fn(path, **kwargs), an object-store URL read through a local copy.

  The decoders need a file (fileio.local_copy, removed after); an error
  raised on the copy names the URL instead.
  """
  with fileio.local_copy(path) as local:
    try:
      return fn(local, **kwargs)
    except Exception as e:
      if local != path and e.args and isinstance(e.args[0], str):
        e.args = (e.args[0].replace(os.fspath(local), os.fspath(path)),
                  *e.args[1:])
      raise


def init_worker() -> None:
  """A worker's initializer, before it imports JAX: WORKER_XLA_FLAGS (an
  XLA_FLAGS of the environment is kept, after them) and the project's
  persistent compilation cache (input_pipeline.startup, unless the
  environment names one): each worker compiles the front end once per
  padded track length (cqt_jax.bucket_length), ~0.9 s each on a CPU core,
  of which loading a cached program saves ~0.5 s; the workers of a run, and
  later runs, share what one compiled."""
  flags = os.environ.get('XLA_FLAGS', '')
  os.environ['XLA_FLAGS'] = f'{WORKER_XLA_FLAGS} {flags}'.strip()
  startup.set_cache_environment()


def ready(fn: Callable) -> int:
  """The probe a new pool runs first: this worker's pid.

  `fn` (the feature function) is only unpickled, which imports its module
  here as an item would.
  """
  del fn
  return os.getpid()


def start_failure(method: str, error: BaseException,
                  restart: bool = False) -> str:
  """The WorkerStartError message: what failed, the likely cause, the fix.

  restart: the pool had run items, and was being rebuilt after a crash.
  """
  main = getattr(sys.modules.get('__main__'), '__file__', None)
  if main is not None and not os.path.isfile(main):
    cause = (f'the main module {main!r} is not a file (a program read from '
             f'standard input?), and every {method} worker starts by '
             're-importing it')
  else:
    cause = (f'every {method} worker starts by re-importing the main module'
             + (f' {main}' if main else '') + ', where top-level code that '
             'starts the preparation fails (the usual cause)')
  what = str(error).rstrip('.') or 'no message'
  return (f'worker processes could not start ({type(error).__name__}: '
          f'{what}): {cause}. Start the preparation from a script file '
          "whose top-level code is under an `if __name__ == '__main__':` "
          'guard, or use --workers 1 (Settings(workers=1)), which runs '
          'every item in this process. '
          + ('It ran before a worker crashed, then could not start again; '
             if restart else 'No item was tried; ')
          + 'a worker\'s own traceback, if any, is above on stderr.')


class WorkerPool:
  """Runs feature functions in worker processes, results in input order.

  forkserver/spawn, not fork: the parent holds TensorFlow threads. A worker
  that crashes (a decoder segfault on a corrupt file) costs only the item it
  was working on: the pool is rebuilt and the remaining items resubmitted.
  A pool whose workers cannot start at all is told apart from a crashing
  file by a probe (`ready`) each new pool runs before it is given items:
  WorkerStartError, not a skipped item.
  """

  def __init__(self, workers: int,
               in_flight_per_worker: int = IN_FLIGHT_PER_WORKER):
    self.workers = workers
    self.in_flight_per_worker = in_flight_per_worker
    self._pool = None
    self._started = False  # Whether a pool of this one has run its probe.

  def _new_pool(self, fn: Callable):
    """A new executor whose workers ran the probe of `fn`.

    Raises:
      WorkerStartError: no worker could run the probe.
    """
    method = ('forkserver' if 'forkserver' in
              multiprocessing.get_all_start_methods() else 'spawn')
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=self.workers,
        mp_context=multiprocessing.get_context(method),
        initializer=init_worker)
    try:
      pool.submit(ready, fn).result(timeout=PROBE_TIMEOUT_S)
    # Whatever stops the probe (a worker that exits while starting, a dead
    # forkserver, a timeout) stops every item: no file is to blame.
    except Exception as e:  # pylint: disable=broad-except
      pool.shutdown(wait=False, cancel_futures=True)
      raise WorkerStartError(start_failure(method, e, self._started)) from e
    self._started = True
    return pool

  def close(self):
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def map(self, fn: Callable, jobs: Sequence[Any],
          kwargs_fn: Callable[[Any], Dict[str, Any]]) -> Iterator[tuple]:
    """Yields (job, result, error) for every job, in order.

    Args:
      fn: a module-level function fn(path, **kwargs) (it is pickled).
      jobs: prepare_corpus.Items with a path.
      kwargs_fn: job -> keyword arguments of fn.

    Raises:
      WorkerStartError: the workers could not start (module docstring);
        no job is yielded after it.
    """
    if self.workers <= 1:
      for job in jobs:
        yield run_job(fn, job, kwargs_fn)
      return
    jobs = list(jobs)
    window = self.workers * self.in_flight_per_worker
    # pending always holds jobs[position - len(pending):position], in order.
    position = 0
    pending = collections.deque()
    suspect = None  # The head job when the pool last broke.
    while position < len(jobs) or pending:
      if self._pool is None:
        self._pool = self._new_pool(fn)
      # After a crash the head job runs alone, so a second crash names it.
      limit = 1 if suspect is not None else window
      try:
        while position < len(jobs) and len(pending) < limit:
          job = jobs[position]
          pending.append((job, self._pool.submit(on_file, fn, job.path,
                                                 **kwargs_fn(job))))
          position += 1
      except concurrent.futures.process.BrokenProcessPool:
        if not pending:  # Broke idle, after its probe: a new one.
          self._pool.shutdown(wait=False, cancel_futures=True)
          self._pool = None
          continue
        # Else a job in flight crashed its worker: the head's result says.
      job, future = pending[0]
      try:
        result, error = future.result(), None
      except concurrent.futures.process.BrokenProcessPool:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        if suspect is job:
          pending.popleft()
          suspect = None
          yield job, None, RuntimeError(
              f'the worker process crashed twice reading {job.path}')
        else:
          suspect = job
        position -= len(pending)  # Resubmit what was in flight.
        pending.clear()
        continue
      except Exception as e:  # pylint: disable=broad-except
        result, error = None, e
      pending.popleft()
      if suspect is job:
        suspect = None
      yield job, result, error

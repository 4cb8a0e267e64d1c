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
"""

import collections
import concurrent.futures
import hashlib
import multiprocessing
from typing import Any, Callable, Dict, Iterator, Sequence

# Not release_items (its Items are the jobs): a worker imports this module
# to unpickle `audio_features`, and release_items brings scikit-learn
# (features.text, seconds per worker) that no worker needs.
from input_pipeline.features import audio as audio_lib

# Futures in flight per worker: keeps the workers busy without holding every
# decoded patch of a large corpus in memory.
IN_FLIGHT_PER_WORKER = 4


def track_seed(seed: int, track_id: str) -> int:
  """The crop seed of a track: a stable hash of (seed, track id).

  Python's hash() changes between processes; sha256 does not, so the same
  seed gives the same patches on every run and worker count.
  """
  digest = hashlib.sha256(f'{seed}/{track_id}'.encode('utf-8')).digest()
  return int.from_bytes(digest[:4], 'little')


def audio_features(path, *, seed: int, windows: bool) -> tuple:
  """(patch, windows or None) of a track; runs in a worker process.

  Args:
    path: the audio file.
    seed: the patch crop seed (`track_seed`).
    windows: also cut the whole-track windows (one decode for both).

  Returns:
    patch: float32 [322, 96]; windows: float32 [n, 322, 96] or None.
  """
  if windows:
    return audio_lib.audio_patch_and_windows(path, seed=seed)
  return audio_lib.audio_patch(path, seed=seed), None


def run_job(fn: Callable, job: Any,
            kwargs_fn: Callable[[Any], Dict[str, Any]]) -> tuple:
  """(job, fn(job.path, **kwargs_fn(job)), None), or (job, None, error).

  In this process: WorkerPool.map with one worker, and the Beam workers of
  beam_prepare (which are processes of their own already).
  """
  try:
    return job, fn(job.path, **kwargs_fn(job)), None
  except Exception as e:  # pylint: disable=broad-except
    # A bad input must not stop the job: the caller skips and reports it.
    return job, None, e


class WorkerPool:
  """Runs feature functions in worker processes, results in input order.

  forkserver/spawn, not fork: the parent holds TensorFlow threads. A worker
  that crashes (a decoder segfault on a corrupt file) costs only the item it
  was working on: the pool is rebuilt and the remaining items resubmitted.
  """

  def __init__(self, workers: int):
    self.workers = workers
    self._pool = None

  def _new_pool(self):
    method = ('forkserver' if 'forkserver' in
              multiprocessing.get_all_start_methods() else 'spawn')
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=self.workers,
        mp_context=multiprocessing.get_context(method))

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
    """
    if self.workers <= 1:
      for job in jobs:
        yield run_job(fn, job, kwargs_fn)
      return
    jobs = list(jobs)
    window = self.workers * IN_FLIGHT_PER_WORKER
    # pending always holds jobs[position - len(pending):position], in order.
    position = 0
    pending = collections.deque()
    suspect = None  # The head job when the pool last broke.
    while position < len(jobs) or pending:
      if self._pool is None:
        self._pool = self._new_pool()
      # After a crash the head job runs alone, so a second crash names it.
      limit = 1 if suspect is not None else window
      while position < len(jobs) and len(pending) < limit:
        job = jobs[position]
        pending.append((job, self._pool.submit(fn, job.path,
                                               **kwargs_fn(job))))
        position += 1
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


"""Runs a pipeline's stages as their graph allows: independent ones at once.

A stage may start once every stage it reads from is done; among the ready
ones, the earliest in config.stage_order starts first. With `concurrency` 1
this is the order of config.stage_order, one stage at a time, in the calling
thread. With more, `run_one` is called from that many threads; the pipeline
runner makes each call wait on a stage process of its own (runner.py), so
independent stages (the audio, text and image networks of a MuMu pipeline;
the seeds of MSD-I) train side by side. A stage's results do not depend on
what runs beside it (its seeds and data order are its own), only the wall
time does.

  scheduler.run(['a', 'b', 'c'], {'c': {'a', 'b'}}, train, concurrency=2,
                on_start=print, on_done=record)

Callbacks run in the calling thread, so pipeline.json and the progress lines
are written from one place.
"""

import collections
import concurrent.futures
import contextlib
import os
import time
from typing import Any, Callable, Dict, Mapping, Sequence, Set

# At most this many stages at once, whatever the machine: each stage's XLA
# computations already spread over the cores (a CPU stage keeps about 1.3 of
# 2 cores busy, BENCHMARKS.md §10), and each holds its data and state in
# memory.
MAX_CONCURRENCY = 4


def default_concurrency() -> int:
  """Stages at once on this machine: one per core, 1 to MAX_CONCURRENCY."""
  return max(1, min(MAX_CONCURRENCY, os.cpu_count() or 1))


def widest(order: Sequence[str], needs: Mapping[str, Set[str]]) -> int:
  """The most stages at one depth of the graph.

  Depth 0: stages that need none of `order`; depth k: stages whose deepest
  need is at depth k - 1. (audio, text, image) -> fusion is 3 wide; 1 means
  a chain, where no two stages can ever run at once. (Stages of different
  depths may also overlap, so this is how wide the graph is at least.)
  """
  depth: Dict[str, int] = {}
  for name in order:  # validated: a stage's needs come before it
    depth[name] = 1 + max((depth[n] for n in needs.get(name, ())
                           if n in depth), default=-1)
  counts = collections.Counter(depth.values())
  return max(counts.values(), default=1)


class _InThisThread:
  """An executor that runs each job as it is submitted, in this thread."""

  def submit(self, fn, *args) -> concurrent.futures.Future:
    future = concurrent.futures.Future()
    try:
      future.set_result(fn(*args))
    except Exception as e:  # pylint: disable=broad-except
      future.set_exception(e)
    return future


def run(order: Sequence[str], needs: Mapping[str, Set[str]],
        run_one: Callable[[str], Any], *, concurrency: int,
        on_start: Callable[[str], None] = lambda name: None,
        on_done: Callable[[str, Any, float], None] = lambda *_: None
        ) -> Dict[str, Any]:
  """Runs every stage of `order` once its `needs` are done.

  Args:
    order: the stages, in the order the pipeline lists them.
    needs: stage -> the stages it reads from (absent: none).
    run_one: stage -> its result; called in this thread when concurrency
      is 1, else in one of `concurrency` threads.
    concurrency: stages at once (>= 1).
    on_start: called with a stage as it starts.
    on_done: called with a stage, its result and its seconds as it ends.

  Returns:
    stage -> result.

  Raises:
    The first error of a stage, once the stages already running have ended
    (no new stage starts after an error).
  """
  if concurrency < 1:
    raise ValueError(f'concurrency={concurrency}: run at least 1 stage at '
                     'once.')
  unknown = {n for deps in needs.values() for n in deps} - set(order)
  if unknown:
    raise ValueError(f'Stages {sorted(unknown)} are needed but not run.')
  results: Dict[str, Any] = {}
  pending = list(order)
  with (concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
        if concurrency > 1 else contextlib.nullcontext(_InThisThread())
        ) as pool:
    running: Dict[concurrent.futures.Future, tuple] = {}
    error = None
    while pending or running:
      ready = [n for n in pending if needs.get(n, set()) <= set(results)]
      while error is None and ready and len(running) < concurrency:
        name = ready.pop(0)
        pending.remove(name)
        on_start(name)
        running[pool.submit(run_one, name)] = (name, time.time())
      if not running:
        if error is not None:
          break
        raise ValueError(f'Stages {pending} wait for stages that never '
                         'run (a cycle in their inputs).')
      done, _ = concurrent.futures.wait(
          running, return_when=concurrent.futures.FIRST_COMPLETED)
      for future in done:
        name, start = running.pop(future)
        try:
          results[name] = future.result()
        except Exception as e:  # pylint: disable=broad-except
          # Re-raised below, once what runs has ended.
          error = error or e
          continue
        on_done(name, results[name], time.time() - start)
      if error is not None:
        pending.clear()
    if error is not None:
      raise error
  return results

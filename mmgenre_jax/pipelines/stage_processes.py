"""Where a pipeline's stages run when several run at once: processes.

  with stage_processes.caller(2) as call:
    call('audio', runner.run_stage, stage_config, stage_dir, outputs)

One stage at a time, `call` runs the function in this process. With n > 1,
each call runs in one of n spawned processes that live for the whole
pipeline (TensorFlow, JAX and the compiled steps load once per process, not
once per stage), and the calling thread waits for it; the scheduler's
threads (scheduler.py) make n calls at once.

Processes, not threads, because orbax keeps its checkpoint operation ids in
class-level state: two stages saving checkpoints from threads of one process
take each other's ids and fail (seen as "Directory not empty" in
checkpoints/latest/<step>.orbax-checkpoint-tmp). Each process also has its
own GIL for the input pipeline's Python. Spawned, not forked: JAX and
TensorFlow run threads whose locks a fork would copy mid-use.

A stage process logs as this process does (absl verbosity and the absl
handler's filters, e.g. main.py's orbax filter) and prints to the same
stdout and stderr; its log lines start with the stage's label ('[audio]
epoch 3 step 60: ...'), as stages that run at once interleave them.
"""

import concurrent.futures
import contextlib
import logging as std_logging
import multiprocessing
import pickle
from typing import Any, Callable, Iterator, Sequence

from absl import flags
from absl import logging


def _can_travel(value: Any) -> bool:
  try:
    pickle.dumps(value)
  except Exception:  # pylint: disable=broad-except
    return False
  return True


# The label of the stage this process runs now (_run_labelled).
_label = ''


def _labelled(record: std_logging.LogRecord) -> bool:
  """absl handler filter: '[label] ' before each message, as stages that
  run at once interleave their lines."""
  if _label:
    record.msg = f'[{_label.replace("%", "%%")}] {record.msg}'
  return True


def _start_stage_process(verbosity: int, handler_filters: Sequence[Any]
                         ) -> None:
  """A stage process's logging, as its parent's, each line labelled."""
  # No command line here: the flags' defaults, and absl's handler writes
  # to stderr without its "logging before flag parsing" notice.
  flags.FLAGS.mark_as_parsed()
  logging.use_absl_handler()
  logging.set_verbosity(verbosity)
  for log_filter in [*handler_filters, _labelled]:
    logging.get_absl_handler().addFilter(log_filter)


def _run_labelled(label: str, fn: Callable[..., Any], *args) -> Any:
  global _label  # pylint: disable=global-statement
  _label = label
  try:
    return fn(*args)
  finally:
    _label = ''


class StageProcessError(RuntimeError):
  """A stage process ended without a result (killed, out of memory)."""


@contextlib.contextmanager
def caller(processes: int) -> Iterator[Callable[..., Any]]:
  """A function that calls fn(*args) here (processes 1) or in a process.

  Args:
    processes: how many stages may run at once (>= 1).

  Yields:
    call(label, fn, *args) -> fn(*args); fn and args must pickle when
    processes > 1 (module-level functions, configs, paths as str), and
    the log lines of fn then start with '[label] '. An exception of fn is
    raised by call as it was raised in the stage process.
  """
  if processes <= 1:
    yield lambda label, fn, *args: fn(*args)
    return
  handler_filters = [f for f in logging.get_absl_handler().filters
                     if _can_travel(f)]
  pool = concurrent.futures.ProcessPoolExecutor(
      max_workers=processes, mp_context=multiprocessing.get_context('spawn'),
      initializer=_start_stage_process,
      initargs=(logging.get_verbosity(), handler_filters))

  def call(label, fn, *args):
    try:
      return pool.submit(_run_labelled, label, fn, *args).result()
    except concurrent.futures.process.BrokenProcessPool as e:
      raise StageProcessError(
          f'a stage process ended without finishing its stage ({e}); the '
          'system may have killed it (memory?). Run the same command again '
          'to resume, with --config.concurrent_stages=1 to run one stage at '
          'a time.') from e

  try:
    yield call
  finally:
    pool.shutdown(wait=True, cancel_futures=True)

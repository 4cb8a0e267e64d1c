"""How a process starts: TensorFlow and JAX quiet, and JAX's compilation cache.

**Start-up notices.** Importing TensorFlow prints, from C++ and before any
of our code can set a log level, lines such as `oneDNN custom operations are
on ...` (twice) and `WARNING: All log messages before absl::InitializeLog()
is called ...`; TF_CPP_MIN_LOG_LEVEL no longer hides them (TF 2.21 logs
through absl). JAX logs `Unable to initialize backend 'tpu'` at INFO on
every CPU or GPU host. None of them says anything a user can act on, and
every command printed them before its own first line.

`import_tensorflow()` imports TensorFlow with the process's stderr (file
descriptor 2) captured, then writes back every captured line except the
known notices below, so real warnings and errors still show. It also keeps
TensorFlow off the GPUs, which belong to JAX. Importing this module installs
a logging filter that drops JAX's backend-probe notice (INFO only; a failed
backend that was asked for still raises).

**The persistent compilation cache.** A new process compiles every JAX
program again (the networks' forward passes, the front end at each padded
track length): seconds of each `mmgenre predict` on a CPU. With JAX's
persistent compilation cache (docs.jax.dev, "Persistent compilation cache")
a process loads what an earlier one compiled. The project's processes share
one: `CACHE_DIR` (~/.cache/mmgenre_jax/jax, or $XDG_CACHE_HOME/mmgenre_jax/
jax), unless the environment names another in JAX_COMPILATION_CACHE_DIR
(JAX reads it when imported; empty: no cache).
JAX_ENABLE_COMPILATION_CACHE=false turns the cache off whatever the
directory. Every program is cached (`MIN_COMPILE_S`) unless
JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise. The compiled
programs of a directory run code: keep it where only you write (JAX's
warning). Deleting it is safe; the next runs fill it again.

  tf = startup.import_tensorflow()   # instead of `import tensorflow as tf`
  startup.set_cache_environment()    # a process that imports JAX later
                                     # (prepare's pool workers)
  startup.enable_compilation_cache() # this process, before its first
                                     # compilation (the mmgenre commands
                                     # that compile, main.py)

This module imports neither TensorFlow nor JAX when imported: a pool worker
imports it before it may import JAX.
"""

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

# Start-up notices dropped from stderr while TensorFlow loads: substrings of
# whole lines. The cpu_feature_guard notice comes with a second line.
TF_NOTICES = (
    'All log messages before absl::InitializeLog() is called',
    'oneDNN custom operations are on',
    'cpu_feature_guard.cc',
    'To enable the following instructions:',
)
# JAX's INFO record when it probes for a TPU (or GPU) runtime that is absent.
JAX_PROBE_LOGGER = 'jax._src.xla_bridge'
JAX_PROBE_PREFIX = 'Unable to initialize backend'


class _DropBackendProbe(logging.Filter):
  """Drops the INFO notice of an absent accelerator runtime."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno <= logging.INFO and
                str(record.msg).startswith(JAX_PROBE_PREFIX))


def _install_jax_filter() -> None:
  logger = logging.getLogger(JAX_PROBE_LOGGER)
  if not any(isinstance(f, _DropBackendProbe) for f in logger.filters):
    logger.addFilter(_DropBackendProbe())


_install_jax_filter()


@contextlib.contextmanager
def _filtered_stderr(notices=TF_NOTICES) -> Iterator[None]:
  """Captures fd 2 (C++ writes too) and replays it without `notices`."""
  try:
    sys.stderr.flush()
    saved = os.dup(2)
  except (OSError, ValueError):
    # No usable fd 2 (an embedding host); nothing to filter.
    yield
    return
  with tempfile.TemporaryFile(mode='w+b') as capture:
    os.dup2(capture.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      kept = [line for line in capture.read().splitlines(keepends=True)
              if not any(n.encode() in line for n in notices)]
      if kept:
        os.write(2, b''.join(kept))


def hide_gpus_from_tf() -> None:
  """Keeps TF off the GPUs, otherwise it reserves memory JAX needs."""
  tf = sys.modules.get('tensorflow')
  if tf is None:
    return
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:
    # TF was already initialised (its devices can no longer change); it then
    # already runs where the first caller put it.
    pass


def import_tensorflow():
  """TensorFlow, imported without its start-up notices and off the GPUs."""
  if 'tensorflow' not in sys.modules:
    # The C++ INFO lines that come after the import (TF still reads this).
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    with _filtered_stderr():
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  hide_gpus_from_tf()
  return sys.modules['tensorflow']


# The environment variables JAX reads when imported, which win over ours.
DIR_VARIABLE = 'JAX_COMPILATION_CACHE_DIR'
MIN_COMPILE_VARIABLE = 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'
CACHE_DIR = os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'mmgenre_jax', 'jax')
# Seconds a compilation must take to be cached: every one (JAX's default,
# 1 s, would skip the front end's, ~0.9 s each on a CPU core, and most of
# the networks' on small inputs).
MIN_COMPILE_S = 0


def set_cache_environment() -> None:
  """CACHE_DIR and MIN_COMPILE_S as environment variables, for a process
  that imports JAX later; those the environment has are kept."""
  os.environ.setdefault(DIR_VARIABLE, CACHE_DIR)
  os.environ.setdefault(MIN_COMPILE_VARIABLE, str(MIN_COMPILE_S))


def enable_compilation_cache() -> str:
  """Points this process's JAX at CACHE_DIR, unless the environment names
  a directory (JAX_COMPILATION_CACHE_DIR, which JAX has read).

  Call it before the first compilation: JAX decides at the first one whether
  the process uses a cache, and keeps that decision.

  Returns:
    the directory JAX will use ('' or None: none).
  """
  # pylint: disable-next=g-import-not-at-top
  import jax  # Here: importing this module must not load JAX.
  if DIR_VARIABLE not in os.environ:
    jax.config.update('jax_compilation_cache_dir', CACHE_DIR)
  if MIN_COMPILE_VARIABLE not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs',
                      float(MIN_COMPILE_S))
  return jax.config.jax_compilation_cache_dir

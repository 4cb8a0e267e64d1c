"""The project's JAX persistent compilation cache: where it lives, and
turning it on before a process compiles.

A new process compiles every JAX program again (the networks' forward
passes, the front end at each padded track length): seconds of each
`mmgenre predict` on a CPU. With JAX's persistent compilation cache
(docs.jax.dev, "Persistent compilation cache") a process loads what an
earlier one compiled. The project's processes share one: `CACHE_DIR`
(~/.cache/mmgenre_jax/jax, or $XDG_CACHE_HOME/mmgenre_jax/jax), unless the
environment names another in JAX_COMPILATION_CACHE_DIR (JAX reads it when
imported; empty: no cache). JAX_ENABLE_COMPILATION_CACHE=false turns the
cache off whatever the directory. Every program is cached (`MIN_COMPILE_S`)
unless JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise.

  jax_cache.set_environment()  # a process that has not imported JAX yet
                               # (prepare's pool workers)
  jax_cache.enable()           # this process, before its first compilation
                               # (the mmgenre commands that run networks or
                               # the front end, main.py)

The compiled programs of a directory run code: keep it where only you
write (JAX's warning). Deleting it is safe; the next runs fill it again.
This module imports JAX only in `enable`: a pool worker imports it before
it may import JAX.
"""

import os

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


def set_environment() -> None:
  """CACHE_DIR and MIN_COMPILE_S as environment variables, for a process
  that imports JAX later; those the environment has are kept."""
  os.environ.setdefault(DIR_VARIABLE, CACHE_DIR)
  os.environ.setdefault(MIN_COMPILE_VARIABLE, str(MIN_COMPILE_S))


def enable() -> str:
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

"""startup's persistent compilation cache: the pool workers' environment
and the `mmgenre` commands' JAX config, the environment's choice winning.

tests/conftest.py names a cache per run (JAX_COMPILATION_CACHE_DIR), which
this process's JAX read when imported; the tests point `CACHE_DIR` at that
same directory, so that a compilation meanwhile changes nothing.
"""

import os
import types

import jax
import pytest

from input_pipeline import startup
from input_pipeline.prepare import workers
from mmgenre_jax import cli

_KEYS = ('jax_compilation_cache_dir',
         'jax_persistent_cache_min_compile_time_secs')


@pytest.fixture
def run_cache(monkeypatch):
  """The run's cache directory as CACHE_DIR; JAX's config restored after."""
  saved = {k: getattr(jax.config, k) for k in _KEYS}
  named = os.environ[startup.DIR_VARIABLE]
  monkeypatch.setattr(startup, 'CACHE_DIR', named)
  yield named
  for key, value in saved.items():
    jax.config.update(key, value)


def test_a_worker_gets_the_cache_unless_the_environment_names_one(
    monkeypatch, run_cache):
  monkeypatch.setenv('XLA_FLAGS', '')
  monkeypatch.setenv(startup.DIR_VARIABLE, '/elsewhere')
  workers.init_worker()
  assert os.environ[startup.DIR_VARIABLE] == '/elsewhere'
  monkeypatch.delenv(startup.DIR_VARIABLE)
  monkeypatch.delenv(startup.MIN_COMPILE_VARIABLE)
  workers.init_worker()
  assert os.environ[startup.DIR_VARIABLE] == run_cache
  assert os.environ[startup.MIN_COMPILE_VARIABLE] == '0'


def test_the_compiling_commands_set_it_before_importing_their_module(
    monkeypatch, run_cache):
  seen = {}

  def import_module(name):
    seen[name] = jax.config.jax_compilation_cache_dir
    return types.SimpleNamespace(add_arguments=lambda parser: None,
                                 main=lambda args: 0)

  monkeypatch.setattr(cli.importlib, 'import_module', import_module)
  # The environment's directory (the run's) wins: JAX read it, unchanged.
  jax.config.update('jax_compilation_cache_dir', '/read-from-environment')
  assert cli.main(['predict']) == 0
  assert seen['mmgenre_jax.cli.predict'] == '/read-from-environment'
  monkeypatch.delenv(startup.DIR_VARIABLE)
  monkeypatch.delenv(startup.MIN_COMPILE_VARIABLE)
  for command in ('synth', 'predict'):
    jax.config.update('jax_compilation_cache_dir', None)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
    assert cli.main([command]) == 0
  assert seen['mmgenre_jax.cli.synth'] is None  # Compiles nothing.
  assert seen['mmgenre_jax.cli.predict'] == run_cache
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
  assert {'predict', 'embed', 'neighbours', 'finetune', 'export',
          'prepare'} <= cli.COMPILING

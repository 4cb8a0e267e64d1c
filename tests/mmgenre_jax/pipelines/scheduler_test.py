"""mmgenre_jax.pipelines.scheduler: stages as their graph allows."""

import threading
import time

import pytest

from mmgenre_jax.pipelines import scheduler

# a, b independent; c reads both; d reads c.
ORDER = ['a', 'b', 'c', 'd']
NEEDS = {'c': {'a', 'b'}, 'd': {'c'}}


def _recorder():
  events = []
  lock = threading.Lock()

  def run_one(name):
    with lock:
      events.append(('start', name))
    time.sleep(0.01)
    with lock:
      events.append(('end', name))
    return name.upper()

  return events, run_one


def test_one_at_a_time_is_the_listed_order():
  events, run_one = _recorder()
  done = []
  results = scheduler.run(ORDER, NEEDS, run_one, concurrency=1,
                          on_done=lambda name, result, s: done.append(
                              (name, result)))
  assert results == {'a': 'A', 'b': 'B', 'c': 'C', 'd': 'D'}
  assert events == [(kind, name) for name in ORDER
                    for kind in ('start', 'end')]
  assert done == [('a', 'A'), ('b', 'B'), ('c', 'C'), ('d', 'D')]


def test_independent_stages_run_at_the_same_time():
  # Both a and b must be inside run_one at once to pass the barrier; one
  # at a time, the barrier would break (timeout) and a raises.
  barrier = threading.Barrier(2, timeout=10)
  started = []

  def run_one(name):
    started.append(name)
    if name in ('a', 'b'):
      barrier.wait()
    else:
      # c starts only after a and b are done.
      assert {'a', 'b'} <= set(results_so_far)
    return name

  results_so_far = []
  results = scheduler.run(
      ORDER, NEEDS, run_one, concurrency=2,
      on_done=lambda name, result, s: results_so_far.append(name))
  assert sorted(results) == ORDER
  assert started[:2] == ['a', 'b'] and started[2:] == ['c', 'd']
  assert results_so_far[2:] == ['c', 'd']


def test_a_failed_stage_starts_nothing_new_and_is_raised():
  started = []

  def run_one(name):
    started.append(name)
    if name == 'a':
      raise RuntimeError('stage a failed')
    time.sleep(0.05)
    return name

  with pytest.raises(RuntimeError, match='stage a failed'):
    scheduler.run(ORDER, NEEDS, run_one, concurrency=2)
  # b was already running beside a and ended; c and d never started.
  assert sorted(started) == ['a', 'b']


def test_bad_graphs_are_refused():
  with pytest.raises(ValueError, match=r"\['x'\] are needed but not run"):
    scheduler.run(['a'], {'a': {'x'}}, str, concurrency=1)
  with pytest.raises(ValueError, match='a cycle'):
    scheduler.run(['a', 'b'], {'a': {'b'}, 'b': {'a'}}, str, concurrency=2)
  with pytest.raises(ValueError, match='at least 1'):
    scheduler.run(['a'], {}, str, concurrency=0)


def test_widest_is_the_most_stages_of_one_depth():
  assert scheduler.widest(ORDER, NEEDS) == 2  # a, b
  assert scheduler.widest(['a', 'b', 'c'], {'b': {'a'}, 'c': {'b'}}) == 1
  # The MuMu shape: three networks, an album network on one, fusions.
  order = ['audio', 'text', 'image', 'album', 'audio_text', 'all']
  needs = {'album': {'audio'}, 'audio_text': {'album', 'text'},
           'all': {'album', 'text', 'image'}}
  assert scheduler.widest(order, needs) == 3


def test_default_concurrency_follows_the_cores(monkeypatch):
  monkeypatch.setattr(scheduler.os, 'cpu_count', lambda: 2)
  assert scheduler.default_concurrency() == 2
  monkeypatch.setattr(scheduler.os, 'cpu_count', lambda: 64)
  assert scheduler.default_concurrency() == scheduler.MAX_CONCURRENCY
  monkeypatch.setattr(scheduler.os, 'cpu_count', lambda: None)
  assert scheduler.default_concurrency() == 1

"""Shared pieces of the CPU benchmarks (they import configs and train).

benchmarks/gpu.sh must not import this module: it pulls in TensorFlow, clu
and ml_collections through mmgenre_jax.train.loop (use jax_bench there).
"""

import os
import subprocess
import sys
import threading
import time
from typing import Dict, List, Sequence

import jax
import numpy as np
import psutil

from benchmarks import jax_bench
from configs import mumu_audio
from configs import mumu_text
from mmgenre_jax import models
from mmgenre_jax import sharding
from mmgenre_jax import tasks
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.models import audio
from mmgenre_jax.models import registry
from mmgenre_jax.train import train_state

# --model -> (config module, config argument).
MODELS = {
    'high-4x70-cosine': (mumu_audio, 'high-4x70-cosine'),
    'low-4x70-logistic': (mumu_audio, 'low-4x70-logistic'),
    'high-4x96-cosine': (mumu_audio, 'high-4x96-cosine'),
    'text-mlp': (mumu_text, 'cosine'),
    'text-mlp-logistic': (mumu_text, 'logistic'),
}



def get_config(model: str):
  """The experiment config of a --model name."""
  module, arg = MODELS[model]
  return module.get_config(arg)


class JaxBench:
  """Our train step on one in-memory batch."""

  def __init__(self, args, config):
    self.config = config
    model = models.create_model(config.model)
    if isinstance(model, audio.AudioCNN):
      model = jax_bench.with_layout(model, args.jax_layout)
    mesh = sharding.create_mesh()
    _, self.input_key = registry.shard_input(config)
    self.state = train_state.create_train_state(
        config, model, jax.random.key(args.seed), mesh)
    self.num_params = train_state.num_params(self.state.params)
    shape = models.dummy_inputs(config.model)[0].shape[1:]
    batch = jax_bench.synthetic_batch(args.batch, shape,
                                      int(config.data.num_labels),
                                      self.input_key, args.seed)
    self.host_batch = batch
    self.batch = sharding.to_global_batch(batch, mesh)
    rs = np.random.RandomState(args.seed + 1)
    self.label_factors = (jax.numpy.asarray(rs.standard_normal(
        (int(config.data.num_labels), int(config.data.factor_dim))).astype(
            np.float32)) if registry.target(config.model).uses_label_factors
                          else None)
    self.rng = jax.random.key(args.seed + 2)
    if args.jax_step == 'train':
      # No shard source: the batch is in memory; the config's own sizes.
      self.step = tasks.of(config.model).build_steps(
          config, data_facts.declared(config), mesh, None,
          self.label_factors).train
    else:
      lean = jax_bench.jit_lean_step(config.model.target, self.input_key)
      self.step = lambda state, batch, rng: lean(state, batch,
                                                 self.label_factors, rng)

  def run(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      self.state, _ = self.step(self.state, self.batch, self.rng)
    jax.block_until_ready(self.state.params)
    return time.perf_counter() - start



def run_measured(cmd: Sequence[str], env=None, poll_s: float = 0.1) -> Dict:
  """Runs a command; returns its wall time and peak RSS.

  Peak RSS is sampled every `poll_s` over the process and all its
  descendants: 'peak_rss_mib' is the largest sum over the tree (worker pools
  included), 'peak_proc_rss_mib' the largest single process.
  """
  start = time.perf_counter()
  proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  peak = {'tree': 0, 'proc': 0}
  done = threading.Event()

  def sample():
    root = psutil.Process(proc.pid)
    while not done.is_set():
      try:
        procs = [root] + root.children(recursive=True)
        rss = []
        for p in procs:
          try:
            rss.append(p.memory_info().rss)
          except psutil.Error:
            pass
        peak['tree'] = max(peak['tree'], sum(rss))
        peak['proc'] = max(peak['proc'], max(rss, default=0))
      except psutil.Error:
        pass
      time.sleep(poll_s)

  thread = threading.Thread(target=sample, daemon=True)
  thread.start()
  out, err = proc.communicate()
  done.set()
  thread.join()
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}):\n'
                       f'{err[-3000:]}')
  return {'wall_s': wall, 'peak_rss_mib': peak['tree'] / 2**20,
          'peak_proc_rss_mib': peak['proc'] / 2**20, 'stdout': out}

r"""Train-step throughput of our JAX networks vs a PyTorch twin, one process.

  python benchmarks/train_step.py --model high-4x70-cosine --batch 32

Builds the network from the experiment config (configs/mumu_audio.py or
configs/mumu_text.py) with mmgenre_jax.models.create_model, its state with
mmgenre_jax.train.train_state.create_train_state (optax Adam, lr 1e-3) and
times the task's Steps.train (mmgenre_jax/tasks/), the jitted train step the
trainer runs (state donated, clu metrics included), on an in-memory batch
placed on the device once. The twin (benchmarks/twin.py) has the same shapes,
loss and Adam. Both are warmed up, then timed alternately, `--rounds` rounds of
`--steps` steps each; the figure is the median round. No host sync inside a
round: JAX is synchronised once at the end of the round (block_until_ready).

Prints one JSON line:
  {"model":..., "jax_ex_per_s":..., "torch_ex_per_s":..., "ratio":...,
   ...details (layouts tried, threads, rounds)}

--jax-step lean times benchmarks/jax_bench.lean_train_step (no clu metrics);
--jax-layout freq (the library default) computes wide convs with
models.audio.freq_channels_conv (same parameters and outputs: 1-D convs over
time with frequency bins as channels); nhwc with XLA's 2-D conv.
--torch-layout auto tries NCHW and channels_last and keeps the faster;
--torch-pool-first gives the twin our block reordering too (conv -> pool ->
bias -> ReLU, as models.audio.ConvBlock computes it; twin.TorchAudioCNN
pool_first), a check of how much of the ratio that rewrite carries;
--torch-compile on wraps the twin in torch.compile.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import numpy as np
import torch

from benchmarks import bench_lib
from benchmarks import twin
from mmgenre_jax.models import audio
from mmgenre_jax.models import specs
# pylint: enable=g-import-not-at-top,wrong-import-position

# --torch-layout values (memory formats of the twin's convs).
TORCH_LAYOUTS = ('nchw', 'channels_last')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='high-4x70-cosine',
                      choices=sorted(bench_lib.MODELS))
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=3,
                      help='Steps per timed round.')
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--jax-step', default='train', choices=('train', 'lean'))
  parser.add_argument('--jax-layout', default='freq', choices=('nhwc', 'freq'))
  parser.add_argument('--torch-layout', default='auto',
                      choices=('auto',) + TORCH_LAYOUTS)
  parser.add_argument('--torch-pool-first', action='store_true',
                      help='Twin blocks as conv -> pool -> bias -> ReLU.')
  parser.add_argument('--torch-compile', default='off', choices=('off', 'on'))
  parser.add_argument('--threads', type=int, default=os.cpu_count(),
                      help='torch intra-op threads (default: all cores).')
  parser.add_argument('--seed', type=int, default=0)
  return parser.parse_args(argv)


class TorchBench:
  """The PyTorch twin on the same batch values."""

  def __init__(self, args, config, host_batch, input_key, layout: str,
               compile_model: bool):
    torch.manual_seed(args.seed)
    m = config.model
    target = m.target
    if m.name == 'audio_cnn':
      spec = specs.get_audio_spec(f'{m.width}-{m.kernels}')
      model = twin.TorchAudioCNN(
          spec.kernels, spec.filters, spec.pools, int(m.num_outputs), target,
          audio.variant_dropout(f'{m.width}-{m.kernels}', target),
          specs.INPUT_SHAPE[:2], pool_first=args.torch_pool_first)
      # [B, T, F, 1] -> [B, 1, T, F].
      x = torch.from_numpy(np.ascontiguousarray(
          host_batch[input_key].transpose(0, 3, 1, 2)))
    else:
      model = twin.TorchMLP(int(m.input_dim), specs.TEXT_HIDDEN_UNITS,
                            int(m.num_outputs), target, specs.TEXT_DROPOUT)
      x = torch.from_numpy(host_batch[input_key])
      layout = 'nchw'  # Not a conv net: the layout does not apply.
    if layout == 'channels_last':
      model = model.to(memory_format=torch.channels_last)
      x = x.contiguous(memory_format=torch.channels_last)
    self.layout = layout
    self.num_params = sum(p.numel() for p in model.parameters())
    self.x = x
    self.labels = torch.from_numpy(host_batch['labels'])
    rs = np.random.RandomState(args.seed + 1)
    self.label_factors = torch.from_numpy(rs.standard_normal(
        (int(config.data.num_labels), int(config.data.factor_dim))).astype(
            np.float32))
    self.step = twin.make_step(model, target,
                               learning_rate=float(config.train.learning_rate),
                               compile_model=compile_model)

  def run(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      loss = self.step(self.x, self.labels, self.label_factors)
    loss.item()
    return time.perf_counter() - start


def main(argv=None) -> int:
  args = parse_args(argv)
  torch.set_num_threads(args.threads)
  config = bench_lib.get_config(args.model)
  config.train.batch_size = args.batch
  progress = lambda msg: print(f'[train_step] {msg}', file=sys.stderr,
                               flush=True)

  progress(f'{args.model}: building and compiling the JAX step')
  jb = bench_lib.JaxBench(args, config)
  jb.run(args.warmup)

  layouts = (list(TORCH_LAYOUTS) if args.torch_layout == 'auto'
             else [args.torch_layout])
  if config.model.name != 'audio_cnn':
    layouts = ['nchw']
  tried = {}
  tb = None
  for layout in layouts:
    progress(f'warming up the torch twin ({layout}, compile='
             f'{args.torch_compile})')
    candidate = TorchBench(args, config, jb.host_batch, jb.input_key, layout,
                           args.torch_compile == 'on')
    candidate.run(args.warmup)
    tried[layout] = args.batch * args.steps / candidate.run(args.steps)
    if tb is None or tried[layout] > tried[tb.layout]:
      tb = candidate
  if jb.num_params != tb.num_params:
    raise SystemExit(f'Parameter counts differ: JAX {jb.num_params}, torch '
                     f'{tb.num_params}; the twin is not the same network.')

  jax_rates, torch_rates = [], []
  for r in range(args.rounds):
    # Alternate which goes first, so neither always runs on a warm cache.
    order = [(jb, jax_rates), (tb, torch_rates)]
    for bench, rates in (order if r % 2 == 0 else order[::-1]):
      rates.append(args.batch * args.steps / bench.run(args.steps))
    progress(f'round {r + 1}/{args.rounds}: jax {jax_rates[-1]:.1f} ex/s, '
             f'torch {torch_rates[-1]:.1f} ex/s')
  jax_rate = statistics.median(jax_rates)
  torch_rate = statistics.median(torch_rates)
  print(json.dumps({
      'model': args.model,
      'jax_ex_per_s': round(jax_rate, 2),
      'torch_ex_per_s': round(torch_rate, 2),
      'ratio': round(jax_rate / torch_rate, 3),
      'batch': args.batch,
      'jax_step': args.jax_step,
      'jax_layout': args.jax_layout,
      'torch_layout': tb.layout,
      'torch_layouts_tried_ex_per_s': {k: round(v, 2) for k, v in
                                       tried.items()},
      'torch_pool_first': args.torch_pool_first,
      'torch_compile': args.torch_compile,
      'torch_threads': torch.get_num_threads(),
      'params': jb.num_params,
      'rounds': args.rounds, 'steps_per_round': args.steps,
      'jax_rounds': [round(v, 2) for v in jax_rates],
      'torch_rounds': [round(v, 2) for v in torch_rates],
      'jax': jax.__version__, 'torch': torch.__version__,
      'device': str(jax.devices()[0].device_kind),
  }), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())

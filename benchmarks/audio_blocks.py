r"""The audio CNN blocks computed several ways, timed side by side.

  python benchmarks/audio_blocks.py [--batch 32] [--rounds 7]

Three comparisons, each a forward+backward (jax.grad w.r.t. the parameters)
of a real network or layer of models.audio, variants interleaved round by
round and reported as the median round (so background load hits all alike):

  pool    the whole LOW-4x70 and HIGH-4x70 networks with the library's block
          (conv -> block_max_pool -> bias -> ReLU) vs the textbook order with
          flax's nn.max_pool (conv + bias -> ReLU -> nn.max_pool, whose
          gradient is XLA's select-and-scatter) and vs the textbook order
          with block_max_pool.
  groups  the 4x70 first layer (64 filters, then pool and ReLU) with
          freq_channels_conv split into 1, 3, 9 and 27 position groups.
  matmul  a [10208, 312] x [312, 576] product (one 4x70 group's GEMM at
          batch 32) in float32 and bfloat16, XLA vs PyTorch (oneDNN): the
          ceiling each side's convolutions work against on this CPU.

Prints one JSON line per comparison: {"section": ..., "<variant>_ms": ...}.
PyTorch is needed only for `matmul` (`pip install -e '.[bench]'`).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.models import audio
from mmgenre_jax.models import specs
# pylint: enable=g-import-not-at-top,wrong-import-position


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--sections', default='pool,groups,matmul')
  return parser.parse_args(argv)


class TextbookBlock(audio.ConvBlock):
  """conv + bias -> ReLU -> pool, the order the paper's block is written in.

  Same parameters as audio.ConvBlock; `flax_pool` picks nn.max_pool (XLA
  reduce_window, select-and-scatter gradient) or audio.block_max_pool.
  """
  flax_pool: bool = True

  @nn.compact
  def __call__(self, x):
    kt, kf = self.kernel_size
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (kt, kf, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    y = nn.relu(self.convolve(x, kernel) + bias)
    if self.pool is None:
      return y
    if self.flax_pool:
      return nn.max_pool(y, self.pool, strides=self.pool, padding='VALID')
    return audio.block_max_pool(y, self.pool)


def interleaved_ms(fns, rounds: int):
  """{name: median ms} of calls to each fn, interleaved round by round."""
  for fn in fns.values():
    fn()  # compile / warm up
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(1000 * (time.perf_counter() - start))
  return {f'{name}_ms': round(statistics.median(t), 1)
          for name, t in times.items()}


def network_grad(variant: str, x, block=None, **block_kwargs):
  """A jitted () -> grads of a logistic loss of one audio network on x."""
  original = audio.ConvBlock
  if block is not None:
    # AudioCNN looks ConvBlock up at trace time: swap it for the trace.
    audio.ConvBlock = lambda *a, **k: block(*a, **k, **block_kwargs)
  try:
    model = audio.create_audio_cnn(variant, num_outputs=50,
                                   target='logistic')
    params = model.init(jax.random.key(0), x[:1])
    labels = (jax.random.uniform(jax.random.key(1), (x.shape[0], 50))
              > 0.9).astype(jnp.float32)

    def loss(params):
      logits = model.apply(params, x)['output']
      return jnp.mean(jnp.maximum(logits, 0) - logits * labels +
                      jnp.log1p(jnp.exp(-jnp.abs(logits))))
    grad = jax.jit(jax.grad(loss))
    grad(params)  # Traced now, while the swapped block is in place.
  finally:
    audio.ConvBlock = original
  return lambda: jax.block_until_ready(grad(params))


def pool_section(args, x):
  for variant in ('low-4x70', 'high-4x70'):
    result = interleaved_ms({
        'library': network_grad(variant, x),
        'textbook_flax_max_pool': network_grad(variant, x, TextbookBlock,
                                               flax_pool=True),
        'textbook_block_max_pool': network_grad(variant, x, TextbookBlock,
                                                flax_pool=False),
    }, args.rounds)
    print(json.dumps({'section': 'pool', 'network': variant,
                      'batch': args.batch, **result}), flush=True)


def groups_section(args, x):
  kernel = 0.1 * jax.random.normal(jax.random.key(2), (4, 70, 1, 64))

  def layer_grad(groups):
    def f(kernel):
      y = audio.freq_channels_conv(x, kernel, groups)
      return jnp.sum(jax.nn.relu(audio.block_max_pool(y, (4, 4))))
    grad = jax.jit(jax.grad(f))
    return lambda: jax.block_until_ready(grad(kernel))
  result = interleaved_ms({f'groups_{g}': layer_grad(g)
                           for g in (1, 3, 9, 27)}, args.rounds)
  print(json.dumps({'section': 'groups', 'layer': '4x70 conv_0, 64 filters',
                    'batch': args.batch, **result}), flush=True)


def matmul_section(args):
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  m, k, n = 10208, 312, 576
  flops = 2 * m * k * n
  fns = {}
  for name, jdt, tdt in (('float32', jnp.float32, torch.float32),
                         ('bfloat16', jnp.bfloat16, torch.bfloat16)):
    a, b = jnp.ones((m, k), jdt), jnp.ones((k, n), jdt)
    dot = jax.jit(lambda a, b: jnp.dot(a, b,
                                       preferred_element_type=jnp.float32))
    fns[f'xla_{name}'] = (lambda dot=dot, a=a, b=b:
                          jax.block_until_ready(dot(a, b)))
    ta, tb = torch.ones(m, k, dtype=tdt), torch.ones(k, n, dtype=tdt)
    fns[f'torch_{name}'] = lambda ta=ta, tb=tb: ta @ tb
  result = interleaved_ms(fns, args.rounds)
  gflops = {name.replace('_ms', '_gflop_per_s'): round(flops / ms / 1e6)
            for name, ms in result.items()}
  print(json.dumps({'section': 'matmul', 'shape': [m, k, n], **gflops,
                    'torch': torch.__version__}), flush=True)


def main(argv=None) -> int:
  args = parse_args(argv)
  sections = args.sections.split(',')
  x = jax.random.normal(jax.random.key(0), (args.batch,) + specs.INPUT_SHAPE)
  if 'pool' in sections:
    pool_section(args, x)
  if 'groups' in sections:
    groups_section(args, x)
  if 'matmul' in sections:
    matmul_section(args)
  return 0


if __name__ == '__main__':
  sys.exit(main())

r"""HIGH-4x70 COSINE train step on one accelerator: fp32/bf16, MFU, PyTorch twin.

  python benchmarks/gpu_bench.py --batch 32 --rounds 5 --steps 20

Run by benchmarks/gpu.sh on a GPU machine whose Python has jax (CUDA), flax,
optax, orbax and torch but no TensorFlow, clu or ml_collections: this script
imports neither mmgenre_jax.train.loop nor configs (see
benchmarks/jax_bench.py). The JAX step is jax_bench.lean_train_step: the
trainer's step without its clu metrics (same model, loss, Adam, dropout keys,
donated state).

Prints one JSON line per measurement:
  {"framework": "jax"|"torch", "dtype": "float32"|"bfloat16", "batch":...,
   "ex_per_s":..., "step_flops":..., "tflops_per_s":..., "peak_tflops":...,
   "mfu":..., "epoch_s":..., "paper_epoch_s": 590, "device":...}
MFU uses XLA's cost analysis of the compiled JAX step (the FLOPs XLA counts
for one step, forward + backward + Adam) for both frameworks, over the
device's dense peak for the dtype (PEAK_TFLOPS; fp32 against the TF32 tensor
core peak, since XLA and cuDNN use TF32 for fp32 convolutions by default).
epoch_s projects one MuMu training epoch (MUMU_TRAIN_PATCHES patches) from
ex_per_s.

--cpu-dry-run runs everything tiny on CPU to check the script itself.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import jax_bench  # First: installs the ml_collections stand-in.
import jax
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.models import audio
from mmgenre_jax.models import specs
# pylint: enable=g-import-not-at-top,wrong-import-position

VARIANT = 'high-4x70'
TARGET = 'cosine'
# Paper Sec 7.3: d = 50 label factors; Sec 7.1.1: 250 MuMu labels.
FACTOR_DIM = 50
NUM_LABELS = 250
# MuMu training tracks in the authors' own split (their code, paper Sec 9):
# 115,839, about 80 % (Sec 7.3) of 147,295 (Sec 7.1); the audio networks
# train on one patch per track (Sec 3.1).
MUMU_TRAIN_PATCHES = 115_839

# Dense peak TFLOP/s by device-kind substring (first match wins): (bf16, tf32).
# NVIDIA datasheets, without sparsity.
PEAK_TFLOPS = (
    ('H200', (989.0, 494.7)),
    ('H100 PCIe', (756.0, 378.0)),
    ('H100', (989.0, 494.7)),     # SXM / HBM3.
    ('A100', (312.0, 156.0)),
)


def paper_epoch_s():
  """HIGH-4x70 COSINE epoch seconds of Table 6 (reporting/paper.py)."""
  try:
    # pylint: disable-next=g-import-not-at-top
    from mmgenre_jax.reporting import paper
    return paper.PAPER_TABLE6[('audio', 'cosine', 'high-4x70')][1]
  except (ImportError, KeyError, AttributeError, IndexError) as e:
    print(f'[gpu_bench] paper epoch time unavailable ({e!r})',
          file=sys.stderr)
    return None


def peak_tflops(device_kind: str, dtype: str):
  for name, (bf16, tf32) in PEAK_TFLOPS:
    if name.lower() in device_kind.lower():
      return bf16 if dtype == 'bfloat16' else tf32
  return None


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--frameworks', default='jax,torch')
  parser.add_argument('--jax-layout', default='freq', choices=('nhwc', 'freq'))
  parser.add_argument('--cpu-dry-run', action='store_true',
                      help='Tiny settings on CPU: checks the script runs.')
  return parser.parse_args(argv)


def median_rate(run, batch: int, steps: int, rounds: int) -> float:
  return statistics.median(batch * steps / run(steps) for _ in range(rounds))


def jax_rate(args, dtype: str, batch_arrays):
  model = audio.create_audio_cnn(VARIANT, num_outputs=FACTOR_DIM,
                                 target=TARGET, dtype=jnp.dtype(dtype))
  model = jax_bench.with_layout(model, args.jax_layout)
  batch = {k: jnp.asarray(v) for k, v in batch_arrays.items()}
  state = jax_bench.create_state(model, batch['patch'][:1],
                                 jax.random.key(0))
  label_factors = jnp.asarray(np.random.RandomState(1).standard_normal(
      (NUM_LABELS, FACTOR_DIM)).astype(np.float32))
  rng = jax.random.key(2)
  step = jax_bench.jit_lean_step(TARGET, 'patch')
  flops = jax_bench.step_flops(step, state, batch, label_factors, rng)
  holder = {'state': state}

  def run(steps):
    start = time.perf_counter()
    s = holder['state']
    for _ in range(steps):
      s, _ = step(s, batch, label_factors, rng)
    jax.block_until_ready(s.params)
    holder['state'] = s
    return time.perf_counter() - start

  run(args.warmup)
  return median_rate(run, args.batch, args.steps, args.rounds), flops


def torch_rate(args, dtype: str, batch_arrays, device: str):
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import twin  # pylint: disable=g-import-not-at-top
  spec = specs.get_audio_spec(VARIANT)
  # Same numerics policy as XLA's default on GPU: TF32 for fp32 matmuls/convs.
  torch.backends.cuda.matmul.allow_tf32 = True
  torch.backends.cudnn.allow_tf32 = True
  torch.backends.cudnn.benchmark = True
  best = None
  # Both memory layouts, each also with our block reordering (conv -> pool ->
  # bias -> ReLU, twin pool_first), so the twin's best is the strict one.
  for layout in ('nchw', 'channels_last', 'nchw+pool_first',
                 'channels_last+pool_first'):
    torch.manual_seed(0)
    model = twin.TorchAudioCNN(
        spec.kernels, spec.filters, spec.pools, FACTOR_DIM, TARGET,
        audio.variant_dropout(VARIANT, TARGET), specs.INPUT_SHAPE[:2],
        pool_first=layout.endswith('+pool_first')).to(device)
    x = torch.from_numpy(np.ascontiguousarray(
        batch_arrays['patch'].transpose(0, 3, 1, 2))).to(device)
    if layout.startswith('channels_last'):
      model = model.to(memory_format=torch.channels_last)
      x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(batch_arrays['labels']).to(device)
    factors = torch.from_numpy(np.random.RandomState(1).standard_normal(
        (NUM_LABELS, FACTOR_DIM)).astype(np.float32)).to(device)
    step = twin.make_step(model, TARGET, learning_rate=jax_bench.LEARNING_RATE)
    autocast = dtype == 'bfloat16'

    def run(steps, step=step, x=x, labels=labels, factors=factors,
            autocast=autocast):
      start = time.perf_counter()
      for _ in range(steps):
        with torch.autocast(device.split(':')[0], dtype=torch.bfloat16,
                            enabled=autocast):
          step(x, labels, factors)
      twin.device_sync(device)
      return time.perf_counter() - start

    run(args.warmup)
    rate = median_rate(run, args.batch, args.steps, args.rounds)
    print(f'[gpu_bench] torch {dtype} {layout}: {rate:.1f} ex/s',
          file=sys.stderr, flush=True)
    if best is None or rate > best[0]:
      best = (rate, layout)
  return best


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.cpu_dry_run:
    args.batch, args.rounds, args.steps, args.warmup = 2, 1, 1, 1
  device_kind = jax.devices()[0].device_kind
  torch_device = 'cpu' if args.cpu_dry_run else 'cuda'
  batch_arrays = jax_bench.synthetic_batch(
      args.batch, specs.INPUT_SHAPE, NUM_LABELS, 'patch')
  paper = paper_epoch_s()
  flops_by_dtype = {}
  for framework in args.frameworks.split(','):
    for dtype in args.dtypes.split(','):
      layout = args.jax_layout
      if framework == 'jax':
        rate, flops = jax_rate(args, dtype, batch_arrays)
        flops_by_dtype[dtype] = flops
      else:
        rate, layout = torch_rate(args, dtype, batch_arrays, torch_device)
        # Same network and batch: XLA's count of the JAX step.
        flops = flops_by_dtype.get(dtype)
      peak = peak_tflops(device_kind, dtype)
      achieved = flops * rate / args.batch / 1e12 if flops else None
      print(json.dumps({
          'framework': framework, 'dtype': dtype, 'model':
          f'{VARIANT}-{TARGET}', 'batch': args.batch, 'layout': layout,
          'ex_per_s': round(rate, 2),
          'step_flops': flops, 'tflops_per_s': achieved and round(achieved, 4),
          'peak_tflops': peak,
          'mfu': (round(achieved / peak, 4) if achieved and peak else None),
          'epoch_s': round(MUMU_TRAIN_PATCHES / rate, 1),
          'paper_epoch_s': paper, 'device': device_kind,
      }), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())

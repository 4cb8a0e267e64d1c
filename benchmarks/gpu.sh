#!/usr/bin/env bash
# HIGH-4x70 COSINE train-step benchmark on a lent GPU machine, < 8 minutes.
#
#   bash benchmarks/gpu.sh [OUT_DIR]        (from any directory)
#
# Needs jax (CUDA), flax, optax and torch; NOT TensorFlow, clu or
# ml_collections (gpu_bench.py imports none of them). Writes, under OUT_DIR
# (default $OUT, else /tmp/mmgenre_gpu): env.txt (GPU, driver, versions) and
# gpu_bench.jsonl, one JSON line per (framework, dtype, batch): ex/s, XLA
# FLOPs per step, MFU, projected MuMu epoch seconds vs the paper's 590 s.
# Dry run of the Python part on CPU: python benchmarks/gpu_bench.py --cpu-dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-/tmp/mmgenre_gpu}}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
# JAX and torch share the GPU in one process: JAX must not take 75 % of it.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.45}
export TF_CPP_MIN_LOG_LEVEL=2
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv 2>&1
  "$PY" -c 'import jax, flax, optax, torch; print("jax", jax.__version__, jax.devices()); print("flax", flax.__version__, "optax", optax.__version__, "torch", torch.__version__, torch.cuda.is_available())' 2>&1
} | tee "$OUT_DIR/env.txt"

run() {  # run SECONDS ARGS...: one gpu_bench.py call, its JSON lines kept.
  local limit=$1; shift
  echo "[gpu.sh] gpu_bench.py $* (limit ${limit}s)" >&2
  timeout "$limit" "$PY" benchmarks/gpu_bench.py "$@" \
    | tee -a "$OUT_DIR/gpu_bench.jsonl"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || echo "[gpu.sh] exit $rc (124 = over its time limit)" >&2
}

: > "$OUT_DIR/gpu_bench.jsonl"
# The paper's batch (32): JAX fp32 + bf16, then the PyTorch twin.
run 240 --batch 32 --rounds 5 --steps 20
# A batch that fills the GPU better: JAX only (MFU at scale), both layouts.
run 90 --batch 256 --rounds 3 --steps 10 --frameworks jax --jax-layout nhwc
run 90 --batch 256 --rounds 3 --steps 10 --frameworks jax --jax-layout freq
echo "[gpu.sh] results in $OUT_DIR/gpu_bench.jsonl" >&2

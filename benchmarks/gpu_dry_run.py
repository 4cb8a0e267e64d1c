"""Runs gpu_bench.py as the GPU machine would: without TensorFlow, clu, ml_collections.

  python benchmarks/gpu_dry_run.py --cpu-dry-run

Marks those packages unimportable (sys.modules[name] = None makes `import name`
raise ImportError) before running benchmarks/gpu_bench.py, so a stray import
of them fails here on CPU rather than on the lent GPU machine.
"""
import os
import runpy
import sys
for name in ('tensorflow', 'clu', 'ml_collections', 'tensorflow_datasets'):
  sys.modules[name] = None  # `import name` now raises ImportError.
sys.argv = ['benchmarks/gpu_bench.py'] + sys.argv[1:]
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gpu_bench.py'), run_name='__main__')

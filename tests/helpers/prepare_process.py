"""`mmgenre prepare` of the mumu dataset in a process of its own.

Its worker pool (or Beam's driver) gets this process's environment, such as
the GCS emulator's address, which a pool's forkserver started by an earlier
test in this process would not have. The shard settings are those of the
bucket and cluster tests, so that their runs compare with one local run of
the pool (conftest's `pool_shards`).
"""

import os
import subprocess
import sys

SETTINGS = ('--shard-size', '8', '--image-size', '48', '--no-progress')


def command(data, out, *extra) -> list:
  return [sys.executable, '-c', 'import sys; from mmgenre_jax import cli; '
          'sys.exit(cli.main(sys.argv[1:]))', 'prepare', '--dataset', 'mumu',
          '--data', str(data), '--out', str(out), *SETTINGS, *extra]


def run(data, out, *extra) -> subprocess.CompletedProcess:
  return subprocess.run(command(data, out, *extra), capture_output=True,
                        text=True, env=dict(os.environ), check=False)

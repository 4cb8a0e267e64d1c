"""A dask.distributed cluster on 127.0.0.1 for the tests: a scheduler and
worker processes, each worker in its own empty directory.

  with dask_cluster.running(tmp_path, workers=2, env=server.env) as cluster:
    cluster.address      # 'tcp://127.0.0.1:PORT', for dask_client_address
    cluster.executed()   # worker address -> tasks it has run
    cluster.pids()       # worker address -> its process id
    cluster.ready()      # waits for every worker (after a kill)

Each worker's working directory and TMPDIR are its own folder, so nothing
can pass between the workers, or from the test, through a local disk.
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from helpers import gcs_emulator

# Seconds to wait for the workers to register with the scheduler.
START_TIMEOUT_S = 90


@dataclasses.dataclass(frozen=True)
class Cluster:
  """A running cluster: its address and its workers' folders."""
  address: str
  worker_dirs: List[pathlib.Path]

  def executed(self) -> Dict[str, int]:
    """Worker address -> how many tasks it has run."""
    # pylint: disable-next=g-import-not-at-top
    from distributed import Client
    with Client(self.address, timeout=30) as client:
      return client.run(lambda dask_worker: dask_worker.state.executed_count)

  def ready(self) -> 'Cluster':
    """Waits until every worker is up: the nanny of a killed worker starts
    a new one, which takes seconds."""
    # pylint: disable-next=g-import-not-at-top
    from distributed import Client
    with Client(self.address, timeout=30) as client:
      client.wait_for_workers(len(self.worker_dirs), timeout=START_TIMEOUT_S)
    return self

  def pids(self) -> Dict[str, int]:
    """Worker address -> the pid of its worker process."""
    # pylint: disable-next=g-import-not-at-top
    from distributed import Client
    with Client(self.address, timeout=30) as client:
      return client.run(os.getpid)


def kill_a_worker_during(cluster: Cluster, process: subprocess.Popen,
                         after_tasks: int, timeout_s: float
                         ) -> Tuple[int, str]:
  """Waits until `cluster` has run `after_tasks` more tasks while the job
  `process` (stdout and stderr piped, text) runs, checks that it still
  runs, kills one worker process with SIGKILL and waits for the job.

  Returns:
    (the killed pid, the job's stderr); the job's exit status is
    process.returncode.
  """
  before = sum(cluster.executed().values())
  try:
    while sum(cluster.executed().values()) < before + after_tasks:
      assert process.poll() is None, process.communicate()
      time.sleep(0.05)
    assert process.poll() is None  # In the middle of the run.
    victim = sorted(cluster.pids().items())[0][1]
    os.kill(victim, signal.SIGKILL)
    _, stderr = process.communicate(timeout=timeout_s)
  finally:
    if process.poll() is None:
      process.kill()
  return victim, stderr


def _dask() -> List[str]:
  script = shutil.which('dask', path=os.path.dirname(sys.executable))
  return [script] if script else [sys.executable, '-m', 'dask']


def _stop(processes) -> None:
  for process in processes:
    process.terminate()
  for process in processes:
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


@contextlib.contextmanager
def running(root, *, workers: int = 2,
            env: Optional[Mapping[str, str]] = None) -> Iterator[Cluster]:
  """Starts a scheduler and `workers` single-threaded worker processes.

  Args:
    root: a folder for the cluster; worker i works in root/worker-i.
    workers: how many worker processes.
    env: added to this process's environment for every process.
  """
  root = pathlib.Path(root)
  port = gcs_emulator.free_port()
  address = f'tcp://127.0.0.1:{port}'
  base = {**os.environ, **(env or {})}
  processes = []
  try:
    scheduler_dir = root / 'scheduler'
    scheduler_dir.mkdir(parents=True)
    processes.append(subprocess.Popen(
        _dask() + ['scheduler', '--host', '127.0.0.1', '--port', str(port),
                   '--no-dashboard'],
        cwd=scheduler_dir, env=base, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL))
    dirs = []
    for i in range(workers):
      folder = root / f'worker-{i}'
      (folder / 'tmp').mkdir(parents=True)
      dirs.append(folder)
      processes.append(subprocess.Popen(
          _dask() + ['worker', address, '--host', '127.0.0.1',
                     '--nworkers', '1', '--nthreads', '1', '--no-dashboard',
                     '--local-directory', str(folder / 'dask')],
          cwd=folder, env={**base, 'TMPDIR': str(folder / 'tmp')},
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    # pylint: disable-next=g-import-not-at-top
    from distributed import Client
    with Client(address, timeout=START_TIMEOUT_S) as client:
      client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
    yield Cluster(address, dirs)
  finally:
    _stop(processes[1:])
    _stop(processes[:1])

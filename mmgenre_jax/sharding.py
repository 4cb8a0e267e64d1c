"""Device mesh and shardings: one data axis, parameters replicated.

The same code runs on one CPU, N GPUs of one host, or a multi-host TPU pod:
each process feeds its own slice of the global batch and
`jax.make_array_from_process_local_data` assembles the global array.
"""

import os
from typing import Any, Mapping

from absl import logging
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from mmgenre_jax import errors

DATA_AXIS = 'data'

# Set on every worker of a multi-process launch (see README, "TPU pods").
DISTRIBUTED_ENV = 'MMGENRE_DISTRIBUTED'


def maybe_initialize_distributed() -> None:
  """Calls jax.distributed.initialize() when launched as several processes.

  On a Cloud TPU pod slice (or any cluster JAX auto-detects) set
  MMGENRE_DISTRIBUTED=1 on every worker; for a manual launch also set
  JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, which
  jax.distributed.initialize() reads itself.
  """
  if os.environ.get(DISTRIBUTED_ENV, '0') not in ('', '0'):
    kwargs = {}
    # Manual launches (e.g. the localhost test) name the topology; on a TPU
    # pod jax.distributed.initialize() discovers it.
    if 'JAX_NUM_PROCESSES' in os.environ:
      kwargs['num_processes'] = int(os.environ['JAX_NUM_PROCESSES'])
    if 'JAX_PROCESS_ID' in os.environ:
      kwargs['process_id'] = int(os.environ['JAX_PROCESS_ID'])
    if 'JAX_COORDINATOR_ADDRESS' in os.environ:
      kwargs['coordinator_address'] = os.environ['JAX_COORDINATOR_ADDRESS']
    jax.distributed.initialize(**kwargs)
    logging.info('jax.distributed: process %d of %d, %d local / %d devices',
                 jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count())


def create_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis 'data'."""
  # Auto axis types: jit propagates shardings from the inputs we place,
  # with no explicit-sharding annotations needed inside the model.
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Batch arrays: leading axis split over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Parameters and optimizer state: a full copy on every device."""
  return NamedSharding(mesh, P())


def per_process_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """The slice of the global batch that this process feeds.

  Raises:
    ValueError: if the batch does not split evenly over devices, checked
      before anything is compiled.
  """
  num_devices = mesh.devices.size
  if global_batch_size % num_devices:
    raise errors.ConfigError(
        f'Batch size ({global_batch_size}) must be divisible by the number of '
        f'devices ({num_devices}); set --config.train.batch_size to a '
        f'multiple of {num_devices}.')
  return global_batch_size // jax.process_count()


def to_global_batch(batch: Mapping[str, Any], mesh: Mesh) -> dict[str, Any]:
  """Turns this process's numpy batch into global sharded jax.Arrays.

  Args:
    batch: key -> numpy array [per_process_batch, ...]; string arrays (ids)
      stay on the host and are dropped here.

  Returns:
    key -> jax.Array [global_batch, ...] sharded over the data axis.
  """
  sharding = data_sharding(mesh)
  return {
      key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
      for key, value in batch.items()
      if np.asarray(value).dtype.kind not in ('S', 'U', 'O')
  }

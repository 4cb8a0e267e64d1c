"""This process's batch -> the global jax arrays of one step.

Item ids travel through the eval step as fixed-width UTF-8 bytes (uint8
[B, ID_BYTES]), so that the replicated outputs carry the ids of every
process's rows in the global batch order.

  step_batch = device_batch.model_batch(batch, steps.keys, mesh,
                                        with_ids=True)
  ids = device_batch.decode_ids(outputs['ids'])
"""

from typing import Dict, Mapping, Tuple

import jax
import numpy as np

from mmgenre_jax import sharding

# The width of an encoded id; a longer id is refused (encode_ids).
ID_BYTES = 64


def encode_ids(ids: np.ndarray) -> np.ndarray:
  """str [B] -> uint8 [B, ID_BYTES] (zero-padded UTF-8)."""
  encoded = [str(i).encode('utf-8') for i in np.asarray(ids).tolist()]
  too_long = [i for i in encoded if len(i) > ID_BYTES]
  if too_long:
    raise ValueError(
        f'Item id {too_long[0]!r} is longer than {ID_BYTES} '
        'bytes (mmgenre_jax.data.device_batch.ID_BYTES); shorten the '
        'ids.')
  out = np.zeros((len(encoded), ID_BYTES), np.uint8)
  for row, value in enumerate(encoded):
    out[row, :len(value)] = np.frombuffer(value, np.uint8)
  return out


def decode_ids(encoded: np.ndarray) -> np.ndarray:
  """uint8 [B, ID_BYTES] -> str [B]."""
  encoded = np.ascontiguousarray(encoded, np.uint8)
  return np.asarray([bytes(row).rstrip(b'\0').decode('utf-8')
                     for row in encoded], dtype=str)


def model_batch(batch: Mapping[str, np.ndarray], keys: Tuple[str, ...],
                mesh, *, with_ids: bool = False) -> Dict[str, jax.Array]:
  """This process's batch -> the global arrays of one step.

  Keeps the network inputs `keys`, 'labels' and 'mask' (and, with_ids, the
  'ids' / 'album_ids' as uint8 [B, ID_BYTES]), sharded over the data axis
  of `mesh` (sharding.to_global_batch).
  """
  keep = {k: batch[k] for k in keys + ('labels', 'mask')}
  if with_ids:
    keep['ids'] = encode_ids(batch['ids'])
    keep['album_ids'] = encode_ids(batch['album_ids'])
  return sharding.to_global_batch(keep, mesh)

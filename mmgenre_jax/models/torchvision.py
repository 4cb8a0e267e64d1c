"""torchvision ResNet weights <-> the Linen ResNet of models/image.py.

The paper fine-tunes ImageNet weights (Sec 3.2). torch is not a dependency;
convert the weights once where it is installed:

  sd = torchvision.models.resnet101(weights='IMAGENET1K_V2').state_dict()
  np.savez(out, **{k: v.numpy() for k, v in sd.items()})

The .npz then holds one array per torchvision state_dict key: 'conv1.weight'
[O, I, kh, kw], 'bn1.weight' / 'bn1.bias' / 'bn1.running_mean' /
'bn1.running_var' [C], 'bn1.num_batches_tracked' [] (ignored),
'layer1.0.conv1.weight', ..., 'layer1.0.downsample.0.weight' (conv),
'layer1.0.downsample.1.*' (batch norm), ..., 'fc.weight' / 'fc.bias'
(ignored: our head is new). Use the depth the file was saved from (resnet50
-> 50, resnet101 -> 101, resnet18 -> 18, resnet34 -> 34).

  variables = torchvision.load_torchvision_npz('resnet101.npz', variables)
  torchvision.export_torchvision_npz(variables, 'out.npz')   # the reverse
"""

import os
import re
import zipfile
from typing import Any, Dict, Mapping, Sequence, Tuple

from absl import logging
import flax
from flax import traverse_util
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.models.image import HEAD_NAME

Variables = Mapping[str, Any]
# torchvision state_dict keys the loader accepts but does not use: the ImageNet
# classifier and batch norm's update counter.
IGNORED_KEY_PATTERN = re.compile(r'^fc\.(weight|bias)$|\.num_batches_tracked$')
# Flax variable leaf -> torchvision tensor suffix, per layer kind.
_CONV_LEAVES = {('params', 'kernel'): 'weight'}
_BN_LEAVES = {('params', 'scale'): 'weight', ('params', 'bias'): 'bias',
              ('batch_stats', 'mean'): 'running_mean',
              ('batch_stats', 'var'): 'running_var'}
# How many keys an error message lists before "... and N more".
_MAX_LISTED_KEYS = 12


def _torch_module_name(path: Tuple[str, ...]) -> str:
  """('layer1_0', 'downsample_conv') -> 'layer1.0.downsample.0'."""
  parts = []
  for name in path:
    match = re.fullmatch(r'layer(\d+)_(\d+)', name)
    if match:
      parts += [f'layer{match.group(1)}', match.group(2)]
    elif name == 'downsample_conv':
      parts += ['downsample', '0']
    elif name == 'downsample_bn':
      parts += ['downsample', '1']
    else:
      parts.append(name)
  return '.'.join(parts)


def _is_norm(module_path: Tuple[str, ...]) -> bool:
  return module_path[-1].startswith('bn') or module_path[-1] == 'downsample_bn'


def _to_torch(array: np.ndarray) -> np.ndarray:
  """Flax HWIO conv kernel -> torch OIHW; vectors unchanged."""
  return np.transpose(array, (3, 2, 0, 1)) if array.ndim == 4 else array


def _from_torch(array: np.ndarray) -> np.ndarray:
  """torch OIHW conv weight -> Flax HWIO; vectors unchanged."""
  return np.transpose(array, (2, 3, 1, 0)) if array.ndim == 4 else array


def _torch_names(variables: Variables
                 ) -> Dict[str, Tuple[Tuple[str, ...], Any]]:
  """torchvision key -> (flat Flax variable path, leaf) for the backbone.

  Args:
    variables: {'params': ..., 'batch_stats': ...} of a ResNet, concrete or
      from jax.eval_shape.

  Returns:
    One entry per backbone leaf; the head is left out.

  Raises:
    ValueError: if a leaf is not a ResNet conv or batch norm variable.
  """
  flat = traverse_util.flatten_dict(flax.core.unfreeze(dict(variables)))
  names = {}
  for path, leaf in flat.items():
    collection, module_path, leaf_name = path[0], path[1:-1], path[-1]
    if module_path and module_path[0] == HEAD_NAME:
      continue
    leaves = _BN_LEAVES if module_path and _is_norm(module_path) else (
        _CONV_LEAVES)
    suffix = leaves.get((collection, leaf_name))
    if not module_path or suffix is None:
      raise ValueError(
          f'Variable {"/".join(path)} is not part of a ResNet backbone; pass '
          'the variables of image.create_resnet(...).init(...).')
    names[f'{_torch_module_name(module_path)}.{suffix}'] = (path, leaf)
  return names


def torchvision_shapes(variables: Variables) -> Dict[str, Tuple[int, ...]]:
  """The torchvision state_dict keys and shapes a weight file must hold.

  Args:
    variables: ResNet variables, concrete or from jax.eval_shape.

  Returns:
    {torchvision key: shape in torch layout (OIHW for convs)}, without the
    ignored 'fc.*' and '*.num_batches_tracked' entries.
  """
  shapes = {}
  for key, (_, leaf) in _torch_names(variables).items():
    shape = tuple(leaf.shape)
    shapes[key] = (shape[3], shape[2], shape[0], shape[1]) if len(
        shape) == 4 else shape
  return shapes


def export_torchvision_npz(variables: Variables, path: str) -> None:
  """Writes the backbone as a torchvision-named .npz (load_torchvision_npz's
  input format); the head is not written.

  Args:
    variables: concrete ResNet variables ('params' and 'batch_stats').
    path: output file; numpy appends '.npz' when it lacks the suffix.
  """
  arrays = {key: _to_torch(np.asarray(leaf))
            for key, (_, leaf) in _torch_names(variables).items()}
  directory = os.path.dirname(os.fspath(path))
  if directory:
    os.makedirs(directory, exist_ok=True)
  np.savez(path, **arrays)


def _listing(keys: Sequence[str]) -> str:
  keys = sorted(keys)
  shown = ', '.join(keys[:_MAX_LISTED_KEYS])
  more = len(keys) - _MAX_LISTED_KEYS
  return shown + (f', ... and {more} more' if more > 0 else '')


def _read_npz(path: str) -> Dict[str, np.ndarray]:
  """Every array of an .npz, with errors that name the file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Pretrained ResNet weights not found: {path}. Convert them where '
        'torch is installed (see the docstring of mmgenre_jax.models.image) '
        'or leave the setting empty to train from scratch.')
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {key: npz[key] for key in npz.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise ValueError(
        f'{path} is not a readable .npz of arrays ({e}); write it with '
        'np.savez(out, **{k: v.numpy() for k, v in state_dict.items()}).'
    ) from e


def load_torchvision_npz(path: str, variables: Variables, *,
                         strict: bool = True) -> Dict[str, Any]:
  """Loads ImageNet weights saved from a torchvision ResNet state_dict.

  Conv weights are transposed from torch's OIHW to Flax's HWIO, batch norm
  weight/bias go to params scale/bias and running_mean/running_var to
  batch_stats mean/var; values take the dtype of the variables they replace.
  'fc.*' and '*.num_batches_tracked' are ignored, and the head keeps its
  values in `variables` (a fresh initialisation).

  Args:
    path: .npz written as in the module docstring.
    variables: {'params', 'batch_stats'} of the same ResNet, from model.init.
    strict: raise on keys missing from the file or unknown to the model.
      With strict=False those are logged, unknown keys are skipped and
      missing variables keep their values in `variables`.

  Returns:
    New variables {'params': ..., 'batch_stats': ...} (plain dicts);
    `variables` is not modified.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: an unreadable file; a shape that differs from the model's
      (naming the key and both shapes); with strict, missing or unexpected
      keys (listing them).
  """
  arrays = _read_npz(path)
  expected = _torch_names(variables)
  used = {k for k in arrays if not IGNORED_KEY_PATTERN.search(k)}
  missing = sorted(set(expected) - used)
  unexpected = sorted(used - set(expected))
  if (missing or unexpected) and strict:
    problems = []
    if missing:
      problems.append(f'{len(missing)} model keys missing from the file: '
                      f'{_listing(missing)}')
    if unexpected:
      problems.append(f'{len(unexpected)} file keys unknown to the model: '
                      f'{_listing(unexpected)}')
    raise ValueError(
        f'{path} does not match this ResNet ({len(expected)} backbone keys, '
        f'file has {len(used)} besides fc/num_batches_tracked). '
        + '; '.join(problems) + '. Check that the file was saved from the '
        'same depth (config.model.depth), or pass strict=False to load the '
        'keys that match.')
  if missing:
    logging.warning('%s lacks %d keys; they keep their initial values: %s',
                    path, len(missing), _listing(missing))
  if unexpected:
    logging.warning('%s has %d keys unknown to the model, skipped: %s', path,
                    len(unexpected), _listing(unexpected))

  wanted = torchvision_shapes(variables)
  flat = traverse_util.flatten_dict(flax.core.unfreeze(dict(variables)))
  for key in sorted(set(expected) & used):
    flax_path, leaf = expected[key]
    array = arrays[key]
    if tuple(array.shape) != wanted[key]:
      raise ValueError(
          f'{path}: key {key!r} has shape {tuple(array.shape)} but the model '
          f'expects {wanted[key]} (torch layout; Flax variable '
          f'{"/".join(flax_path)} {tuple(leaf.shape)}). Check '
          'config.model.depth against the network the file was saved from.')
    if not np.issubdtype(array.dtype, np.floating):
      raise ValueError(
          f'{path}: key {key!r} has dtype {array.dtype}; expected a float '
          'array.')
    flat[flax_path] = jnp.asarray(_from_torch(array), dtype=leaf.dtype)
  return traverse_util.unflatten_dict(flat)

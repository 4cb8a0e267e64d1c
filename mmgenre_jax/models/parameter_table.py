"""Parameter summaries of the networks, without allocating or compiling.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=/tmp/w --mode=summary

Shapes come from jax.eval_shape, which only traces the model: a summary of
ResNet-101 costs no device memory and no compilation.
"""

import functools
from typing import Any, Tuple

import flax.linen as nn
from flax import traverse_util
import jax
import ml_collections
import numpy as np

from mmgenre_jax import models


def _as_args(inputs: Any) -> Tuple[Any, ...]:
  return inputs if isinstance(inputs, tuple) else (inputs,)


def abstract_variables(model: nn.Module, inputs: Any) -> Any:
  """Shapes and dtypes of model.init's variables.

  Args:
    model: an unbound Linen module.
    inputs: its positional inputs (a tuple, as models.dummy_inputs gives) or
      one input array.

  Returns:
    The variables pytree with jax.ShapeDtypeStruct leaves.
  """
  rng = jax.random.key(0)
  init = functools.partial(model.init, train=False)
  return jax.eval_shape(init, {'params': rng, 'dropout': rng},
                        *_as_args(inputs))


def parameter_table(model: nn.Module, inputs: Any) -> Tuple[str, int]:
  """Lists every parameter of a model with its shape and size.

  Args:
    model: an unbound Linen module.
    inputs: as in abstract_variables.

  Returns:
    (table, total): a text table with one row per parameter (path, shape,
    count) and a closing total, and the number of trainable parameters
    (the 'params' collection; batch statistics are reported apart and not
    counted).
  """
  return _format_table(abstract_variables(model, inputs))


def _format_table(variables: Any) -> Tuple[str, int]:
  """parameter_table's work on already traced variables."""
  rows = []
  total = 0
  for path, leaf in traverse_util.flatten_dict(
      variables.get('params', {}), sep='/').items():
    count = int(np.prod(leaf.shape))
    total += count
    rows.append((path, str(tuple(leaf.shape)), f'{count:,}'))
  width = max([len('parameter')] + [len(r[0]) for r in rows])
  shape_width = max([len('shape')] + [len(r[1]) for r in rows])
  lines = [f'{"parameter":<{width}}  {"shape":<{shape_width}}  {"count":>13}',
           '-' * (width + shape_width + 17)]
  lines += [f'{p:<{width}}  {s:<{shape_width}}  {c:>13}' for p, s, c in rows]
  lines.append(f'{"total":<{width}}  {"":<{shape_width}}  {total:>13,}')
  for collection, tree in variables.items():
    if collection == 'params':
      continue
    size = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
    lines.append(f'({collection}: {size:,} values, not trainable, '
                 'not counted)')
  return '\n'.join(lines), total


def output_shapes(model: nn.Module, inputs: Any, variables: Any = None
                  ) -> Any:
  """Shapes of model.apply's outputs (eval mode), traced only.

  Args:
    model: an unbound Linen module.
    inputs: as in abstract_variables.
    variables: abstract_variables(model, inputs) if already computed.

  Returns:
    The output pytree with jax.ShapeDtypeStruct leaves.
  """
  args = _as_args(inputs)
  if variables is None:
    variables = abstract_variables(model, args)
  apply = functools.partial(model.apply, train=False)
  return jax.eval_shape(apply, variables, *args)


def print_summary(config: ml_collections.ConfigDict, facts=None) -> int:
  """Prints the parameter table and output shapes of config.model's network.

  The last line printed is `total_params=N`.

  Args:
    config: an experiment config (configs/*.py get_config()).
    facts: the DataFacts of the data the network was trained on (its
      workdir's data_facts.json), which size it as trained; None: the
      config's sizes.

  Returns:
    N, the number of trainable parameters.
  """
  model = models.create_model(config.model, facts)
  inputs = models.dummy_inputs(config.model, batch_size=1, facts=facts)
  variables = abstract_variables(model, inputs)
  table, total = _format_table(variables)
  print(f'model: {config.model.name} '
        f'(target={config.model.get("target")}, '
        f'{type(model).__name__}; sized by '
        f'{"the data it was trained on" if facts else "the config"})')
  print(table)
  shapes = jax.tree.map(lambda x: tuple(x.shape),
                        output_shapes(model, inputs, variables))
  for path, shape in traverse_util.flatten_dict(
      dict(shapes), sep='/').items():
    print(f'{path}: {shape} (batch 1)')
  print(f'total_params={total}')
  return total

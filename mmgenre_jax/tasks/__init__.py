"""Tasks: what a kind of network trains for, behind one interface.

Each network of the registry names its task (registry.Network.task); the
task supplies the network's jitted train and eval steps, the evaluation of a
whole split and the extraction of its representations (base.Task):

  label_prediction  the networks with an output layer of labels, trained on
                    their config.model.target (core/targets.py)
  alignment         the multimodal space of Sec 3.4 (no label scores)

Adding a task is one module here, named as the task, with a `TASK` object.

  task = tasks.of(config.model)
  steps = task.build_steps(config, facts, mesh, source, label_factors)
  result = task.evaluate_split(steps, state, config, 'test')
"""

import importlib

from mmgenre_jax.models import registry


def get(name: str):
  """The base.Task named `name` (its module's TASK)."""
  return importlib.import_module(f'{__name__}.{name}').TASK


def of(model_config):
  """The base.Task of config.model's network."""
  return get(registry.network(model_config).task)

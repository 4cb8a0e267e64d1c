"""What training and evaluation of a stage share: data, facts, mesh, network.

  stage = setup.setup(config, workdir)
  stage.facts.num_labels, stage.model, stage.steps.train, stage.task

The stage's data (a ShardSource or a RepresentationSource, data/sources.py)
says its facts (data/facts.py); the registry builds the network from the
config and those facts; the network's task (mmgenre_jax/tasks/) builds the
jitted steps over the device mesh. COSINE label factors come with the steps:
training computes them (train/label_factors.py), evaluation reads back what
training wrote.
"""

import dataclasses
from typing import Any, Optional

from etils import epath
import jax
import ml_collections
import numpy as np

from mmgenre_jax import sharding
from mmgenre_jax import tasks
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.data import sources
from mmgenre_jax.models import registry
from mmgenre_jax.tasks import base
from mmgenre_jax.train import label_factors as label_factors_lib


@dataclasses.dataclass(frozen=True)
class Stage:
  """One network ready to train or evaluate.

  Attributes:
    config: the experiment config, as given.
    facts: what its data says (data/facts.py).
    mesh: the device mesh.
    model: the unbound Linen module.
    task: its task (tasks/base.py Task).
    steps: the jitted steps and the data they read.
    label_factors: C_d on every device (COSINE), else None.
  """
  config: ml_collections.ConfigDict
  facts: data_facts.DataFacts
  mesh: Any
  model: Any
  task: base.Task
  steps: base.Steps
  label_factors: Optional[jax.Array]


def read_facts(config: ml_collections.ConfigDict, source=None):
  """(DataFacts, data source) of a stage, from its manifest or inputs."""
  source = source or sources.make_source(config)
  if registry.network(config.model).reads_representations:
    return data_facts.from_representations(config, source.split('train')), \
        source
  return data_facts.from_manifest(config, source.manifest), source


def _label_factors(config, facts, workdir, source, mesh, compute: bool):
  """C_d on every device (COSINE), else None."""
  if not label_factors_lib.used_by(config):
    return None
  if compute:
    factors = label_factors_lib.compute(config, facts, workdir, source)
  else:
    factors = label_factors_lib.load(config, workdir)
  return jax.device_put(np.asarray(factors, np.float32),
                        sharding.replicated_sharding(mesh))


def setup(config: ml_collections.ConfigDict, workdir, *,
          compute_label_factors: bool = False) -> Stage:
  """Everything training and evaluation share.

  Args:
    config: the stage's experiment config.
    workdir: its workdir S (created if needed).
    compute_label_factors: COSINE: compute C_d and write it to S (training);
      otherwise read what training wrote (evaluation).

  Raises:
    errors.ConfigError: the config does not fit its data or the devices.
  """
  facts, source = read_facts(config)
  if facts.frontend:  # Audio shards.
    data_facts.check_frontend(workdir, facts.audio_frontend(),
                              'its shards (prepared again since)')
  mesh = sharding.create_mesh()
  # Clear errors before anything is compiled.
  sharding.per_process_batch_size(int(config.train.batch_size), mesh)
  sharding.per_process_batch_size(int(config.eval.batch_size), mesh)
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  model = registry.create_model(config.model, facts)
  task = tasks.of(config.model)
  factors = _label_factors(config, facts, workdir, source, mesh,
                           compute_label_factors)
  steps = task.build_steps(config, facts, mesh, source, factors)
  return Stage(config=config, facts=facts, mesh=mesh, model=model,
               task=task, steps=steps, label_factors=factors)

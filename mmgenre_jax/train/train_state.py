"""The train state of a stage: parameters, optimizer, BatchNorm statistics.

  state = train_state.create_train_state(config, model, rng, mesh, facts)
  abstract = train_state.abstract_train_state(config, model, mesh, facts)

The state's class (tasks/base.py TrainState) is what the tasks' steps update.
"""

import importlib

from absl import logging
import jax
import ml_collections
import numpy as np
import optax

from mmgenre_jax import errors
from mmgenre_jax import sharding
from mmgenre_jax.models import registry
from mmgenre_jax.models import specs
from mmgenre_jax.tasks import base

def create_optimizer(config: ml_collections.ConfigDict,
                     steps_per_epoch: int = 1
                     ) -> optax.GradientTransformation:
  """The optimizer of config.train.

  'adam': Adam with its default parameters (Sec 6.2, 7.3.1; also the image
  network's optimizer in the paper's text). 'sgd': the image network's SGD
  with Nesterov momentum (the authors' code, docs/fidelity.md). Both add
  config.train.weight_decay * params to the gradient first (as torch's
  `weight_decay`, also of torch's Adam) when it is > 0, to EVERY parameter:
  no mask, so conv kernels, batch-norm scales and biases and the output
  head's weights and biases all decay (Sec 3.2: "weight decay is applied to
  all weights and biases"; BatchNorm running statistics are not parameters
  and never decay). The learning rate is multiplied by
  config.train.lr_decay_factor every config.train.lr_decay_epochs epochs
  when that is > 0 (a step schedule).

  Args:
    config: the prepared config.
    steps_per_epoch: optimisation steps per epoch (sizes the schedule).
  """
  train_config = config.train
  name = train_config.get('optimizer', 'adam')
  lr = float(train_config.learning_rate)
  decay_epochs = int(train_config.get('lr_decay_epochs') or 0)
  if decay_epochs > 0:
    lr = optax.exponential_decay(
        lr, transition_steps=decay_epochs * max(1, int(steps_per_epoch)),
        decay_rate=float(train_config.get('lr_decay_factor', 0.1)),
        staircase=True)
  if name == 'adam':
    tx = optax.adam(lr)
  elif name == 'sgd':
    tx = optax.sgd(lr, momentum=float(train_config.get('momentum', 0.9)),
                   nesterov=True)
  else:
    raise ValueError(f'Unknown config.train.optimizer {name!r}; use adam or '
                     'sgd.')
  weight_decay = float(train_config.get('weight_decay') or 0.0)
  if weight_decay > 0:
    # mask=None: every leaf of params (the docstring).
    tx = optax.chain(optax.add_decayed_weights(weight_decay, mask=None), tx)
  return tx


def create_train_state(config: ml_collections.ConfigDict, model, rng,
                       mesh, steps_per_epoch: int = 1,
                       facts=None) -> base.TrainState:
  """Initialises parameters and optimizer state, already replicated.

  Args:
    config: the stage's config.
    model: registry.create_model(config.model, facts).
    rng: PRNG key of the initialisation.
    mesh: sharding.create_mesh().
    steps_per_epoch: sizes the learning-rate schedule.
    facts: the stage's DataFacts (the network's input sizes); None: the
      config's own sizes.

  Returns:
    A TrainState whose arrays live on every device of the mesh.
  """
  tx = create_optimizer(config, steps_per_epoch)
  inputs = registry.dummy_inputs(config.model, facts=facts)

  def init(rng):
    variables = model.init({'params': rng}, *inputs, train=False)
    return base.TrainState.create(
        apply_fn=model.apply, params=variables['params'], tx=tx,
        batch_stats=variables.get('batch_stats', {}))

  # We jit init so that the arrays are created replicated on the mesh, not
  # on device 0 and then copied.
  return jax.jit(init, out_shardings=sharding.replicated_sharding(mesh))(rng)


def check_image_init(config: ml_collections.ConfigDict) -> None:
  """Refuses a ResNet of a torchvision depth with neither weights nor
  config.model.from_scratch.

  The paper fine-tunes ImageNet weights (Sec 3.2); a fresh ResNet-101 on
  covers is another experiment, so it must be asked for explicitly. The
  'tiny' ResNet (CPU runs, tests) has no ImageNet weights: always fine.

  Raises:
    errors.ConfigError: no config.model.pretrained at depth 18, 34, 50 or
      101 without config.model.from_scratch, or both set.
  """
  if not registry.network(config.model).pretrained:
    return
  path = config.model.get('pretrained') or ''
  from_scratch = bool(config.model.get('from_scratch', False))
  if path and from_scratch:
    raise errors.ConfigError(
        f'config.model.pretrained={path!r} and config.model.from_scratch='
        'True contradict each other; drop one (--config.model.from_scratch='
        'False to fine-tune the weights).')
  depth = str(config.model.get('depth')).strip()
  if path or from_scratch or not depth.isdigit() or (
      int(depth) not in specs.TORCHVISION_DEPTHS):
    return
  raise errors.ConfigError(
      f'The image stage (ResNet-{depth}) fine-tunes ImageNet weights (paper '
      'Sec 3.2) but config.model.pretrained is empty: pass '
      f'--config.model.pretrained=/path/resnet{depth}.npz (torchvision '
      'weights converted once where torch is installed: np.savez(out, **{k: '
      f'v.numpy() for k, v in torchvision.models.resnet{depth}(weights='
      '"DEFAULT").state_dict().items()}), see '
      'mmgenre_jax/models/torchvision.py), or '
      '--config.model.from_scratch=True to train from a random '
      'initialisation (in a pipeline: --config.stages.<stage>.config.model.'
      '...).')


def load_pretrained(config: ml_collections.ConfigDict,
                    state: base.TrainState, mesh) -> base.TrainState:
  """Replaces the ResNet body with config.model.pretrained (torchvision .npz).

  The output head keeps its fresh initialisation (models.image
  load_torchvision_npz); a no-op when config.model.pretrained is empty.
  Training calls it once, before the first step of a fresh (not resumed)
  run: check_image_init refuses a torchvision depth without weights there.
  """
  check_image_init(config)
  path = config.model.get('pretrained') or ''
  if not path:
    return state
  if not registry.network(config.model).pretrained:
    raise ValueError(f'config.model.pretrained={path!r} is for ResNet '
                     f'weights; model {config.model.name!r} takes none.')
  torchvision = importlib.import_module('mmgenre_jax.models.torchvision')
  variables = jax.device_get({'params': state.params,
                              'batch_stats': state.batch_stats})
  loaded = torchvision.load_torchvision_npz(path, variables)
  loaded = jax.device_put(loaded, sharding.replicated_sharding(mesh))
  logging.info('Loaded pretrained ResNet weights from %s.', path)
  return state.replace(params=loaded['params'],
                       batch_stats=loaded['batch_stats'])


def abstract_train_state(config: ml_collections.ConfigDict, model, mesh,
                         facts=None):
  """Shapes, dtypes and shardings of create_train_state, nothing allocated."""
  return jax.eval_shape(
      lambda: create_train_state(config, model, jax.random.key(0), mesh,
                                 facts=facts))


def num_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))

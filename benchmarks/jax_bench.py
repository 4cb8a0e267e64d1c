"""JAX helpers of the benchmarks that import no TensorFlow, clu or configs.

benchmarks/gpu.sh runs on machines whose Python has jax, flax, optax and
torch but not TensorFlow, clu or ml_collections. mmgenre_jax.train.loop imports
all three, and mmgenre_jax.models imports ml_collections (for type annotations
only), so this module:

  * installs a stand-in `ml_collections` module when the real one is missing
    (ensure_models_importable), enough for mmgenre_jax.models to import;
  * builds a train step equal to mmgenre_jax.tasks.label_prediction.train_step
  minus the clu
    metrics (lean_train_step): same model, same per-row loss and masked mean,
    same optax.adam, the same dropout key folded with the step, the state
    donated;
  * switches the audio CNN between its conv layouts
    (models.audio.CONV_LAYOUTS) for side-by-side timing.
"""

import functools
import importlib
import sys
import types
from typing import Any, Mapping, Optional, Tuple

import numpy as np


def ensure_models_importable() -> bool:
  """Makes `import mmgenre_jax.models` work without ml_collections.

  Returns:
    True if a stand-in was installed (ml_collections is not installed).
  """
  try:
    importlib.import_module('ml_collections')
    return False
  except ImportError:
    stub = types.ModuleType('ml_collections')
    # mmgenre_jax.models only names ml_collections.ConfigDict in annotations.
    stub.ConfigDict = dict
    stub.FieldReference = object
    sys.modules['ml_collections'] = stub
    return True


ensure_models_importable()

# pylint: disable=g-import-not-at-top,wrong-import-position
from flax.training import train_state
import jax
import jax.numpy as jnp
import optax

from mmgenre_jax.core import losses
from mmgenre_jax.models import audio
from mmgenre_jax.core import cosine
from mmgenre_jax.core import targets
# pylint: enable=g-import-not-at-top,wrong-import-position

# Paper Sec 7.3.1: Adam with its default parameters, learning rate 1e-3
# (docs/fidelity.md; configs/default.py holds the same value; read from there
# where configs import).
LEARNING_RATE = 1e-3


def item_targets(labels, label_factors, target: str):
  """Target.item_targets for multi-hot labels, in plain jnp."""
  if not targets.get(target).uses_label_factors:
    return labels
  return cosine.l2_normalize(labels.astype(jnp.float32) @ label_factors)


def lean_train_step(state, batch, label_factors, rng, *, target: str,
                    input_key: str):
  """tasks/label_prediction.py's train_step without the clu metrics.

  Returns:
    (state, loss).
  """
  dropout_rng = jax.random.fold_in(rng, state.step)
  mask = batch['mask']
  item_target = item_targets(batch['labels'], label_factors, target)
  loss_per_row = targets.get(target).loss_per_row

  def loss_fn(params):
    outputs = state.apply_fn({'params': params}, batch[input_key], train=True,
                             rngs={'dropout': dropout_rng})
    per_row = loss_per_row(outputs['output'].astype(jnp.float32),
                           item_target, mask)
    return losses.masked_mean(per_row, mask)

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), loss


def create_state(model, example, rng, learning_rate: float = LEARNING_RATE):
  """A flax TrainState (params + optax.adam state) for `model`."""
  variables = jax.jit(lambda r: model.init({'params': r}, example,
                                           train=False))(rng)
  return train_state.TrainState.create(
      apply_fn=model.apply, params=variables['params'],
      tx=optax.adam(learning_rate))


def jit_lean_step(target: str, input_key: str):
  """The jitted lean step, state donated (argument 0)."""
  return jax.jit(functools.partial(lean_train_step, target=target,
                                   input_key=input_key),
                 donate_argnums=(0,))


def synthetic_batch(batch_size: int, input_shape: Tuple[int, ...],
                    num_labels: int, input_key: str, seed: int = 0
                    ) -> Mapping[str, np.ndarray]:
  """A random in-memory batch: inputs, multi-hot labels, all-ones mask."""
  rs = np.random.RandomState(seed)
  x = rs.standard_normal((batch_size,) + tuple(input_shape)).astype(
      np.float32)
  labels = (rs.random_sample((batch_size, num_labels)) < 0.05).astype(
      np.float32)
  labels[:, 0] = 1.0  # Every row has a label, so COSINE targets are unit.
  return {input_key: x, 'labels': labels,
          'mask': np.ones((batch_size,), np.float32)}


def step_flops(jitted, *args) -> Optional[float]:
  """FLOPs of one call from XLA's cost analysis of the compiled step."""
  try:
    analysis = jitted.lower(*args).compile().cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get('flops')
  return float(flops) if flops else None


# ------------------------------------------------------------ layouts

# --jax-layout value -> models.audio.AudioCNN.conv_layout.
JAX_LAYOUTS = {'freq': 'freq_channels', 'nhwc': 'nhwc'}


def with_layout(model: audio.AudioCNN, layout: str) -> audio.AudioCNN:
  """`model` computing its wide-kernel convs with --jax-layout `layout`."""
  return model.clone(conv_layout=JAX_LAYOUTS[layout])


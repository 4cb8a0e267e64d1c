"""Flax Linen modules of the paper's networks, and the model factory.

Every classifier returns {'output': [B, K], 'representation': [B, R]}
(heads.OutputHead gives raw logits for 'logistic'/'softmax' and unit vectors
for 'cosine'); the alignment network returns {'audio', 'visual'} embeddings.
Modules are used purely functionally:

  model = models.create_model(config.model)
  inputs = models.dummy_inputs(config.model)      # a tuple of positional args
  variables = model.init({'params': rng}, *inputs, train=False)
  out = model.apply(variables, *batch_inputs, train=True,
                    rngs={'dropout': key})        # + mutable for ResNet

`create_model` dispatches on config.model.name through _REGISTRY.
"""

import importlib
from typing import Any, Callable, NamedTuple, Tuple

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from mmgenre_jax.models import alignment
from mmgenre_jax.models import audio
from mmgenre_jax.models import fusion
from mmgenre_jax.models import heads
from mmgenre_jax.models import text

# ResNet input when config.model.image_size is unset (SPEC §2: centre crop).
DEFAULT_IMAGE_SIZE = 224

OutputHead = heads.OutputHead
TARGETS = heads.TARGETS


def _require(model_config: ml_collections.ConfigDict, field: str) -> Any:
  """Returns a required field, or a KeyError saying where to set it."""
  value = model_config.get(field)
  if value is None:
    raise KeyError(
        f'config.model.{field} is required for model '
        f'{model_config.get("name")!r}; set it in the experiment config or '
        f'with --config.model.{field}=...')
  return value


def _optional(model_config: ml_collections.ConfigDict, field: str,
              default: Any) -> Any:
  """Returns a field, or `default` where it is missing or None."""
  value = model_config.get(field)
  return default if value is None else value


def _dtype(model_config: ml_collections.ConfigDict) -> Any:
  return jnp.dtype(_optional(model_config, 'dtype', 'float32'))


def _head_kwargs(model_config: ml_collections.ConfigDict) -> dict:
  return dict(num_outputs=int(_require(model_config, 'num_outputs')),
              target=heads.check_target(_require(model_config, 'target')))


def _zeros(batch_size: int, *shape: int) -> jnp.ndarray:
  return jnp.zeros((batch_size,) + tuple(int(d) for d in shape), jnp.float32)


# ---------------------------------------------------------------- builders


def _build_audio_cnn(model_config):
  variant = (f'{_require(model_config, "width")}-'
             f'{_require(model_config, "kernels")}')
  return audio.create_audio_cnn(
      variant, dropout=model_config.get('dropout'), dtype=_dtype(model_config),
      conv_layout=_optional(model_config, 'conv_layout', 'freq_channels'),
      **_head_kwargs(model_config))


def _build_msdi_audio_cnn(model_config):
  return audio.create_audio_cnn(
      'msdi', dropout=model_config.get('dropout'), dtype=_dtype(model_config),
      conv_layout=_optional(model_config, 'conv_layout', 'freq_channels'),
      **_head_kwargs(model_config))


def _build_text_mlp(model_config):
  return text.create_text_mlp(
      hidden_units=_optional(model_config, 'hidden_units',
                             text.TEXT_HIDDEN_UNITS),
      dropout=_optional(model_config, 'dropout', text.TEXT_DROPOUT),
      dtype=_dtype(model_config), **_head_kwargs(model_config))


def _build_timbre_mlp(model_config):
  return text.create_timbre_mlp(
      hidden_units=_optional(model_config, 'hidden_units',
                             text.TIMBRE_HIDDEN_UNITS),
      dropout=_optional(model_config, 'dropout', text.TIMBRE_DROPOUT),
      dtype=_dtype(model_config), **_head_kwargs(model_config))


def _build_resnet(model_config):
  # Imported here so that audio/text work never pays for the ResNet module.
  image = importlib.import_module('mmgenre_jax.models.image')
  return image.create_resnet(_require(model_config, 'depth'),
                             dtype=_dtype(model_config),
                             **_head_kwargs(model_config))


def _build_alignment(model_config):
  return alignment.AlignmentNet(
      hidden_dim=int(_optional(model_config, 'hidden_dim',
                               alignment.HIDDEN_DIM)),
      embed_dim=int(_optional(model_config, 'embed_dim', alignment.EMBED_DIM)),
      use_bias=bool(_optional(model_config, 'use_bias', alignment.USE_BIAS)))


def _build_fusion(model_config):
  return fusion.Fusion(
      modalities=fusion.ordered_modalities(
          _require(model_config, 'modalities')),
      dropout=model_config.get('dropout'), **_head_kwargs(model_config))


# ------------------------------------------------------------ dummy inputs


def _audio_inputs(model_config, batch_size):
  del model_config  # Unused: every audio CNN takes one CQT patch.
  return (_zeros(batch_size, *audio.INPUT_SHAPE),)


def _vector_inputs(model_config, batch_size):
  return (_zeros(batch_size, _require(model_config, 'input_dim')),)


def _image_inputs(model_config, batch_size):
  size = _optional(model_config, 'image_size', DEFAULT_IMAGE_SIZE)
  return (_zeros(batch_size, size, size, 3),)


def _alignment_inputs(model_config, batch_size):
  return (_zeros(batch_size, _require(model_config, 'audio_dim')),
          _zeros(batch_size, _require(model_config, 'visual_dim')))


def _fusion_inputs(model_config, batch_size):
  dims = _require(model_config, 'input_dims')
  names = fusion.ordered_modalities(_require(model_config, 'modalities'))
  missing = [m for m in names if m not in dims]
  if missing:
    raise KeyError(
        f'config.model.input_dims lacks {missing} (has {sorted(dims)}); give '
        'the representation size of every fused modality.')
  return ({m: _zeros(batch_size, dims[m]) for m in names},)


class _Entry(NamedTuple):
  build: Callable[[ml_collections.ConfigDict], nn.Module]
  inputs: Callable[[ml_collections.ConfigDict, int], Tuple[Any, ...]]


# config.model.name -> how to build the module and what it takes as input.
_REGISTRY = {
    'audio_cnn': _Entry(_build_audio_cnn, _audio_inputs),
    'msdi_audio_cnn': _Entry(_build_msdi_audio_cnn, _audio_inputs),
    'text_mlp': _Entry(_build_text_mlp, _vector_inputs),
    'timbre_mlp': _Entry(_build_timbre_mlp, _vector_inputs),
    'resnet': _Entry(_build_resnet, _image_inputs),
    'alignment': _Entry(_build_alignment, _alignment_inputs),
    'fusion': _Entry(_build_fusion, _fusion_inputs),
}
MODEL_NAMES = tuple(_REGISTRY)


def _entry(model_config: ml_collections.ConfigDict) -> _Entry:
  name = model_config.get('name')
  if name not in _REGISTRY:
    raise ValueError(
        f'Unknown config.model.name {name!r}; use one of {MODEL_NAMES}.')
  return _REGISTRY[name]


def create_model(model_config: ml_collections.ConfigDict) -> nn.Module:
  """Builds the network that config.model describes.

  Args:
    model_config: config.model; `name` picks the network (MODEL_NAMES), the
      other fields are those its builder reads (configs/default.py).

  Returns:
    An unbound Flax Linen module.
  """
  return _entry(model_config).build(model_config)


def dummy_inputs(model_config: ml_collections.ConfigDict,
                 batch_size: int = 1) -> Tuple[Any, ...]:
  """Zero inputs of the right shapes for `model.init` or `jax.eval_shape`.

  Args:
    model_config: config.model.
    batch_size: B.

  Returns:
    A tuple of positional arguments: (patches [B, 322, 96, 1],) for the
    audio CNNs, (x [B, input_dim],) for the MLPs, (images [B, S, S, 3],) for
    ResNet, (audio [B, Da], visual [B, Dv]) for alignment and
    ({modality: [B, D_m]},) for fusion.
  """
  return _entry(model_config).inputs(model_config, batch_size)

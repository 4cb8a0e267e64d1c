"""What each network of the paper is: the ONE registry of config.model.name.

Per network: how to build its Linen module, what it reads (shard modality and
batch key, or extracted representations), which representations it writes
and their size, its label in the report, and what tagging feeds it. Data
sources, training, pipelines, the report and tagging all ask this registry;
adding a network means adding one entry here (docs/architecture.md).

No JAX or Flax at import: configs and pipeline specs read sizes and names
from here; a network's module is imported only when it is built.

  net = registry.network(config.model)        # or registry.NETWORKS['fusion']
  net.representations(config.model)           # ('audio',)
  model = registry.create_model(config.model)
"""

import dataclasses
import importlib
from typing import Any, Callable, Dict, Optional, Tuple

import ml_collections

from mmgenre_jax.models import specs

ModelConfig = ml_collections.ConfigDict

# Batch keys of representation inputs: INPUT_PREFIX + the input's name.
INPUT_PREFIX = 'input/'
# Representations of the two towers of an alignment stage (Sec 3.4), and the
# config.data.inputs name of its audio tower (the other one feeds the visual
# tower).
ALIGNMENT_OUTPUTS = {'audio': 'mm_audio', 'visual': 'mm_visual'}
ALIGNMENT_AUDIO_INPUT = 'audio'
# The config.data.inputs names a pipeline gives an alignment stage.
ALIGNMENT_INPUTS = ('audio', 'image')
# The raw inputs tagging reads: audio files, reviews ('text'), a cover.
INPUT_MODALITIES = ('audio', 'text', 'image')


def require(model_config: ModelConfig, field: str) -> Any:
  """Returns a required config.model field, or a KeyError saying where to set it."""
  value = model_config.get(field)
  if value is None:
    raise KeyError(
        f'config.model.{field} is required for model '
        f'{model_config.get("name")!r}; set it in the experiment config or '
        f'with --config.model.{field}=...')
  return value


def optional(model_config: ModelConfig, field: str, default: Any) -> Any:
  """Returns a config.model field, or `default` where it is missing or None."""
  value = model_config.get(field)
  return default if value is None else value


@dataclasses.dataclass(frozen=True)
class Network:
  """One network kind (a value of config.model.name).

  Attributes:
    name: config.model.name.
    kind: what the network is to tagging and the report: 'audio', 'text',
      'image' (a modality network, fed raw input of that modality),
      'alignment' or 'fusion' (fed other stages' representations).
    build: config.model -> unbound Linen module (imports Flax when called).
    dummy_inputs: (config.model, B) -> positional args of model.init.
    representations: config.model -> the representation names it writes.
    representation_size: config.model -> R of what it writes.
    settings: config.model -> the report's settings label (Table 6/2).
    shard_input: (shard modality, batch key) of a network trained on
      prepared shards, or None.
    reads_representations: trained on other stages' extracted
      representations (config.data.inputs) instead of shards.
    taggable: whether tagging can feed it raw inputs.
  """
  name: str
  kind: str
  build: Callable[[ModelConfig], Any]
  dummy_inputs: Callable[[ModelConfig, int], Tuple[Any, ...]]
  representations: Callable[[ModelConfig], Tuple[str, ...]]
  representation_size: Callable[[ModelConfig], int]
  settings: Callable[[ModelConfig], str]
  shard_input: Optional[Tuple[str, str]] = None
  reads_representations: bool = False
  taggable: bool = True


# ---------------------------------------------------------------- builders


def _module(name: str):
  # Imported when a network is built, so that reading the registry (configs,
  # the report) never loads Flax.
  return importlib.import_module(f'mmgenre_jax.models.{name}')


def _dtype(model_config: ModelConfig) -> Any:
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp.dtype(optional(model_config, 'dtype', 'float32'))


def _head_kwargs(model_config: ModelConfig) -> Dict[str, Any]:
  return dict(num_outputs=int(require(model_config, 'num_outputs')),
              target=require(model_config, 'target'))


def _audio_variant(model_config: ModelConfig) -> str:
  if model_config.name == 'msdi_audio_cnn':
    return 'msdi'
  return f'{require(model_config, "width")}-{require(model_config, "kernels")}'


def _build_audio_cnn(model_config):
  return _module('audio').create_audio_cnn(
      _audio_variant(model_config), dropout=model_config.get('dropout'),
      dtype=_dtype(model_config),
      conv_layout=optional(model_config, 'conv_layout', 'freq_channels'),
      **_head_kwargs(model_config))


def _mlp_defaults(model_config: ModelConfig):
  if model_config.name == 'text_mlp':
    return specs.TEXT_HIDDEN_UNITS, specs.TEXT_DROPOUT
  return specs.TIMBRE_HIDDEN_UNITS, specs.TIMBRE_DROPOUT


def _build_mlp(model_config):
  hidden, dropout = _mlp_defaults(model_config)
  text = _module('text')
  create = (text.create_text_mlp if model_config.name == 'text_mlp'
            else text.create_timbre_mlp)
  return create(hidden_units=optional(model_config, 'hidden_units', hidden),
                dropout=optional(model_config, 'dropout', dropout),
                dtype=_dtype(model_config), **_head_kwargs(model_config))


def _build_resnet(model_config):
  return _module('image').create_resnet(
      require(model_config, 'depth'), dtype=_dtype(model_config),
      **_head_kwargs(model_config))


def _build_alignment(model_config):
  return _module('alignment').AlignmentNet(
      hidden_dim=int(optional(model_config, 'hidden_dim', specs.HIDDEN_DIM)),
      embed_dim=int(optional(model_config, 'embed_dim', specs.EMBED_DIM)),
      use_bias=bool(optional(model_config, 'use_bias', specs.USE_BIAS)))


def _build_fusion(model_config):
  return _module('fusion').Fusion(
      modalities=specs.ordered_modalities(require(model_config, 'modalities')),
      dropout=model_config.get('dropout'), **_head_kwargs(model_config))


# ------------------------------------------------------------ dummy inputs


def _zeros(batch_size: int, *shape: int):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp.zeros((batch_size,) + tuple(int(d) for d in shape), jnp.float32)


def _audio_inputs(model_config, batch_size):
  del model_config  # Unused: every audio CNN takes one CQT patch.
  return (_zeros(batch_size, *specs.INPUT_SHAPE),)


def _vector_inputs(model_config, batch_size):
  return (_zeros(batch_size, require(model_config, 'input_dim')),)


def _image_inputs(model_config, batch_size):
  size = optional(model_config, 'image_size', specs.DEFAULT_IMAGE_SIZE)
  return (_zeros(batch_size, size, size, 3),)


def _alignment_inputs(model_config, batch_size):
  return (_zeros(batch_size, require(model_config, 'audio_dim')),
          _zeros(batch_size, require(model_config, 'visual_dim')))


def _fusion_inputs(model_config, batch_size):
  dims = require(model_config, 'input_dims')
  names = specs.ordered_modalities(require(model_config, 'modalities'))
  missing = [m for m in names if m not in dims]
  if missing:
    raise KeyError(
        f'config.model.input_dims lacks {missing} (has {sorted(dims)}); give '
        'the representation size of every fused modality.')
  return ({m: _zeros(batch_size, dims[m]) for m in names},)


# ------------------------------------------------------- representation sizes


def _mlp_size(model_config):
  hidden, _ = _mlp_defaults(model_config)
  hidden = model_config.get('hidden_units') or hidden
  return specs.mlp_representation_size(hidden, model_config.get('input_dim'))


def _fusion_size(model_config):
  dims = require(model_config, 'input_dims')
  return sum(int(dims[m]) for m in
             specs.ordered_modalities(require(model_config, 'modalities')))


def _fusion_settings(model_config):
  del model_config  # Unused: Table 2 and Table 6 call every fusion 'mlp'.
  return 'mlp'


def _constant(value):
  return lambda model_config: value


def _audio_network(name: str, settings) -> Network:
  return Network(
      name=name, kind='audio', build=_build_audio_cnn,
      dummy_inputs=_audio_inputs, representations=_constant(('audio',)),
      representation_size=lambda m: specs.audio_representation_size(
          _audio_variant(m)),
      settings=settings, shard_input=('audio', 'patch'))


_NETWORK_LIST = (
    # MuMu audio CNNs (Sec 7.3.1, Table 5): '<width>-<kernels>' in Table 6.
    _audio_network('audio_cnn', _audio_variant),
    # The MSD-I audio CNN (Sec 6.2): 'cnn' in Table 2.
    _audio_network('msdi_audio_cnn', _constant('cnn')),
    # TEXT (Sec 3.3): 'vsm', or 'vsm+sem' when the shards' reviews were
    # enriched (a property of the shards: describe_stage reads the manifest).
    Network(name='text_mlp', kind='text', build=_build_mlp,
            dummy_inputs=_vector_inputs, representations=_constant(('text',)),
            representation_size=_mlp_size, settings=_constant('vsm'),
            shard_input=('text', 'tfidf')),
    # TIMBRE-MLP (Sec 7.3.1): an audio baseline on the 48 MSD timbre
    # statistics per track, which neither the MuMu release nor `mmgenre
    # prepare` provides: it builds, but has no data source and no tagging.
    Network(name='timbre_mlp', kind='audio', build=_build_mlp,
            dummy_inputs=_vector_inputs,
            representations=_constant(('audio',)),
            representation_size=_mlp_size, settings=_constant('timbre-mlp'),
            taggable=False),
    # IMAGE (Sec 3.2): 'resnet-<depth>'.
    Network(name='resnet', kind='image', build=_build_resnet,
            dummy_inputs=_image_inputs,
            representations=_constant(('image',)),
            representation_size=lambda m: specs.resnet_representation_size(
                require(m, 'depth')),
            settings=lambda m: f'resnet-{m.depth}',
            shard_input=('image', 'image')),
    # The multimodal space (Sec 3.4): two towers, MM_AUDIO / MM_VISUAL.
    Network(name='alignment', kind='alignment', build=_build_alignment,
            dummy_inputs=_alignment_inputs,
            representations=_constant(tuple(ALIGNMENT_OUTPUTS.values())),
            representation_size=lambda m: int(
                optional(m, 'embed_dim', specs.EMBED_DIM)),
            settings=_constant('alignment'), reads_representations=True),
    # Late fusion (Sec 4): 'mlp'.
    Network(name='fusion', kind='fusion', build=_build_fusion,
            dummy_inputs=_fusion_inputs,
            representations=_constant(('fusion',)),
            representation_size=_fusion_size, settings=_fusion_settings,
            reads_representations=True),
)
NETWORKS: Dict[str, Network] = {n.name: n for n in _NETWORK_LIST}
MODEL_NAMES = tuple(NETWORKS)


def network(model_config_or_name) -> Network:
  """The registry entry of config.model (or of a config.model.name)."""
  name = (model_config_or_name if isinstance(model_config_or_name, str)
          else model_config_or_name.get('name'))
  if name not in NETWORKS:
    raise ValueError(
        f'Unknown config.model.name {name!r}; use one of {MODEL_NAMES}.')
  return NETWORKS[name]


def create_model(model_config: ModelConfig):
  """Builds the network that config.model describes.

  Args:
    model_config: config.model; `name` picks the network (MODEL_NAMES), the
      other fields are those its builder reads (configs/default.py).

  Returns:
    An unbound Flax Linen module.
  """
  return network(model_config).build(model_config)


def dummy_inputs(model_config: ModelConfig,
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
  return network(model_config).dummy_inputs(model_config, batch_size)


def alignment_input_names(config: ml_collections.ConfigDict
                          ) -> Tuple[str, str]:
  """(audio input, visual input) names of an alignment stage's data.inputs."""
  names = list(config.data.get('inputs') or {})
  if len(names) != 2 or ALIGNMENT_AUDIO_INPUT not in names:
    raise ValueError(
        f'config.data.inputs={names} for model alignment: give exactly two '
        f'inputs, {ALIGNMENT_AUDIO_INPUT!r} (the audio tower) and the visual '
        "one (e.g. 'image'), each mapped to the stage workdir that extracted "
        'it.')
  return (ALIGNMENT_AUDIO_INPUT,
          next(n for n in names if n != ALIGNMENT_AUDIO_INPUT))


def input_names(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """The representation names a representation-input network reads, in order.

  Fusion: config.model.modalities in specs.MODALITY_ORDER; alignment: (audio
  input, visual input).
  """
  if config.model.name == 'alignment':
    return alignment_input_names(config)
  return specs.ordered_modalities(config.model.modalities)


def input_keys(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """Batch keys fed to the network, in its positional-argument order."""
  net = network(config.model)
  if net.reads_representations:
    return tuple(INPUT_PREFIX + n for n in input_names(config))
  return (shard_input(config)[1],)


def shard_input(config: ml_collections.ConfigDict) -> Tuple[str, str]:
  """(modality, batch key) of the shard network named by config.model.name."""
  net = network(config.model)
  if net.shard_input is None:
    trainable = [n.name for n in _NETWORK_LIST if n.shard_input]
    readers = [n.name for n in _NETWORK_LIST if n.reads_representations]
    raise ValueError(
        f'config.model.name={net.name!r} does not train on shards; use one '
        f'of {sorted(trainable)}, or {tuple(readers)} with '
        'config.data.inputs.')
  return net.shard_input


def model_args(batch, keys: Tuple[str, ...],
               model_name: str) -> Tuple[Any, ...]:
  """The positional arguments of model.apply for a batch."""
  if model_name == 'fusion':
    return ({k[len(INPUT_PREFIX):]: batch[k] for k in keys},)
  return tuple(batch[k] for k in keys)


def input_dim_fields(config: ml_collections.ConfigDict,
                     sizes: Dict[str, int]) -> Dict[str, Any]:
  """config.model fields that give a representation-input network its sizes.

  The one place that says where fusion and alignment keep their input sizes:
  pipelines (from the input stages' networks or extracted files) and
  training (from the joined representations) both apply what this returns.

  Args:
    config: a fusion or alignment experiment config (data.inputs set for
      alignment).
    sizes: input name -> R, for every input the network reads.

  Returns:
    {'model.input_dims': {modality: R}} (fusion) or {'model.audio_dim': Ra,
    'model.visual_dim': Rv} (alignment), as dotted override keys.
  """
  if config.model.name == 'alignment':
    names = list(sizes)
    audio = ALIGNMENT_AUDIO_INPUT
    visual = next(n for n in names if n != audio)
    return {'model.audio_dim': int(sizes[audio]),
            'model.visual_dim': int(sizes[visual])}
  return {'model.input_dims': {m: int(sizes[m]) for m in
                               specs.ordered_modalities(
                                   config.model.modalities) if m in sizes}}

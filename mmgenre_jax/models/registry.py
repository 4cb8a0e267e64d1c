"""What each network of the paper is: the ONE registry of config.model.name.

Per network: how to build its Linen module, what it reads (shard modality and
batch key, or extracted representations), which sizes its data decides, which
representations it writes and their size, its label in the report, what
tagging feeds it, and the task it trains for (mmgenre_jax/tasks/: label
prediction or alignment). Data sources, training, pipelines, the report and
tagging all ask this registry; adding a network means adding one entry here
(docs/architecture.md).

No JAX or Flax at import: configs and pipeline specs read sizes and names
from here; a network's module is imported only when it is built.

  net = registry.network(config.model)        # or registry.NETWORKS['fusion']
  net.representations(config.model)           # ('audio',)
  model = registry.create_model(config.model, facts)   # data/facts.py
"""

import dataclasses
import importlib
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import ml_collections

from mmgenre_jax.core import targets
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
# (modality, batch key) of the text network's shards: the tf-idf vectors of
# the reviews, enriched or not (VSM, VSM+SEM: a property of the shards).
TEXT_SHARD_INPUT = ('text', 'tfidf')
# The raw inputs tagging reads: audio files, reviews ('text'), a cover.
INPUT_MODALITIES = ('audio', 'text', 'image')
# The tasks a network trains for (Network.task; mmgenre_jax/tasks/).
LABEL_PREDICTION = 'label_prediction'
ALIGNMENT = 'alignment'


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


def _positional_args(batch, keys: Tuple[str, ...]) -> Tuple[Any, ...]:
  return tuple(batch[k] for k in keys)


def _no_data_fields(model_config: ModelConfig, facts) -> Dict[str, Any]:
  del model_config, facts  # Unused: the config alone sizes the network.
  return {}


@dataclasses.dataclass(frozen=True)
class Network:
  """One network kind (a value of config.model.name).

  Attributes:
    name: config.model.name.
    kind: what the network is to tagging and the report: 'audio', 'text',
      'image' (a modality network, fed raw input of that modality),
      'alignment' or 'fusion' (fed other stages' representations).
    task: the task it trains for, a name of mmgenre_jax.tasks
      (LABEL_PREDICTION or ALIGNMENT): its steps, split evaluation and
      extraction.
    build: config.model -> unbound Linen module (imports Flax when called).
    dummy_inputs: (config.model, B) -> positional args of model.init.
    representations: config.model -> the representation names it writes.
    representation_size: config.model -> R of what it writes.
    settings: config.model -> the report's settings label (Table 6/2).
    shard_input: (shard modality, batch key) of a network trained on
      prepared shards, or None.
    reads_representations: trained on other stages' extracted
      representations (config.data.inputs) instead of shards.
    fuses: concatenates modality representations (Sec 4): the widest such
      stage answers for a pipeline whose final stage is left out, and
      tagging prefers it for the modalities it fuses.
    taggable: whether tagging can feed it raw inputs.
    data_fields: (config.model, facts) -> the config.model fields whose
      values the data decides (data/facts.py), e.g. {'input_dim': V}.
    input_names: config -> the representation names it reads, in order
      (representation networks).
    input_dim_fields: (config.model, {input name: R}) -> the dotted
      config.model fields holding its input sizes (representation
      networks).
    node_inputs: (config.model, its input names, representation) -> the
      input names that one of its representations is computed from
      (tagging's graph).
    model_args: (batch, input keys) -> the positional args of model.apply.
    pretrained: fine-tunes ImageNet weights (config.model.pretrained).
    predicts_labels: its output layer scores labels through
      config.model.target (core/targets.py); the alignment space does not.
  """
  name: str
  kind: str
  task: str
  build: Callable[[ModelConfig], Any]
  dummy_inputs: Callable[[ModelConfig, int], Tuple[Any, ...]]
  representations: Callable[[ModelConfig], Tuple[str, ...]]
  representation_size: Callable[[ModelConfig], int]
  settings: Callable[[ModelConfig], str]
  shard_input: Optional[Tuple[str, str]] = None
  reads_representations: bool = False
  fuses: bool = False
  taggable: bool = True
  data_fields: Callable[[ModelConfig, Any], Dict[str, Any]] = _no_data_fields
  input_names: Optional[Callable[[Any], Tuple[str, ...]]] = None
  input_dim_fields: Optional[Callable[[ModelConfig, Dict[str, int]],
                                      Dict[str, Any]]] = None
  node_inputs: Optional[Callable[[ModelConfig, Sequence[str], str],
                                 Tuple[str, ...]]] = None
  model_args: Callable[..., Tuple[Any, ...]] = _positional_args
  pretrained: bool = False
  predicts_labels: bool = True


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


# ------------------------------------------------------ representation inputs


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


def _fusion_input_names(config) -> Tuple[str, ...]:
  return specs.ordered_modalities(config.model.modalities)


def _alignment_dim_fields(model_config: ModelConfig,
                          sizes: Mapping[str, int]) -> Dict[str, Any]:
  del model_config  # Unused: the towers' sizes are the inputs' sizes.
  audio = ALIGNMENT_AUDIO_INPUT
  visual = next(n for n in sizes if n != audio)
  return {'model.audio_dim': int(sizes[audio]),
          'model.visual_dim': int(sizes[visual])}


def _fusion_dim_fields(model_config: ModelConfig,
                       sizes: Mapping[str, int]) -> Dict[str, Any]:
  return {'model.input_dims': {m: int(sizes[m]) for m in
                               specs.ordered_modalities(
                                   model_config.modalities) if m in sizes}}


def _fusion_node_inputs(model_config: ModelConfig, inputs: Sequence[str],
                        representation: str) -> Tuple[str, ...]:
  del inputs, representation  # Unused: the fused vector reads every modality.
  return specs.ordered_modalities(model_config.modalities)


def _alignment_node_inputs(model_config: ModelConfig, inputs: Sequence[str],
                           representation: str) -> Tuple[str, ...]:
  """A tower reads one input: MM_AUDIO the audio one, MM_VISUAL the other
  (none when there is no other)."""
  del model_config  # Unused: the towers are named by their outputs.
  if representation == ALIGNMENT_OUTPUTS['audio']:
    return (ALIGNMENT_AUDIO_INPUT,)
  return tuple(k for k in inputs if k != ALIGNMENT_AUDIO_INPUT)[:1]


def _fusion_args(batch, keys: Tuple[str, ...]) -> Tuple[Any, ...]:
  """Fusion takes one dict {modality: [B, R]}, keyed by input name."""
  return ({k[len(INPUT_PREFIX):]: batch[k] for k in keys},)


# ----------------------------------------------------- sizes the data decides


def _outputs(model_config, facts) -> Dict[str, Any]:
  del model_config  # Unused: the facts give the output width.
  return {'num_outputs': int(facts.num_outputs)}


def _text_fields(model_config, facts) -> Dict[str, Any]:
  return {**_outputs(model_config, facts), 'input_dim': int(facts.vocab_size)}


def _image_fields(model_config, facts) -> Dict[str, Any]:
  return {**_outputs(model_config, facts),
          'image_size': int(facts.image_size)}


def _representation_fields(dim_fields):
  """data_fields of a representation network: its input sizes (+ outputs)."""

  def fields(model_config, facts) -> Dict[str, Any]:
    found = {k.split('.', 1)[1]: v for k, v in
             dim_fields(model_config, facts.input_sizes).items()}
    if facts.num_outputs is not None:
      found.update(_outputs(model_config, facts))
    return found

  return fields


def _audio_network(name: str, settings) -> Network:
  return Network(
      name=name, kind='audio', task=LABEL_PREDICTION, build=_build_audio_cnn,
      dummy_inputs=_audio_inputs, representations=_constant(('audio',)),
      representation_size=lambda m: specs.audio_representation_size(
          _audio_variant(m)),
      settings=settings, shard_input=('audio', 'patch'),
      data_fields=_outputs)


_NETWORK_LIST = (
    # MuMu audio CNNs (Sec 7.3.1, Table 5): '<width>-<kernels>' in Table 6.
    _audio_network('audio_cnn', _audio_variant),
    # The MSD-I audio CNN (Sec 6.2): 'cnn' in Table 2.
    _audio_network('msdi_audio_cnn', _constant('cnn')),
    # TEXT (Sec 3.3): 'vsm', or 'vsm+sem' when the shards' reviews were
    # enriched (a property of the shards: describe_stage reads the manifest).
    Network(name='text_mlp', kind='text', task=LABEL_PREDICTION,
            build=_build_mlp, dummy_inputs=_vector_inputs,
            representations=_constant(('text',)),
            representation_size=_mlp_size, settings=_constant('vsm'),
            shard_input=TEXT_SHARD_INPUT, data_fields=_text_fields),
    # TIMBRE-MLP (Sec 7.3.1): an audio baseline on the 48 MSD timbre
    # statistics per track, which neither the MuMu release nor `mmgenre
    # prepare` provides: it builds, but has no data source and no tagging.
    Network(name='timbre_mlp', kind='audio', task=LABEL_PREDICTION,
            build=_build_mlp, dummy_inputs=_vector_inputs,
            representations=_constant(('audio',)),
            representation_size=_mlp_size, settings=_constant('timbre-mlp'),
            taggable=False, data_fields=_outputs),
    # IMAGE (Sec 3.2): 'resnet-<depth>'.
    Network(name='resnet', kind='image', task=LABEL_PREDICTION,
            build=_build_resnet, dummy_inputs=_image_inputs,
            representations=_constant(('image',)),
            representation_size=lambda m: specs.resnet_representation_size(
                require(m, 'depth')),
            settings=lambda m: f'resnet-{m.depth}',
            shard_input=('image', 'image'), data_fields=_image_fields,
            pretrained=True),
    # The multimodal space (Sec 3.4): two towers, MM_AUDIO / MM_VISUAL.
    Network(name='alignment', kind='alignment', task=ALIGNMENT,
            build=_build_alignment, dummy_inputs=_alignment_inputs,
            representations=_constant(tuple(ALIGNMENT_OUTPUTS.values())),
            representation_size=lambda m: int(
                optional(m, 'embed_dim', specs.EMBED_DIM)),
            settings=_constant('alignment'), reads_representations=True,
            predicts_labels=False,
            data_fields=_representation_fields(_alignment_dim_fields),
            input_names=alignment_input_names,
            input_dim_fields=_alignment_dim_fields,
            node_inputs=_alignment_node_inputs),
    # Late fusion (Sec 4): 'mlp'.
    Network(name='fusion', kind='fusion', task=LABEL_PREDICTION,
            build=_build_fusion, dummy_inputs=_fusion_inputs,
            representations=_constant(('fusion',)),
            representation_size=_fusion_size, settings=_fusion_settings,
            reads_representations=True, fuses=True,
            data_fields=_representation_fields(_fusion_dim_fields),
            input_names=_fusion_input_names,
            input_dim_fields=_fusion_dim_fields,
            node_inputs=_fusion_node_inputs, model_args=_fusion_args),
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


def target(model_config: ModelConfig) -> Optional[targets.Target]:
  """The output configuration of config.model, None for the alignment space."""
  if not network(model_config).predicts_labels:
    return None
  return targets.get(require(model_config, 'target'))


def sized(model_config: ModelConfig, facts=None) -> ModelConfig:
  """config.model with the sizes its data decided (data/facts.py).

  Args:
    model_config: config.model, as the user gave it (left unchanged).
    facts: the stage's DataFacts, or None: the config's own sizes (a
      summary without data, a workdir from before data_facts.json).

  Returns:
    `model_config` itself without facts (or nothing to set), else a copy
    with Network.data_fields set: the output width, the tf-idf vocabulary,
    the crop size, the input representation sizes.
  """
  if facts is None:
    return model_config
  fields = network(model_config).data_fields(model_config, facts)
  if not fields:
    return model_config
  result = ml_collections.ConfigDict(model_config.to_dict())
  for field, value in fields.items():
    if isinstance(value, Mapping):
      if field in result:
        del result[field]
      value = ml_collections.ConfigDict(dict(value))
    result[field] = value
  return result


def create_model(model_config: ModelConfig, facts=None):
  """Builds the network that config.model describes, sized by its data.

  Args:
    model_config: config.model; `name` picks the network (MODEL_NAMES), the
      other fields are those its builder reads (configs/default.py).
    facts: the stage's DataFacts (sized()); None: the config's sizes.

  Returns:
    An unbound Flax Linen module.
  """
  model_config = sized(model_config, facts)
  return network(model_config).build(model_config)


def dummy_inputs(model_config: ModelConfig, batch_size: int = 1,
                 facts=None) -> Tuple[Any, ...]:
  """Zero inputs of the right shapes for `model.init` or `jax.eval_shape`.

  Args:
    model_config: config.model.
    batch_size: B.
    facts: the stage's DataFacts (sized()); None: the config's sizes.

  Returns:
    A tuple of positional arguments: (patches [B, 322, 96, 1],) for the
    audio CNNs, (x [B, input_dim],) for the MLPs, (images [B, S, S, 3],) for
    ResNet, (audio [B, Da], visual [B, Dv]) for alignment and
    ({modality: [B, D_m]},) for fusion.
  """
  model_config = sized(model_config, facts)
  return network(model_config).dummy_inputs(model_config, batch_size)


def input_names(config: ml_collections.ConfigDict) -> Tuple[str, ...]:
  """The representation names a representation-input network reads, in order.

  Fusion: config.model.modalities in specs.MODALITY_ORDER; alignment: (audio
  input, visual input).
  """
  return network(config.model).input_names(config)


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


def input_dim_fields(config: ml_collections.ConfigDict,
                     sizes: Dict[str, int]) -> Dict[str, Any]:
  """config.model fields that give a representation-input network its sizes.

  The one place that says where fusion and alignment keep their input sizes:
  pipeline configs (from the input stages' networks) and the data facts
  (from the extracted representations) both go through it.

  Args:
    config: a fusion or alignment experiment config (data.inputs set for
      alignment).
    sizes: input name -> R, for every input the network reads.

  Returns:
    {'model.input_dims': {modality: R}} (fusion) or {'model.audio_dim': Ra,
    'model.visual_dim': Rv} (alignment), as dotted override keys.
  """
  return network(config.model).input_dim_fields(config.model, sizes)

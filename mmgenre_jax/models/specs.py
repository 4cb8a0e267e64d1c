"""The paper's networks as plain data: every architecture number in one place.

Shapes, widths, kernels, pools, dropouts and embedding sizes of the audio
CNNs (Sec 3.1, 6.2, 7.3.1), the text and timbre MLPs (Sec 3.3, 7.3.1), the
ResNets (Sec 3.2), the alignment space (Sec 3.4) and the fusion network
(Sec 4, 7.4), with the arithmetic that derives representation sizes from
them. No JAX or Flax at import: the experiment configs and the model
registry read these numbers without loading a framework; the Linen modules
(audio.py, text.py, ...) build their layers from them.

  specs.audio_representation_size('high-4x70')   # 4096
  specs.resnet_representation_size(101)          # 2048
"""

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple, Union

Pair = Tuple[int, int]

# ------------------------------------------------------------- audio CNNs

# One CQT patch (Sec 3.1): int(15 s * 22050 Hz / 1024 hop) = 322
# frames x 96 bins (8 octaves of 12 bins), one channel.
INPUT_SHAPE = (322, 96, 1)

@dataclasses.dataclass(frozen=True)
class AudioCNNSpec:
  """One row of AUDIO_CNN_TABLE.

  Attributes:
    kernels: conv kernel (time, freq) per block.
    filters: output channels per block.
    pools: max-pool window = stride (time, freq) per block; None for no pool.
    dropout: target -> dropout rate after each block; a target not named
      gets no dropout.
  """
  kernels: Tuple[Pair, ...]
  filters: Tuple[int, ...]
  pools: Tuple[Optional[Pair], ...]
  dropout: Mapping[str, float]


# Every architecture number of the audio CNNs, one row per network. MuMu rows
# ('<width>-<kernels>'): paper Sec 7.3.1 and Table 5 (filter and max-pool
# sizes); LOW = 64,128,128,64 and HIGH = 256,512,1024,1024 filters; "dropout
# regularization only helps in the HIGH plus COSINE configurations ... a factor
# of 0.5", none in the others. 'msdi' row: Sec 6.2 (64,128,256 filters, 4-frame
# time convolutions, time pools 4,4,2, "dropout of 0.5 is applied to all
# layers", flatten 2048).
AUDIO_CNN_TABLE = {
    'low-3x3': AudioCNNSpec(
        kernels=((3, 3), (3, 3), (3, 3), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 2), (4, 2), (4, 1), (4, 5)),
        dropout={}),
    'high-3x3': AudioCNNSpec(
        kernels=((3, 3), (3, 3), (3, 3), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 2), (4, 2), (4, 1), (4, 5)),
        dropout={'cosine': 0.5}),
    'low-4x96': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 1), (4, 1), (4, 1), None),
        dropout={}),
    'high-4x96': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 1), (4, 1), (4, 1), None),
        dropout={'cosine': 0.5}),
    'low-4x70': AudioCNNSpec(
        kernels=((4, 70), (4, 6), (4, 1), (1, 1)),
        filters=(64, 128, 128, 64),
        pools=((4, 4), (4, 1), (4, 1), None),
        dropout={}),
    'high-4x70': AudioCNNSpec(
        kernels=((4, 70), (4, 6), (4, 1), (1, 1)),
        filters=(256, 512, 1024, 1024),
        pools=((4, 4), (4, 1), (4, 1), None),
        dropout={'cosine': 0.5}),
    'msdi': AudioCNNSpec(
        kernels=((4, 96), (4, 1), (4, 1)),
        filters=(64, 128, 256),
        pools=((4, 1), (4, 1), (2, 1)),
        dropout={'softmax': 0.5, 'logistic': 0.5, 'cosine': 0.5}),
}

# The MuMu variants are AUDIO_CNN_TABLE['<width>-<kernels>'].
WIDTHS = ('low', 'high')
KERNEL_FAMILIES = ('3x3', '4x96', '4x70')


def get_audio_spec(variant: str) -> AudioCNNSpec:
  """Looks up a row of AUDIO_CNN_TABLE, with an error listing valid names."""
  if variant not in AUDIO_CNN_TABLE:
    raise ValueError(
        f'Unknown audio CNN variant {variant!r}; use one of '
        f'{sorted(AUDIO_CNN_TABLE)} (config.model.width + "-" + '
        'config.model.kernels).')
  return AUDIO_CNN_TABLE[variant]


def audio_representation_size(variant: str,
                        input_shape: Sequence[int] = INPUT_SHAPE) -> int:
  """Flattened feature size R of a table network, by valid-padding arithmetic.

  Args:
    variant: a key of AUDIO_CNN_TABLE.
    input_shape: (time, freq, channels) of one patch.

  Returns:
    R, e.g. 4096 for 'high-4x70' (322x96 -> 319x27 -> 79x6 -> 76x1 -> 19 ->
    16 -> 4 -> 4 frames x 1024 channels).
  """
  spec = get_audio_spec(variant)
  time, freq = int(input_shape[0]), int(input_shape[1])
  for kernel, pool in zip(spec.kernels, spec.pools):
    time, freq = time - kernel[0] + 1, freq - kernel[1] + 1
    if pool is not None:
      time, freq = time // pool[0], freq // pool[1]
    if time < 1 or freq < 1:
      raise ValueError(
          f'Input {tuple(input_shape)} is too small for audio CNN {variant!r}.')
  return time * freq * spec.filters[-1]



# ------------------------------------------------------------------- MLPs

# Sec 3.3: "two dense layers of 2048 neurons and a ReLU after each layer ...
# Dropout with a factor of 0.5 is applied after the input and each one of the
# dense layers."
TEXT_HIDDEN_UNITS = (2048, 2048)
TEXT_DROPOUT = 0.5

# Sec 7.3.1 + Sec 4 (see the module docstring): no hidden layer. The fusion
# network's LOGISTIC configuration has no dropout (Sec 7.4), nor does this.
TIMBRE_HIDDEN_UNITS = ()
TIMBRE_DROPOUT = 0.0



def mlp_representation_size(hidden_units: Sequence[int], input_dim: int) -> int:
  """R of an MLP: its last hidden layer, or its input without hidden layers."""
  return int(hidden_units[-1]) if hidden_units else int(input_dim)


# ---------------------------------------------------------------- ResNets

# Output channels of the stem and first stage (torchvision's "inplanes").
BASE_FILTERS = 64
# Channel expansion of a block's output.
BLOCK_EXPANSION = {'basic': 1, 'bottleneck': 4}
# ResNet input when config.model.image_size is unset (the centre crop of
# docs/fidelity.md, the image recipe).
DEFAULT_IMAGE_SIZE = 224
# The training augmentation of the covers (Sec 3.2: "the original ResNet"
# (fb.resnet.torch) with the scaling and aspect-ratio augmentation of Szegedy et
# al. 2015 and the photometric distortions of Howard 2013): that code's
# random-resized crop (area fraction, aspect ratio), colour jitter (brightness,
# contrast, saturation strengths), PCA lighting noise (std) and horizontal
# flips. The fields of input_pipeline.records.augment.ImageAugment, whose
# defaults are the same numbers; configs/default.py copies them into
# config.data.image_augment.
IMAGE_AUGMENT = {'crop_area': (0.08, 1.0), 'crop_aspect': (3 / 4, 4 / 3),
                 'brightness': 0.4, 'contrast': 0.4, 'saturation': 0.4,
                 'lighting': 0.1, 'flip': True}
# Depths with ImageNet weights in torchvision: at these the image stage
# fine-tunes (config.model.pretrained) unless config.model.from_scratch.
TORCHVISION_DEPTHS = (18, 34, 50, 101)


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
  """One row of RESNET_TABLE.

  Attributes:
    stage_sizes: blocks per stage.
    block: 'basic' (two 3x3 convs) or 'bottleneck' (1x1-3x3-1x1, 4x wider
      output).
    num_filters: channels of the stem and first stage.
  """
  stage_sizes: Tuple[int, ...]
  block: str
  num_filters: int = BASE_FILTERS


# He et al. (2016) Table 1; 101 is the paper's network (Sec 3.2), the smaller
# ones serve CPU runs.
RESNET_TABLE = {
    18: ResNetSpec((2, 2, 2, 2), 'basic'),
    34: ResNetSpec((3, 4, 6, 3), 'basic'),
    50: ResNetSpec((3, 4, 6, 3), 'bottleneck'),
    101: ResNetSpec((3, 4, 23, 3), 'bottleneck'),
    # The CPU variants' network (configs/pipeline_common.CPU_IMAGE_DEPTH)
    # and the tests'. Two basic stages of 32 and 64 channels: a 64-d
    # representation, ~66 K parameters, with a projection shortcut so that
    # every torchvision key kind is exercised. 32, not 8: from scratch on the
    # embedded covers, 8/16 channels stayed at the colour-histogram
    # baseline's test ROC-AUC (BENCHMARKS.md §6).
    'tiny': ResNetSpec((1, 1), 'basic', num_filters=32),
}
DEPTHS = tuple(RESNET_TABLE)


def get_resnet_spec(depth: Union[int, str]) -> ResNetSpec:
  """Looks up a row of RESNET_TABLE; '101' and 101 are the same depth.

  Args:
    depth: 18, 34, 50, 101 (int or digit string) or 'tiny'.

  Returns:
    The ResNetSpec.

  Raises:
    ValueError: naming the bad depth and the valid ones.
  """
  key = depth
  if isinstance(depth, str) and depth.strip().isdigit():
    key = int(depth)
  if isinstance(key, bool) or key not in RESNET_TABLE:
    raise ValueError(
        f'Unknown ResNet depth {depth!r}; use one of {DEPTHS} (set '
        'config.model.depth).')
  return RESNET_TABLE[key]


def resnet_representation_size(depth: Union[int, str]) -> int:
  """R of a ResNet: the channels of the globally pooled last stage."""
  spec = get_resnet_spec(depth)
  return (spec.num_filters * 2 ** (len(spec.stage_sizes) - 1) *
          BLOCK_EXPANSION[spec.block])


# ------------------------------------------------------- alignment space

# Sec 3.4: "The resulting multimodal features from the networks e_a and e_v
# are composed of 200 dimensions each."
EMBED_DIM = 200
# The paper does not give the width of W_x1's output; we take the embedding
# width (an assumption, configurable as config.model.hidden_dim).
HIDDEN_DIM = 200
# The Sec 3.4 formulas are pure matrix products, without bias terms.
USE_BIAS = False

# The two modality names (Sec 3.4's a and v; MM_AUDIO / MM_VISUAL, Sec 6.2).
MODALITIES = ('audio', 'visual')


# Margin m of the alignment loss: paper Sec 3.4 ("We found that 0.5
# was the best performing margin setting", tried 0.1 ... 0.9).
ALIGNMENT_MARGIN = 0.5


# ------------------------------------------------------------------ fusion

# Concatenation order of the modality vectors, whichever subset is used:
# CNN audio, text MLP, ResNet image, and the two alignment-space embeddings
# (Sec 3.4, MM_AUDIO / MM_VISUAL).
MODALITY_ORDER = ('audio', 'text', 'image', 'mm_audio', 'mm_visual')

# Dropout on the concatenated input, per target: single-label softmax 0.5
# (Sec 6.2, "dropout applied after the input layer with a factor of 50%"),
# LOGISTIC none and COSINE 0.7 (Sec 7.4, "dropout of 0.7 is applied in the
# COSINE configuration").
FUSION_DROPOUT = {'softmax': 0.5, 'logistic': 0.0, 'cosine': 0.7}


def ordered_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
  """Validates modality names and sorts them into MODALITY_ORDER.

  Args:
    modalities: names, any order, each in MODALITY_ORDER.

  Returns:
    The same names in MODALITY_ORDER.

  Raises:
    ValueError: on an empty, unknown or repeated name.
  """
  if isinstance(modalities, str):
    modalities = modalities.split('+')
  unknown = [m for m in modalities if m not in MODALITY_ORDER]
  if unknown or not modalities or len(set(modalities)) != len(modalities):
    raise ValueError(
        f'Bad fusion modalities {tuple(modalities)}: give one or more '
        f'distinct names from {MODALITY_ORDER} (config.model.modalities).')
  return tuple(m for m in MODALITY_ORDER if m in modalities)

"""MuMu fusion experiments of Table 6: '<modality>+...-<target>'.

  python main.py --config=configs/mumu_fusion.py:audio+text+image-cosine \
      --workdir=runs/mumu_fusion_ati_cosine

Modalities are any of audio, text, image, mm_audio, mm_visual (joined by
'+', concatenated in that order whatever order is given); target is logistic
or cosine. The inputs are the representations extracted from the best network
of each modality (Sec 7.4: AUDIO COSINE HIGH-4x70, TEXT COSINE VSM+SEM,
IMAGE LOGISTIC ResNet).
"""

from typing import Optional

import ml_collections

from configs import default as default_lib
from mmgenre_jax.models import specs

TARGETS = ('logistic', 'cosine')
# Table 6's A + T + I rows.
DEFAULT_ARG = 'audio+text+image-cosine'

# Representation size of each modality's network: the AUDIO HIGH-4x70
# flatten, the text MLP's last hidden layer, ResNet-101's pooled features
# (2048, Sec 6.2 CNN_VISUAL) and the alignment embeddings (Sec 3.4).
INPUT_DIMS = {
    'audio': specs.audio_representation_size('high-4x70'),
    'text': specs.TEXT_HIDDEN_UNITS[-1],
    'image': specs.resnet_representation_size(101),
    'mm_audio': specs.EMBED_DIM,
    'mm_visual': specs.EMBED_DIM,
}


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of one fusion network; `arg` as in the module docstring."""
  arg = (arg or DEFAULT_ARG).lower()
  names, _, target = arg.rpartition('-')
  try:
    modalities = specs.ordered_modalities(names.split('+'))
  except ValueError as e:
    raise ValueError(
        f'Bad mumu_fusion config argument {arg!r}: {e} Use e.g. '
        f'{DEFAULT_ARG}.') from e
  if target not in TARGETS:
    raise ValueError(
        f'Bad mumu_fusion config argument {arg!r}: target must be one of '
        f'{TARGETS}, e.g. {DEFAULT_ARG}.')
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  config.model.name = 'fusion'
  default_lib.set_target(config, target)
  config.model.modalities = modalities
  # Representation name -> stage workdir holding it (docs/workdirs.md §2),
  # e.g. --config.data.inputs.audio=runs/mumu_cosine/audio; filled in by the
  # pipelines.
  config.data.inputs = ml_collections.ConfigDict({m: '' for m in modalities})
  config.model.input_dims = ml_collections.ConfigDict(
      {m: INPUT_DIMS[m] for m in modalities})
  return config

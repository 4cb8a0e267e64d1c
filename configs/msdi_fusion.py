"""MSD-I fusions of Table 2: '<modality>+...' with a softmax output (Sec 4, 6).

  python main.py --config=configs/msdi_fusion.py:audio+mm_audio \
      --workdir=runs/msdi_fusion --config.data.inputs.audio=runs/msdi_audio \
      --config.data.inputs.mm_audio=runs/msdi_align

Modalities: audio (CNN_AUDIO), image (CNN_VISUAL), mm_audio, mm_visual (the
alignment space), any non-empty subset joined by '+'. Table 2's rows:
mm_audio, audio+mm_audio, mm_visual, image+mm_visual, audio+image,
mm_audio+mm_visual and audio+image+mm_audio+mm_visual (ALL). A single
modality gives the shallow softmax classifier on that representation (the
MM_AUDIO / MM_VISUAL rows).
"""

from typing import Optional

import ml_collections

from configs import default as default_lib
from configs import msdi_alignment
from configs import msdi_audio
from mmgenre_jax.models import specs

DEFAULT_ARG = 'audio+image+mm_audio+mm_visual'
MODALITIES = ('audio', 'image', 'mm_audio', 'mm_visual')
# Table 2's rows, in the table's order.
TABLE2_ROWS = ('audio', 'mm_audio', 'audio+mm_audio', 'image', 'mm_visual',
               'image+mm_visual', 'audio+image', 'mm_audio+mm_visual',
               'audio+image+mm_audio+mm_visual')
# Representation sizes of the paper's networks (fusion input dims).
INPUT_DIMS = {
    'audio': specs.audio_representation_size('msdi'),
    'image': msdi_alignment.RESNET101_FEATURES,
    'mm_audio': specs.EMBED_DIM,
    'mm_visual': specs.EMBED_DIM,
}


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of one MSD-I fusion network; `arg` as in the module docstring."""
  arg = (arg or DEFAULT_ARG).lower()
  names = arg.split('+')
  bad = [n for n in names if n not in MODALITIES]
  if bad:
    raise ValueError(
        f'Bad msdi_fusion config argument {arg!r}: {bad} not in '
        f'{MODALITIES}; join modalities with +, e.g. audio+mm_audio.')
  config = default_lib.get_config()
  config.data.dataset = 'msdi'
  config.data.num_labels = msdi_audio.NUM_GENRES
  config.data.inputs = ml_collections.ConfigDict(
      {m: '' for m in specs.ordered_modalities(names)})
  config.model.name = 'fusion'
  default_lib.set_target(config, 'softmax')
  config.model.modalities = specs.ordered_modalities(names)
  config.model.input_dims = ml_collections.ConfigDict(
      {m: INPUT_DIMS[m] for m in config.model.modalities})
  return config

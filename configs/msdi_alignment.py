"""MSD-I multimodal alignment space (Sec 3.4, 6.2): MM_AUDIO and MM_VISUAL.

  python main.py --config=configs/msdi_alignment.py --workdir=runs/msdi_align \
      --config.data.inputs.audio=runs/msdi_audio \
      --config.data.inputs.image=runs/msdi_visual

Trains the two-tower space e_a(a) = W_a2 tanh(W_a1 a), e_v(v) = W_v2 tanh(W_v1
v) on representations extracted by the audio and visual networks
(docs/workdirs.md §2) with the margin loss of mmgenre_jax/core/losses.py; its
extraction writes the mm_audio and mm_visual representations. Takes no
argument.
"""

from typing import Optional

import ml_collections

from configs import default as default_lib
from configs import msdi_audio
from mmgenre_jax.models import specs

# 2048-d pooled features of ResNet-101 (Sec 6.2 CNN_VISUAL).
RESNET101_FEATURES = specs.resnet_representation_size(101)


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the alignment space on MSD-I."""
  if arg:
    raise ValueError(
        f'configs/msdi_alignment.py takes no argument, got {arg!r}; override '
        'fields with --config.<field>=... instead.')
  config = default_lib.get_config()
  config.data.dataset = 'msdi'
  config.data.num_labels = msdi_audio.NUM_GENRES
  # Representation name -> stage workdir holding it (docs/workdirs.md §2);
  # filled in by the pipeline or on the command line. 'audio' feeds the audio
  # tower, the other input the visual one.
  config.data.inputs = ml_collections.ConfigDict({'audio': '', 'image': ''})
  config.model.name = 'alignment'
  config.model.audio_dim = specs.audio_representation_size('msdi')
  config.model.visual_dim = RESNET101_FEATURES
  config.model.hidden_dim = specs.HIDDEN_DIM
  config.model.embed_dim = specs.EMBED_DIM
  config.model.use_bias = specs.USE_BIAS
  return config

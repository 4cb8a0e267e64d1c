"""MSD-I audio network (Sec 6.2, Table 2 CNN_AUDIO): 15-genre softmax.

  python main.py --config=configs/msdi_audio.py --workdir=runs/msdi_audio \
      --config.train.seed=1
"""

from typing import Optional

import ml_collections

from configs import default as default_lib

# MSD-I: 15 single-label genres (Sec 6.1, Table 1).
NUM_GENRES = 15


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the 3-layer MSD-I audio CNN; takes no argument."""
  if arg:
    raise ValueError(
        f'configs/msdi_audio.py takes no argument, got {arg!r}; override '
        'fields with --config.<field>=... instead.')
  config = default_lib.get_config()
  config.data.dataset = 'msdi'
  config.data.num_labels = NUM_GENRES
  config.model.name = 'msdi_audio_cnn'
  default_lib.set_target(config, 'softmax')
  return config

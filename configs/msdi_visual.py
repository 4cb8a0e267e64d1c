"""MSD-I visual network (Sec 6.2, Table 2 CNN_VISUAL): ResNet, 15-genre softmax.

  python main.py --config=configs/msdi_visual.py --workdir=runs/msdi_visual
  python main.py --config=configs/msdi_visual.py:18 ...   # CPU-sized

The argument is the ResNet depth (default 101, the paper's; 18, 34, 50 or
tiny). Fine-tuned from ImageNet with --config.model.pretrained=<npz>.
"""

from typing import Optional

import ml_collections

from configs import default as default_lib
from configs import msdi_audio
from configs import mumu_image


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the cover ResNet on MSD-I; `arg` is the depth."""
  config = default_lib.get_config()
  config.data.dataset = 'msdi'
  config.data.num_labels = msdi_audio.NUM_GENRES
  depth = (mumu_image.parse_depth(arg, arg.lower()) if arg
           else mumu_image.PAPER_DEPTH)
  mumu_image.resnet_config(config, depth)
  default_lib.set_target(config, 'softmax')
  return config

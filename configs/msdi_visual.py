"""MSD-I visual network (Sec 6.2, Table 2 CNN_VISUAL): ResNet, 15-genre softmax.

  python main.py --config=configs/msdi_visual.py --workdir=runs/msdi_visual \
      --config.model.pretrained=resnet101.npz
  python main.py --config=configs/msdi_visual.py:sgd ...   # authors' SGD
  python main.py --config=configs/msdi_visual.py:18 \
      --config.model.from_scratch=True ...   # CPU-sized, no ImageNet weights

The argument is '[<depth>][-sgd]': the ResNet depth (default 101, the
paper's; 18, 34, 50 or tiny) and the recipe. By default the paper's text
(Sec 6.2: Adam, lr 1e-4, mini-batches of 50, 90 epochs, weight decay on all
weights and biases, crop and photometric augmentation; configs/mumu_image.py
has the details); '-sgd' (or 'sgd' alone) is the authors' Lua Torch recipe
(default.IMAGE_TRAINING_SGD). Fine-tuned from ImageNet with
--config.model.pretrained=<npz>; depths 18-101 refuse to start without it
unless --config.model.from_scratch=True.
"""

from typing import Optional

import ml_collections

from configs import default as default_lib
from configs import msdi_audio
from configs import mumu_image


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the cover ResNet on MSD-I; `arg` as in the module docstring."""
  arg = (arg or '').lower()
  parts, recipe = mumu_image.split_recipe(arg.split('-') if arg else [])
  if len(parts) > 1:
    raise ValueError(f'Bad msdi_visual config argument {arg!r}: use '
                     f'[<depth>][-{mumu_image.SGD_SUFFIX}], e.g. 18 or '
                     f'101-{mumu_image.SGD_SUFFIX}.')
  config = default_lib.get_config()
  config.data.dataset = 'msdi'
  config.data.num_labels = msdi_audio.NUM_GENRES
  depth = (mumu_image.parse_depth(arg, parts[0]) if parts
           else mumu_image.PAPER_DEPTH)
  mumu_image.resnet_config(config, depth, recipe)
  default_lib.set_target(config, 'softmax')
  return config

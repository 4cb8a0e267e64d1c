"""MuMu image experiment of Table 6: a cover ResNet, '<target>[-<depth>]'.

  python main.py --config=configs/mumu_image.py --workdir=runs/mumu_image
  python main.py --config=configs/mumu_image.py:logistic-18 ...   # CPU-sized

The paper fine-tunes an ImageNet ResNet-101 with a LOGISTIC output (Sec
7.3.3; COSINE is "not straightforward" from an ImageNet initialisation, so
Table 6 has only IMAGE LOGISTIC). depth is 18, 34, 50, 101 or tiny (tests).
Pretrained weights: --config.model.pretrained=<torchvision .npz>
(mmgenre_jax/models/image.py, load_torchvision_npz); empty trains from
scratch. The image size is that of the prepared shards (prepare
--image-size).
"""

from typing import Optional

import ml_collections

from configs import default as default_lib

TARGETS = ('logistic', 'cosine')
DEFAULT_ARG = 'logistic'
# Sec 6.2 / 7.3.3: ResNet-101.
PAPER_DEPTH = 101


def resnet_config(config: ml_collections.ConfigDict, depth) -> None:
  """Turns `config` into a ResNet of `depth` with the paper's training."""
  config.model.name = 'resnet'
  config.model.depth = depth
  config.model.image_size = config.data.get_ref('image_size')
  # The authors' Torch fine-tuning recipe: SGD Nesterov, lr 1e-4, batch 50,
  # weight decay 1e-4, lr x0.1 every 30 epochs, 90 epochs (SPEC §4 [code]).
  default_lib.set_image_optimizer(config)


def parse_depth(arg: str, depth: str):
  if depth == 'tiny':
    return 'tiny'
  if depth.isdigit() and int(depth) in (18, 34, 50, 101):
    return int(depth)
  raise ValueError(f'Bad config argument {arg!r}: depth {depth!r} must be '
                   '18, 34, 50, 101 or tiny.')


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the cover ResNet; `arg` as in the module docstring."""
  arg = (arg or DEFAULT_ARG).lower()
  target, _, depth = arg.partition('-')
  if target not in TARGETS:
    raise ValueError(
        f'Bad mumu_image config argument {arg!r}: use <target>[-<depth>] with '
        f'target in {TARGETS}, e.g. logistic or logistic-18.')
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  resnet_config(config, parse_depth(arg, depth) if depth else PAPER_DEPTH)
  default_lib.set_target(config, target)
  return config

"""MuMu image experiment of Table 6: a cover ResNet, '<target>[-<depth>][-sgd]'.

  python main.py --config=configs/mumu_image.py --workdir=runs/mumu_image \
      --config.model.pretrained=resnet101.npz
  python main.py --config=configs/mumu_image.py:logistic-sgd ...  # authors' SGD
  python main.py --config=configs/mumu_image.py:logistic-18 \
      --config.model.from_scratch=True ...   # CPU-sized, no ImageNet weights

The paper fine-tunes an ImageNet ResNet-101 with a LOGISTIC output (Sec
7.3.3; COSINE is "not straightforward" from an ImageNet initialisation, so
Table 6 has only IMAGE LOGISTIC). depth is 18, 34, 50, 101 or tiny (CPU runs
and tests).

Training, by default the paper's text (Sec 3.2, 6.2, 7.3.3;
default.IMAGE_TRAINING): Adam, learning rate 1e-4, mini-batches of 50, 90
epochs, weight decay (default.IMAGE_WEIGHT_DECAY) on all weights and biases,
random-resized crops of the stored covers (Szegedy et al. 2015), colour
jitter and PCA lighting noise (Howard 2013) and flips
(config.data.image_augment); evaluation, extraction and tagging take the
centre crop. The '-sgd' suffix is the authors' Lua Torch recipe
(default.IMAGE_TRAINING_SGD: SGD Nesterov 0.9, lr x0.1 every 30 epochs).

ImageNet weights: --config.model.pretrained=<torchvision .npz> (convert
them once where torch is installed: the docstring of
mmgenre_jax/models/image.py, load_torchvision_npz). At depths 18-101 the
stage refuses to start without them unless --config.model.from_scratch=True
(train_state.check_image_init); tiny always starts fresh. The crop size is
that of the prepared shards (prepare --image-size; the covers are stored at
round(size * 256 / 224)).
"""

from typing import Optional

import ml_collections

from configs import default as default_lib

TARGETS = ('logistic', 'cosine')
DEFAULT_ARG = 'logistic'
# Sec 3.2 (used in 6.2 / 7.3.3): ResNet-101.
PAPER_DEPTH = 101
# The argument suffix of the authors' SGD recipe (default.IMAGE_TRAINING_SGD).
SGD_SUFFIX = 'sgd'


def resnet_config(config: ml_collections.ConfigDict, depth,
                  recipe: str = 'adam') -> None:
  """Turns `config` into a ResNet of `depth` trained with `recipe`.

  Args:
    config: from default.get_config(), changed in place.
    depth: 18, 34, 50, 101 or 'tiny'.
    recipe: 'adam' (the paper's text) or 'sgd' (the authors' code); see
      default.set_image_optimizer.
  """
  config.model.name = 'resnet'
  config.model.depth = depth
  config.model.image_size = config.data.get_ref('image_size')
  default_lib.set_image_optimizer(config, recipe)


def parse_depth(arg: str, depth: str):
  if depth == 'tiny':
    return 'tiny'
  if depth.isdigit() and int(depth) in (18, 34, 50, 101):
    return int(depth)
  raise ValueError(f'Bad config argument {arg!r}: depth {depth!r} must be '
                   '18, 34, 50, 101 or tiny.')


def split_recipe(parts):
  """(the parts before a trailing 'sgd', 'sgd' or 'adam')."""
  parts = list(parts)
  if parts and parts[-1] == SGD_SUFFIX:
    return parts[:-1], 'sgd'
  return parts, 'adam'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the cover ResNet; `arg` as in the module docstring."""
  arg = (arg or DEFAULT_ARG).lower()
  parts, recipe = split_recipe(arg.split('-'))
  target = parts[0] if parts else ''
  if target not in TARGETS or len(parts) > 2:
    raise ValueError(
        f'Bad mumu_image config argument {arg!r}: use '
        f'<target>[-<depth>][-{SGD_SUFFIX}] with target in {TARGETS}, e.g. '
        f'logistic, logistic-18 or logistic-101-{SGD_SUFFIX}.')
  depth = parse_depth(arg, parts[1]) if len(parts) == 2 else PAPER_DEPTH
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  resnet_config(config, depth, recipe)
  default_lib.set_target(config, target)
  return config

"""MuMu audio experiments of Table 6: '<width>-<kernels>-<target>'.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/mumu_audio_high_4x70_cosine

width in {low, high}, kernels in {3x3, 4x96, 4x70}, target in {logistic,
cosine} (Sec 7.3.1). 'timbre-logistic' (or 'timbre-cosine') gives the
TIMBRE-MLP baseline on the 48-d MSD timbre statistics.
"""

from typing import Optional

import ml_collections

from configs import default as default_lib

WIDTHS = ('low', 'high')
KERNELS = ('3x3', '4x96', '4x70')
TARGETS = ('logistic', 'cosine')
# Table 6's best audio network (AUC 0.888).
DEFAULT_ARG = 'high-4x70-cosine'


def _bad_arg(arg: str) -> ValueError:
  return ValueError(
      f'Bad mumu_audio config argument {arg!r}: use <width>-<kernels>-<target> '
      f'with width in {WIDTHS}, kernels in {KERNELS}, target in {TARGETS} '
      f'(e.g. {DEFAULT_ARG}), or timbre-<target>.')


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of one MuMu audio network; `arg` as in the module docstring."""
  arg = arg or DEFAULT_ARG
  parts = arg.lower().split('-')
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  if len(parts) == 2 and parts[0] == 'timbre' and parts[1] in TARGETS:
    config.model.name = 'timbre_mlp'
    config.model.input_dim = config.data.get_ref('timbre_dim')
    # None: the paper's network (no hidden layer, specs.TIMBRE_HIDDEN_UNITS).
    config.model.hidden_units = ml_collections.FieldReference(
        None, field_type=tuple)
    target = parts[1]
  elif (len(parts) == 3 and parts[0] in WIDTHS and parts[1] in KERNELS and
        parts[2] in TARGETS):
    config.model.name = 'audio_cnn'
    config.model.width, config.model.kernels, target = parts
  else:
    raise _bad_arg(arg)
  default_lib.set_target(config, target)
  return config

"""MuMu text experiments of Table 6: the tf-idf MLP, 'logistic' or 'cosine'.

  python main.py --config=configs/mumu_text.py:cosine \
      --workdir=runs/mumu_text_cosine

Whether the reviews were semantically enriched (VSM vs VSM+SEM) is a property
of the prepared shards (config.data.shard_dir), not of the network.
"""

from typing import Optional

import ml_collections

from configs import default as default_lib

TARGETS = ('logistic', 'cosine')
# Table 6's best text network (TEXT COSINE VSM+SEM, AUC 0.917).
DEFAULT_ARG = 'cosine'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """Config of the text MLP with target `arg` ('logistic' or 'cosine')."""
  target = (arg or DEFAULT_ARG).lower()
  if target not in TARGETS:
    raise ValueError(
        f'Bad mumu_text config argument {arg!r}: use one of {TARGETS}, '
        'e.g. configs/mumu_text.py:cosine.')
  config = default_lib.get_config()
  config.data.dataset = 'mumu'
  config.model.name = 'text_mlp'
  default_lib.set_target(config, target)
  config.model.input_dim = config.data.get_ref('text_vocab_size')
  # None: the paper's two hidden layers of 2048 (specs.TEXT_HIDDEN_UNITS).
  config.model.hidden_units = ml_collections.FieldReference(
        None, field_type=tuple)
  return config

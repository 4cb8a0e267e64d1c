"""The LOGISTIC counterpart of configs/mumu_cosine.py (Table 6).

  python main.py --config=configs/mumu_logistic.py --workdir=runs/mumu_logistic
  python main.py --config=configs/mumu_logistic.py:cpu ...

Stages: audio = AUDIO LOGISTIC LOW-4x70 (the best LOGISTIC audio row of
Table 6), text = TEXT LOGISTIC, image = IMAGE LOGISTIC ResNet-101, then
LOGISTIC fusions of A+T, A+I, T+I and A+T+I (final). 'cpu' as in
configs/mumu_cosine.py (LOW-4x96 audio, the same network as its COSINE
counterpart).
"""

from typing import Optional

import ml_collections

from configs import pipeline_common

NAME = 'mumu_logistic'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """The pipeline; arg '' (paper scale) or 'cpu'."""
  variant = pipeline_common.parse_variant(arg, f'configs/{NAME}.py')
  settings = (pipeline_common.CPU_AUDIO_SETTINGS if variant == 'cpu'
              else 'low-4x70')
  return pipeline_common.mumu_pipeline(NAME, variant,
                                       audio_arg=f'{settings}-logistic',
                                       target='logistic')

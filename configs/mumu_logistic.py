"""The LOGISTIC single-modality rows of Table 6.

  python main.py --config=configs/mumu_logistic.py --workdir=runs/mumu_logistic
  python main.py --config=configs/mumu_logistic.py:cpu ...

Stages: audio = the track CNN LOW-4x70 LOGISTIC (the best LOGISTIC audio
setting of Table 6), text = TEXT LOGISTIC, and audio_album, the AUDIO
LOGISTIC row (Sec 7.3.1; the final stage). No image network and no fusions:
the paper fuses the vectors of the best network of each modality by AUC
(AUDIO COSINE, TEXT COSINE, IMAGE LOGISTIC) under both output
configurations (Sec 7.4), so the LOGISTIC fusions are stages of
configs/mumu_cosine.py, which also trains the one IMAGE LOGISTIC network.
'cpu' as in configs/mumu_cosine.py (LOW-4x96 audio, the same network as its
COSINE counterpart).
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
                                       target='logistic', fusion_targets=())

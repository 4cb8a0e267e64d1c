"""The headline pipeline: the paper's best COSINE models, fused (Table 6).

  python main.py --config=configs/mumu_cosine.py --workdir=runs/mumu_cosine
  python main.py --config=configs/mumu_cosine.py:cpu --workdir=runs/mumu_cosine

Stages (Sec 7.4): audio = AUDIO COSINE HIGH-4x70, text = TEXT COSINE (VSM+SEM
when the shards were prepared with --enrichment), image = IMAGE LOGISTIC
ResNet-101 (the best of each modality by AUC), then the fusions of A+T, A+I,
T+I and A+T+I of those same vectors, COSINE (audio_text, ...; audio_text_image
is the final stage) and LOGISTIC (audio_text_logistic, ...): the paper's
LOGISTIC and COSINE fusion rows differ only in their output layer. The
LOGISTIC single-modality networks are configs/mumu_logistic.py.

'cpu' is the CPU-sized run of ./run.sh (2 cores, minutes): LOW-4x96 audio
instead of HIGH-4x70 (pipeline_common.CPU_AUDIO_SETTINGS), a text MLP of
2 x 256 units, the tiny ResNet trained from scratch with Adam on the small
covers of the prepared shards, d = 16 label factors (the embedded corpus has
45 labels) and few epochs (pipeline_common.MUMU_CPU_OVERRIDES).
"""

from typing import Optional

import ml_collections

from configs import pipeline_common

NAME = 'mumu_cosine'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """The pipeline; arg '' (paper scale) or 'cpu'."""
  variant = pipeline_common.parse_variant(arg, f'configs/{NAME}.py')
  settings = (pipeline_common.CPU_AUDIO_SETTINGS if variant == 'cpu'
              else 'high-4x70')
  audio_arg = f'{settings}-cosine'
  return pipeline_common.mumu_pipeline(
      NAME, variant, audio_arg=audio_arg, target='cosine',
      fusion_targets=('cosine', 'logistic'))

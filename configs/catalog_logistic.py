"""The LOGISTIC counterpart of configs/catalog_cosine.py.

  python main.py --config=configs/catalog_logistic.py:cpu \
      --workdir=runs/catalog_logistic \
      --config.data.shard_dir=runs/data/catalog_shards

The stages of configs/catalog_cosine.py with LOGISTIC audio (LOW-4x70),
text and fusion networks, for sigmoid label probabilities: each fusion reads
this pipeline's own LOGISTIC vectors (a tagger of its own, not a row of the
paper's Table 6; configs/mumu_cosine.py has the paper's LOGISTIC fusions).
"""

from typing import Optional

import ml_collections

from configs import pipeline_common

NAME = 'catalog_logistic'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """The pipeline; arg '' (paper scale) or 'cpu'."""
  variant = pipeline_common.parse_variant(arg, f'configs/{NAME}.py')
  settings = (pipeline_common.CPU_AUDIO_SETTINGS if variant == 'cpu'
              else 'low-4x70')
  return pipeline_common.mumu_pipeline(
      NAME, variant, audio_arg=f'{settings}-logistic', target='logistic',
      fusion_targets=('logistic',), dataset='catalog',
      shard_dir=pipeline_common.CATALOG_SHARD_DIR)

"""The headline pipeline on your own catalog: COSINE networks, fused.

  mmgenre prepare --dataset catalog --manifest my/catalog.csv \
      --out runs/data/catalog_shards
  python main.py --config=configs/catalog_cosine.py --workdir=runs/catalog_cosine
  python main.py --config=configs/catalog_cosine.py:cpu \
      --workdir=runs/catalog_cosine \
      --config.data.shard_dir=runs/data/catalog_shards

The stages of configs/mumu_cosine.py (audio, text and image networks, the
album-level AUDIO network, the COSINE fusions of every pair and of all
three; not its LOGISTIC fusions) on a catalog's shards
(docs/data_formats.md §1.3). The pipeline adapts to the data when it runs
(definition.for_shards): the label count comes from the shards,
a modality the catalog has no column for is left out with every stage that
needs it (a catalog without reviews trains audio, image and A+I, which then
answers), and d is at most the number of labels. 'cpu' as in
configs/mumu_cosine.py.
"""

from typing import Optional

import ml_collections

from configs import pipeline_common

NAME = 'catalog_cosine'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """The pipeline; arg '' (paper scale) or 'cpu'."""
  variant = pipeline_common.parse_variant(arg, f'configs/{NAME}.py')
  settings = (pipeline_common.CPU_AUDIO_SETTINGS if variant == 'cpu'
              else 'high-4x70')
  return pipeline_common.mumu_pipeline(
      NAME, variant, audio_arg=f'{settings}-cosine', target='cosine',
      fusion_targets=('cosine',), dataset='catalog',
      shard_dir=pipeline_common.CATALOG_SHARD_DIR)

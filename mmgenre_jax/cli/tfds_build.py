"""`mmgenre tfds`: the TFDS datasets of MuMu and MSD-I (input_pipeline/tfds).

  mmgenre tfds mumu/audio mumu/audio_windows --manual-dir runs/data/synthetic \
      --data-dir runs/tfds

builds DATA_DIR/mumu/audio/1.0.0, ...: the records of `mmgenre prepare` of a
corpus (or of a prepared --out directory), as TFDS datasets that tfds.load
and the trainer (--config.data.source=tfds) read (docs/scale.md). It does
what `tfds build mumu --imports input_pipeline.tfds --config audio
--manual_dir DIR --data_dir DATA_DIR` does, without that command's own
dependencies: TFDS 4.9.10's CLI imports mlcroissant, which the project does
not install.
"""

import argparse
import os
from typing import List

from input_pipeline.tfds import reader as tfds_data
from mmgenre_jax.cli import flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('names', nargs='+', metavar='DATASET[/CONFIG]',
                      help='mumu/{audio,audio_windows,image,text} or '
                      'msdi/{audio,audio_windows,image}; a dataset alone is '
                      'all its configs.')
  parser.add_argument('--manual-dir', required=True,
                      help='The corpus directory (`mmgenre prepare --data`), '
                      'or a complete `mmgenre prepare --out` directory.')
  parser.add_argument('--data-dir', default=None,
                      help="TFDS data_dir (default: TFDS's, $TFDS_DATA_DIR "
                      'or ~/tensorflow_datasets).')
  parser.add_argument('--workers', type=int, default=None,
                      help='Processes computing audio and covers from a '
                      'corpus (default: all CPUs).')
  parser.add_argument('--beam_pipeline_options', default=None,
                      help='Compute the features of a corpus with the Beam '
                      'pipeline of `mmgenre prepare --beam_pipeline_options` '
                      '(e.g. runner=DirectRunner,direct_num_workers=2) '
                      'instead of the process pool, and write the TFDS '
                      'files with Beam on the same runner.')


def _expanded(names: List[str]) -> List[str]:
  """DATASET/CONFIG names; a dataset alone stands for all its configs."""
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.tfds import prepared
  out = []
  for name in names:
    dataset, _, config = name.partition('/')
    if dataset not in tfds_data.DATASETS:
      raise ValueError(f'{name}: no TFDS builder {dataset!r}; give one of '
                       f'{list(tfds_data.DATASETS)}.')
    out += ([name] if config else
            [f'{dataset}/{c.name}' for c in prepared.configs_for(dataset)])
  return out


def main(args: argparse.Namespace) -> int:
  # Imported here: `mmgenre --help` must not load TFDS and the builders.
  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds
  import input_pipeline.tfds  # pylint: disable=unused-import  # Registers.
  # pylint: enable=g-import-not-at-top
  download_config = tfds.download.DownloadConfig(manual_dir=args.manual_dir)
  try:
    if not os.path.isdir(args.manual_dir) or not os.listdir(args.manual_dir):
      # Said here: TFDS would fail on an assert.
      raise ValueError(f'--manual-dir {args.manual_dir} is missing or empty; '
                       'give the corpus directory (or the --out of `mmgenre '
                       'prepare`).')
    for name in _expanded(args.names):
      builder = tfds.builder(
          name, data_dir=args.data_dir, workers=args.workers,
          beam_pipeline_options=args.beam_pipeline_options)
      builder.download_and_prepare(download_config=download_config)
      counts = {split: info.num_examples
                for split, info in builder.info.splits.items()}
      print(f'{name}: {counts} examples in {builder.data_dir}')
  except (OSError, ValueError) as e:
    return flags.fail('tfds', e)
  return 0

"""`mmgenre splits`: artist-filtered train/val/test item lists.

  mmgenre splits --dataset mumu --metadata MuMu_dataset_multi-label.csv \
      --labels genre_labels_MuMu.tsv --out splits/ --seed 0

writes splits/items_index_{train,val,test}.tsv, one id per line, and prints
the items and artists per split (input_pipeline.formats.splits: the paper's
80/10/10 MuMu album split and 70/15/15 MSD-I track split, no artist or album in
two splits). MSD-I's own release split (its `set` column) needs no split files:
`mmgenre prepare --dataset msdi` uses it by default. The split it computes
is not the paper's: that is the authors' split files (MuMu: zenodo 831189,
splits/items_index_{train,val,test}_<dataset>.tsv), which `mmgenre prepare
--splits DIR` reads as they ship.
"""

import argparse

from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax.cli import flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--dataset', required=True, choices=('mumu', 'msdi'),
                      help='Release format of --metadata.')
  parser.add_argument('--metadata', required=True,
                      help='MuMu_dataset_*.csv (mumu) or MSD-I_dataset.tsv '
                      '(msdi).')
  parser.add_argument('--out', required=True,
                      help='Directory for items_index_{train,val,test}.tsv.')
  parser.add_argument('--seed', type=int, default=0,
                      help='Shuffling seed (default 0).')
  parser.add_argument('--labels', default=None,
                      help='mumu only: genre_labels_MuMu.tsv; albums with no '
                      'listed label are left out.')
  parser.add_argument('--taxonomy', default=None,
                      help='mumu only: label<TAB>parent file; labels are '
                      'expanded to their ancestors.')
  parser.add_argument('--min-albums', type=int, default=1,
                      help='mumu only: keep labels on >= this many albums '
                      f'(the paper: {mumu.PAPER_MIN_ALBUMS}; default 1).')


def main(args: argparse.Namespace) -> int:
  try:
    if args.dataset == 'mumu':
      dataset = mumu.load_mumu(args.metadata, labels_path=args.labels,
                               taxonomy_path=args.taxonomy,
                               min_albums=args.min_albums)
      item_groups = splits_lib.mumu_item_groups(dataset)
      proportions = splits_lib.MUMU_PROPORTIONS
    else:
      if args.labels or args.taxonomy or args.min_albums != 1:
        raise ValueError('--labels, --taxonomy and --min-albums apply only '
                         'to --dataset mumu.')
      # A computed split: the `set` column (the release split) may be
      # absent and is not checked.
      dataset = msdi.load_msdi(args.metadata, require_set=False)
      item_groups = splits_lib.msdi_item_groups(dataset)
      proportions = splits_lib.MSDI_PROPORTIONS
  except (OSError, ValueError) as e:
    return flags.fail('splits', e)
  splits = splits_lib.artist_filtered_split(item_groups, proportions,
                                            args.seed)
  splits_lib.write_splits(splits, args.out)
  print(f'{args.dataset} splits (seed {args.seed}, target '
        f'{"/".join(f"{100 * p:g}" for p in proportions)}) written to '
        f'{args.out}:')
  print(splits_lib.summarize(splits, item_groups))
  return 0

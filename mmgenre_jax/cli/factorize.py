"""`mmgenre factorize`: PPMI-SVD label factors of a MuMu release (Sec 5.1).

  mmgenre factorize --metadata MuMu_dataset_multi-label.csv \
      --labels genre_labels_MuMu.tsv --splits splits/ --dim 50 --out factors/

writes factors/{label_factors.npy, item_factors.npy, labels.tsv, items.tsv}
(mmgenre_jax/core/ppmi_svd.py computes them; training computes its own).
"""

import argparse

import numpy as np

from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax.cli import flags
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax import workdir


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--metadata', required=True,
                      help='MuMu_dataset_*.csv (MuMu release format).')
  parser.add_argument('--labels', default=None,
                      help='genre_labels_MuMu.tsv; its order is the label '
                      'order of the factors.')
  parser.add_argument('--taxonomy', default=None,
                      help='label<TAB>parent file; labels are expanded to '
                      'their ancestors.')
  parser.add_argument('--splits', default=None,
                      help='Directory with items_index_{train,val,test}.tsv: '
                      'only the train + val albums form M (paper Sec 7.3). '
                      'Without it every album is used.')
  parser.add_argument('--min-albums', type=int, default=1,
                      help='Keep labels on >= this many albums (default 1).')
  parser.add_argument(
      '--dim', type=int, default=ppmi_svd.PAPER_DIM,
      help=f'Number of factors d (paper: {ppmi_svd.PAPER_DIM}).')
  parser.add_argument('--out', required=True,
                      help=f'Directory for {workdir.LABEL_FACTORS_NPY}, '
                      f'{workdir.ITEM_FACTORS_NPY}, {workdir.LABELS_TSV}, '
                      f'{workdir.ITEMS_TSV}.')


def main(args: argparse.Namespace) -> int:
  try:
    dataset = mumu.load_mumu(args.metadata, labels_path=args.labels,
                             taxonomy_path=args.taxonomy,
                             min_albums=args.min_albums)
    if args.splits:
      split_items = splits_lib.read_splits(args.splits)
      items = [item for name in ppmi_svd.FACTORIZE_SPLITS
               for item in split_items[name]]
      missing = [item for item in items if item not in dataset.albums]
      if missing:
        raise ValueError(
            f'{len(missing)} album(s) of the train/val splits in '
            f'{args.splits} are not in {args.metadata} (e.g. '
            f'{", ".join(missing[:3])}); make the splits from the same '
            'metadata, --labels, --taxonomy and --min-albums.')
    else:
      items = list(dataset.albums)
    result = ppmi_svd.factorize(dataset.label_matrix(items), args.dim)
    workdir.write_factors(args.out, result.label_factors,
                          result.item_factors, dataset.labels, items)
  except (OSError, ValueError) as e:
    return flags.fail('factorize', e)
  source = ' (train + val)' if args.splits else ''
  print(f'PPMI-SVD factors (d={args.dim}) of {len(dataset.labels)} labels '
        f'from {len(items)} albums{source} written to {args.out}; top '
        f'singular values {np.round(result.singular_values[:5], 3)}.')
  zero = int(np.sum(~result.label_factors.any(axis=1)))
  if zero:
    print(f'{zero} label(s) have zero factors (on no train/val album, or '
          'outside the top d factors): their cosine scores are always 0.')
  return 0

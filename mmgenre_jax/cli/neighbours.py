"""`mmgenre neighbours`: nearest genres, or nearest catalog items.

  mmgenre neighbours --workdir BUNDLE --audio song.mp3
  mmgenre neighbours --workdir BUNDLE --audio song.mp3 --catalog CAT \
      --space aligned
  mmgenre neighbours --workdir BUNDLE --reviews r.txt --catalog CAT \
      --space factors --to audio

Spaces and results: mmgenre_jax/tagging/neighbours.py. Prints JSON; exit
status 2 when the query, the model or the catalog cannot be used.
"""

import argparse
import json
import sys

from mmgenre_jax.cli import flags
from mmgenre_jax.tagging import neighbours
from mmgenre_jax.tagging import tagger as tagger_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  flags.add_input_arguments(parser)
  parser.add_argument('--catalog', default=None, metavar='DIR',
                      help='`mmgenre embed --out` folder to search; without '
                      'it, the nearest genres are listed.')
  parser.add_argument('--space', choices=neighbours.SPACES, default=None,
                      help='Shared space (default: aligned when the model '
                      'has an alignment stage, else factors).')
  parser.add_argument('--to', nargs='+', default=[],
                      help='Catalog representations to search (audio, '
                      'image/cover, text/reviews, fusion, or a file name).')
  parser.add_argument('-k', '--top-k', type=int, default=neighbours.DEFAULT_K)


def main(args: argparse.Namespace) -> int:
  try:
    items = flags.items_from_args(args)
    if len(items) != 1:
      raise ValueError(f'neighbours takes one query (track or album); got '
                       f'{len(items)} inputs (use --album for several '
                       'tracks).')
    (item,) = items
    tagger = tagger_lib.Tagger.from_workdir(args.workdir, head=False)
    if args.catalog is None:
      result = neighbours.genre_neighbours(tagger, item, args.top_k)
    else:
      result = neighbours.catalog_neighbours(
          tagger, item, args.catalog, space=args.space, to=args.to,
          k=args.top_k)
  except tagger_lib.INPUT_ERRORS as e:
    return flags.fail('neighbours', e)
  json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
  sys.stdout.write('\n')
  return 0

"""The input flags shared by `mmgenre predict`, `embed` and `neighbours`.

  --workdir W  --audio FILE_OR_DIR ...  --cover IMAGE  --reviews TEXT_FILE
  --manifest CSV  --album  --album-id NAME  --no-progress

What they mean (tracks, albums, catalog CSVs) is mmgenre_jax.tagging.catalog.
"""

import argparse
from typing import List

from mmgenre_jax.tagging import catalog


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the input flags shared by predict, embed and neighbours."""
  parser.add_argument('--workdir', required=True,
                      help='Pipeline workdir, stage workdir or export bundle.')
  parser.add_argument('--audio', nargs='+', default=[],
                      metavar='FILE_OR_DIR',
                      help='Audio files (wav/flac/ogg/mp3), folders of them, '
                      'or a catalog CSV.')
  parser.add_argument('--cover', default=None, metavar='IMAGE',
                      help='Album cover (makes the inputs one album).')
  parser.add_argument('--reviews', default=None, metavar='TEXT_FILE',
                      help='Review text file (makes the inputs one album).')
  parser.add_argument('--manifest', default=None, metavar='CSV',
                      help='Catalog CSV: album_id,audio,cover,reviews; audio '
                      'paths separated by ";".')
  parser.add_argument('--album', action='store_true',
                      help='Treat all --audio files as the tracks of one '
                      'album (outputs averaged).')
  parser.add_argument('--album-id', default=None,
                      help='The `input` name of that album.')
  parser.add_argument('--no-progress', action='store_true',
                      help='No progress bar.')


def items_from_args(args: argparse.Namespace) -> List[catalog.Item]:
  """Items of the --audio/--cover/--reviews/--manifest/--album flags.

  Raises:
    ValueError: nothing to tag, or a bad catalog CSV.
  """
  return catalog.collect_items(
      audio=args.audio, cover=args.cover, reviews=args.reviews,
      manifest=getattr(args, 'manifest', None),
      album=getattr(args, 'album', False),
      album_id=getattr(args, 'album_id', None))

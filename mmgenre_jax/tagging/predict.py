"""`mmgenre predict`: genres of audio files, covers, reviews or a catalog.

  mmgenre predict --workdir runs/mumu_cosine --audio song.mp3 --top-k 5
  mmgenre predict --workdir BUNDLE --audio t1.flac t2.flac --cover c.jpg \
      --reviews reviews.txt                                  # one album
  mmgenre predict --workdir BUNDLE --audio ~/Music --format csv \
      --out tags.csv                                         # resumable

Prints (or writes to --out) one row per input: `input`, `labels` (the top-k
{"label", "score"} best first), `decisions` (labels past their F1-optimal
validation threshold), `model` (the network that answered) and `error` (null,
or why this input could not be tagged; the other inputs go on).
"""

import argparse
import sys
from typing import Any, Dict

from absl import logging
import tqdm

from input_pipeline import features
from mmgenre_jax.tagging import catalog
from mmgenre_jax.tagging import tagger as tagger_lib

DEFAULT_TOP_K = 5
# What a bad input raises; anything else is a bug and stops the run.
INPUT_ERRORS = (features.FeatureError, tagger_lib.TaggingError, ValueError,
                OSError)


def predict_item(tagger: tagger_lib.Tagger, item: catalog.Item,
                 top_k: int) -> Dict[str, Any]:
  """One output row; input errors become the row's `error`."""
  try:
    result = tagger.predict(audio=item.audio or None, cover=item.cover,
                            reviews=item.read_reviews(), top_k=top_k)
  except INPUT_ERRORS as e:
    return {'input': item.key, 'labels': [], 'decisions': None,
            'model': None, 'notes': [], 'error': str(e)}
  return {'input': item.key, 'labels': result['labels'],
          'decisions': result['decisions'], 'model': result['model'],
          'notes': result['notes'], 'error': None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  catalog.add_input_arguments(parser)
  parser.add_argument('--top-k', type=int, default=DEFAULT_TOP_K,
                      help='Labels listed per input, best first.')
  parser.add_argument('--format', choices=('json', 'csv'), default='json')
  parser.add_argument('--out', default=None, metavar='FILE',
                      help='Write here (resumable) instead of stdout.')


def main(args: argparse.Namespace) -> int:
  try:
    items = catalog.items_from_args(args)
    writer = catalog.ResultWriter(args.out, args.format)
    tagger = tagger_lib.Tagger.from_workdir(args.workdir)
  except (ValueError, OSError) as e:
    print(f'mmgenre predict: {e}', file=sys.stderr)
    return 2
  todo = list(catalog.pending(items, writer.done))
  if len(todo) < len(items):
    logging.info('Resuming: %d of %d inputs already in %s.',
                 len(items) - len(todo), len(items), args.out)
  errors = 0
  try:
    for item in tqdm.tqdm(todo, desc='predict', unit='item',
                          disable=args.no_progress or len(todo) < 2):
      row = predict_item(tagger, item, args.top_k)
      errors += row['error'] is not None
      writer.write(row)
  finally:
    writer.close()
  if errors:
    print(f'mmgenre predict: {errors} of {len(todo)} inputs failed (see '
          'their "error").', file=sys.stderr)
  return 0

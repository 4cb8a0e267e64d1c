"""`mmgenre finetune`: a head for new labels from a few labelled examples.

  mmgenre finetune --workdir W --labels moods.csv --out moods_head
  mmgenre predict --workdir W --head moods_head --audio song.mp3
  mmgenre export W --head moods_head --out bundle   # answers with the head

What the labels CSV holds, how the head is fitted and calibrated, and the
embedding cache: mmgenre_jax/tagging/finetune/fit.py; the head's files:
mmgenre_jax/tagging/finetune/fitted_head.py. Rows that cannot be used are listed
on stderr and skipped (--strict: exit 2 instead). Exit status (flags.py): 0
when the head was fitted on every row; 3 when it was written but some rows
were skipped or failed to embed; 4 when so many examples failed to embed
that a label is left with too few (errors.ExamplesFailedError, no head);
2 when the model, the CSV or the examples cannot be used (e.g. a label with
too few examples in the CSV).
"""

import argparse
import sys

from mmgenre_jax.tagging.finetune import examples as examples_lib
from mmgenre_jax.tagging.finetune import fit as finetune
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib
from mmgenre_jax.tagging.model import taxonomy as taxonomy_lib
from mmgenre_jax.cli import flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--workdir', required=True,
                      help='Pipeline workdir, stage workdir or export bundle.')
  parser.add_argument('--labels', required=True, metavar='FILE',
                      help='CSV with the header input,labels: an audio file, '
                      'an album folder or a --catalog album_id, and its '
                      '"|"-separated labels.')
  parser.add_argument('--out', required=True, metavar='HEAD',
                      help='Head directory to write (new, empty or a '
                      'previous head).')
  parser.add_argument('--catalog', default=None, metavar='CSV',
                      help='Catalog CSV (album_id,audio,cover,reviews) whose '
                      'album_ids the inputs may name.')
  parser.add_argument('--representation', default=None, metavar='NAME',
                      help='The embed vector to fit on (fusion, '
                      'fusion_<stage>, mm_audio, audio, ...). Default: that '
                      'of the network predict answers with for the '
                      'modalities every example has.')
  parser.add_argument('--taxonomy', default=None, metavar='TSV',
                      help='label<TAB>parent over the new labels: examples '
                      'get their labels\' ancestors and decisions bring '
                      'their parents. Copied into the head.')
  parser.add_argument('--cache', default=None, metavar='DIR',
                      help='Embedding cache (default HEAD/cache).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Seed of the held-out split and the solvers.')
  parser.add_argument('--holdout-fraction', type=float,
                      default=finetune.DEFAULT_HOLDOUT_FRACTION,
                      help='Part of each label\'s examples held out to '
                      'calibrate its threshold.')
  parser.add_argument('--strict', action='store_true',
                      help='Exit 2 on a row that cannot be used instead of '
                      'skipping it.')
  flags.add_progress_argument(parser)
  flags.add_exit_statuses(
      parser, 'the head was fitted on every row of --labels',
      'the head was written, but some rows were skipped (listed on stderr) '
      'or failed to embed',
      'no head: with the examples that failed to embed left out, a label '
      'has too few examples (the error names it)')


def _print_summary(out: str, summary, skipped: int) -> None:
  print(f'Wrote {out}: {summary["items"]} examples, {summary["negatives"]} '
        f'of them negatives ({skipped} rows skipped, '
        f'{len(summary["failed"])} failed to embed), '
        f'{len(summary["labels"])} labels on {summary["representation"]} '
        f'[{summary["dim"]}]; embedded {summary["computed"]} '
        f'({summary["cached"]} from the cache); {summary["seconds"]:.1f} s.')
  print(f'Held out {summary["heldout_items"]} items (C = {summary["c"]:g} '
        'chosen on them); per label: examples, '
        'held-out positives, AUC, F1, answer (fitted, or the model\'s own '
        'score of one of its labels):')
  for label in summary['labels']:
    held = summary['heldout'][label]
    answer = held.get('answer')
    print(f'  {label}\t{summary["examples"][label]}\t{held["positives"]}\t'
          f'{held["auc"]:.3f}\t{held["f1"]:.3f}\t'
          f'{"fitted" if answer is None else "model: " + answer}')


def main(args: argparse.Namespace) -> int:
  try:
    examples, skipped = examples_lib.read_labels(args.labels, args.catalog)
    for line in skipped:
      print(f'mmgenre finetune: {line}', file=sys.stderr)
    if skipped and args.strict:
      raise ValueError(f'{len(skipped)} rows cannot be used (--strict).')
    taxonomy = None if args.taxonomy is None else taxonomy_lib.read(
        args.taxonomy)
    tagger = tagger_lib.Tagger.from_workdir(args.workdir, head=False)
    # A gs:// --out (and its cache) is updated locally, then uploaded.
    with remote.local_output(args.out) as out:
      _, summary = finetune.finetune(
          tagger, examples, out, source=args.labels,
          representation=args.representation, taxonomy=taxonomy,
          cache_dir=args.cache, seed=args.seed,
          holdout_fraction=args.holdout_fraction,
          progress=not args.no_progress,
          info={'labels_file': args.labels, 'skipped_rows': skipped})
  except (ValueError, OSError) as e:
    return flags.fail('finetune', e)
  for key, error in summary['failed']:
    print(f'mmgenre finetune: {key}: {error}; example skipped.',
          file=sys.stderr)
  _print_summary(args.out, summary, len(skipped))
  return flags.exit_status(len(examples) + len(skipped),
                           len(skipped) + len(summary['failed']))

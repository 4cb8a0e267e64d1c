"""`mmgenre predict`: genres of audio files, covers, reviews or a catalog.

  mmgenre predict --workdir runs/mumu_cosine --audio song.mp3 --top-k 5
  mmgenre predict --workdir BUNDLE --audio ~/Music --format csv --out tags.csv
  mmgenre predict --workdir W --head moods_head --audio song.mp3  # new labels

Prints (or writes to --out, resumably and crash-safely) one row per input;
the rows, with their `duration_s` and `warnings`, are those of
mmgenre_jax/tagging/predict.py. A resumed run says on stderr how many rows
it kept, dropped (input gone) and redid (input changed). With
--beam_pipeline_options the same rows go to sharded JSON lines
(mmgenre_jax/tagging/beam_tagging.py). Inputs that fail one by one are
rows with an `error`, and the exit status says how the inputs ended
(flags.exit_status, counting the rows a resumed run kept): 0 every input
tagged, 3 some failed, 4 every one failed; 2 when the inputs or the model
cannot be read (nothing tagged).
"""

import argparse
import sys

from mmgenre_jax.cli import flags
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  flags.add_input_arguments(parser)
  parser.add_argument('--top-k', type=int, default=predict.DEFAULT_TOP_K,
                      help='Labels listed per input, best first.')
  parser.add_argument('--format', choices=('json', 'csv'), default='json')
  parser.add_argument('--taxonomy', default=None, metavar='TSV',
                      help='Genre taxonomy (label<TAB>parent) that decisions '
                      'follow: a decided label brings its parents. Default: '
                      "the bundle's, else the one beside the shards' corpus; "
                      'none found: decisions are the thresholded labels.')
  parser.add_argument('--head', default=None, metavar='HEAD',
                      help='Answer with this finetuned head (mmgenre '
                      'finetune): its labels, scores and thresholds; '
                      '--taxonomy is then over its labels. Default: the '
                      "bundle's head, if it has one.")
  parser.add_argument('--level', choices=tagger_lib.LEVELS, default='all',
                      help='all labels, or the top-level genres only (needs '
                      'a taxonomy).')
  parser.add_argument('--out', default=None, metavar='FILE',
                      help='Write here (resumable: rows of inputs gone are '
                      'dropped, of inputs changed redone) instead of stdout; '
                      'with --beam_pipeline_options, the shards\' PREFIX. '
                      'A gs:// FILE is written locally and uploaded when the '
                      'run ends (a kill -9 loses the run\'s rows).')
  flags.add_beam_argument(parser)
  flags.add_exit_statuses(
      parser, 'every input was tagged',
      'some inputs failed: their rows (every input has one) carry an '
      '`error`, on stderr `N of M inputs failed`',
      'every input failed (each row has its `error`)')


def main(args: argparse.Namespace) -> int:
  # A URL --out (without Beam) is written locally, starting from the
  # object's rows (a resumed run), and uploaded when the run ends.
  with remote.local_file(None if args.beam_pipeline_options else
                         args.out) as out:
    return _predict(args, out)


def _predict(args: argparse.Namespace, out) -> int:
  """main, writing --out's rows (without Beam) at the local path `out`."""
  try:
    items = flags.items_from_args(args)
    beam_options = flags.beam_options(args)
    writer = (None if beam_options is not None else
              items_lib.ResultWriter(out, args.format, name=args.out))
    # Loaded here on Beam too: a bad model or flag fails now, not on the
    # workers.
    tagger = tagger_lib.Tagger.from_workdir(
        args.workdir, taxonomy=args.taxonomy, head=args.head)
    tagger.level_mask(args.level)  # no taxonomy for --level top: exit 2
  except (ValueError, OSError) as e:
    return flags.fail('predict', e)
  if beam_options is not None:
    tally = flags.run_on_beam('predict', args, items, beam_options,
                              args.head)
  else:
    tally = predict.run(tagger, items, writer, top_k=args.top_k,
                        level=args.level, progress=not args.no_progress,
                        batch_items=args.batch_items,
                        decode_workers=args.decode_workers)
  if tally.inputs_failed:
    kept = (f', {tally.kept_failed} of them in rows kept from an earlier '
            'run' if tally.kept_failed else '')
    print(f'mmgenre predict: {tally.inputs_failed} of {tally.inputs} '
          f'inputs failed{kept} (see their "error").', file=sys.stderr)
  return flags.exit_status(tally.inputs, tally.inputs_failed)

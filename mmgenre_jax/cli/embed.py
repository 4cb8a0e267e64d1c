"""`mmgenre embed`: representations of files or a catalog, as .npy + index.

  mmgenre embed --workdir BUNDLE --audio ~/Music --out music_vectors
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out catalog_vectors

What OUT holds: mmgenre_jax/tagging/embed.py; with --beam_pipeline_options,
OUT is the prefix of sharded JSON lines, a row of vectors per input
(mmgenre_jax/tagging/beam_tagging.py). Inputs that fail one by one go to
OUT/errors.tsv (on Beam: rows with an `error`), and the exit status says how
the inputs ended (flags.exit_status): 0 every input embedded, 3 some failed,
4 every one failed; 2 when the inputs or the model cannot be read (nothing
embedded).
"""

import argparse

from mmgenre_jax.cli import flags
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  flags.add_input_arguments(parser)
  parser.add_argument('--out', required=True, metavar='DIR',
                      help='Folder for <name>.npy, index.tsv, errors.tsv; '
                      'with --beam_pipeline_options, the PREFIX of JSON-lines '
                      'shards (one row of vectors per input). A gs:// DIR is '
                      'written locally and uploaded when the run ends.')
  flags.add_beam_argument(parser)
  flags.add_exit_statuses(
      parser, 'every input was embedded',
      'some inputs failed: OUT/errors.tsv lists them (on Beam: their rows '
      'carry an `error`); the others\' vectors are written',
      'every input failed (all in OUT/errors.tsv, or rows with an `error`)')


def main(args: argparse.Namespace) -> int:
  try:
    items = flags.items_from_args(args)
    beam_options = flags.beam_options(args)
    tagger = tagger_lib.Tagger.from_workdir(args.workdir, head=False)
  except (ValueError, OSError) as e:
    return flags.fail('embed', e)
  if beam_options is not None:
    tally = flags.run_on_beam('embed', args, items, beam_options,
                              head=False)
    kept = (f'; {tally.kept} rows kept, {tally.kept_failed} of them '
            'failed' if tally.kept else '')
    print(f'Embedded {tally.tagged} inputs into {args.out}-*.jsonl '
          f'({tally.failed} failed{kept}).')
    return flags.exit_status(tally.inputs, tally.inputs_failed)
  # A URL --out is written to a local folder, uploaded at the end.
  with remote.local_output(args.out) as out:
    vectors, errors = embed.write_embeddings(
        tagger, items, out, info={'workdir': str(args.workdir)},
        progress=not args.no_progress, batch_items=args.batch_items,
        decode_workers=args.decode_workers)
  print(f'Wrote {sum(len(v) for v in vectors.values())} vectors of '
        f'{sorted(vectors)} to {args.out} ({len(errors)} inputs failed).')
  return flags.exit_status(len(items), len(errors))

"""What the `mmgenre` commands share: flags, and how a command fails.

  --no-progress                                    (every long job)
  --workdir W  --audio FILE_OR_DIR ...  --cover IMAGE  --reviews TEXT_FILE
  --manifest CSV  --album  --album-id NAME          (predict, embed,
                                                    neighbours)
  --batch-items N  --decode-workers N
  --beam_pipeline_options K=V,...                  (predict and embed)

A command's mistake (a bad flag value, a file that cannot be used) ends
with `fail`: one line `mmgenre <command>: error: <message>` on stderr and
exit status errors.EXIT_CODE (2), as main.py's; anything else is a bug and
keeps its traceback (exit status 1). A command over many inputs (predict,
embed, prepare, finetune) says how they ended in its exit status
(`exit_status`): EXIT_OK when every input was done, EXIT_SOME_FAILED when
some failed (the output is still written, with a row or report line for
each), EXIT_ALL_FAILED when none could be done or too many failed for the
output to be written (errors.InputsFailedError; `fail` returns it). Each
command's --help ends with its own (`add_exit_statuses`). What the tagging
flags mean (tracks, albums, catalog CSVs) is mmgenre_jax.tagging.items; the
Beam runs are mmgenre_jax.tagging.beam_tagging.
"""

import argparse
import sys
import textwrap
from typing import List, Union

from mmgenre_jax import errors
from mmgenre_jax.tagging import items as items_lib

# The exit statuses of the commands over many inputs (module docstring); 1
# (a bug's traceback) and errors.EXIT_CODE (2, a usage error) are taken.
EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_ALL_FAILED = 4


def exit_status(inputs: int, failed: int) -> int:
  """EXIT_OK, EXIT_SOME_FAILED or EXIT_ALL_FAILED of `failed` of `inputs`."""
  if not failed:
    return EXIT_OK
  return EXIT_ALL_FAILED if failed >= inputs else EXIT_SOME_FAILED


def add_exit_statuses(parser: argparse.ArgumentParser, done: str,
                      some_failed: str, all_failed: str) -> None:
  """Ends the command's --help with what each exit status means."""
  parser.formatter_class = argparse.RawDescriptionHelpFormatter
  rows = [(EXIT_OK, done), (1, 'a bug: an uncaught error, with its '
                            'traceback'),
          (errors.EXIT_CODE, 'a usage error (bad flags, a model or file '
           'that cannot be used): one line `error: ...`, nothing done')]
  rows += [(status, text) for status, text in
           ((EXIT_SOME_FAILED, some_failed), (EXIT_ALL_FAILED, all_failed))
           if text]
  parser.epilog = 'exit status:\n' + '\n'.join(
      textwrap.fill(text, 79, initial_indent=f'  {status}  ',
                    subsequent_indent=' ' * 5, break_on_hyphens=False)
      for status, text in rows)


def fail(command: str, error: BaseException) -> int:
  """Prints a command's error as one line; returns its exit status:
  EXIT_ALL_FAILED for an errors.InputsFailedError, else errors.EXIT_CODE."""
  print(f'mmgenre {command}: {errors.one_line(error)}', file=sys.stderr,
        flush=True)
  if isinstance(error, errors.InputsFailedError):
    return EXIT_ALL_FAILED
  return errors.EXIT_CODE


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
  """Adds --no-progress (no progress bars: logs, CI)."""
  parser.add_argument('--no-progress', action='store_true',
                      help='No progress bars.')


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
  add_progress_argument(parser)


def items_from_args(args: argparse.Namespace) -> List[items_lib.Item]:
  """Items of the --audio/--cover/--reviews/--manifest/--album flags.

  Raises:
    ValueError: nothing to tag, or a bad catalog CSV.
  """
  return items_lib.collect_items(
      audio=args.audio, cover=args.cover, reviews=args.reviews,
      manifest=getattr(args, 'manifest', None),
      album=getattr(args, 'album', False),
      album_id=getattr(args, 'album_id', None))


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'{value}: give 1 or more')
  return value


def _non_negative_int(text: str) -> int:
  value = int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'{value}: give 0 or more')
  return value


def add_beam_argument(parser: argparse.ArgumentParser) -> None:
  """Adds --batch-items, --decode-workers and --beam_pipeline_options
  (predict and embed)."""
  parser.add_argument(
      '--batch-items', type=_positive_int, default=items_lib.BATCH_ITEMS,
      metavar='N',
      help='Inputs tagged together, their audio windows sharing the '
      f'networks\' batches (default {items_lib.BATCH_ITEMS}; the results are '
      'the same for any N). A killed run loses at most the batch it was '
      'on; 1 tags one input at a time.')
  parser.add_argument(
      '--decode-workers', type=_non_negative_int,
      default=items_lib.DECODE_WORKERS, metavar='N',
      help='Processes decoding audio files ahead while the JAX device '
      'computes the resampling, CQT and networks of a batch of tracks '
      f'(default {items_lib.DECODE_WORKERS}: one per core, at most 4; '
      'models on the jax_polyphase front end; long files are streamed, '
      'docs/tagging.md). 1 decodes in this process; 0 streams every file '
      'block by block (the least memory). The results are the same to '
      'float32 precision.')
  parser.add_argument(
      '--beam_pipeline_options', default=None, metavar='K=V,...',
      help='Run on Apache Beam with these pipeline options, comma-separated '
      '(e.g. runner=DirectRunner,direct_num_workers=2,direct_running_mode='
      'multi_processing; a bare key is a boolean flag): each worker loads '
      'the model once, --out PREFIX gets PREFIX-00000-of-0000N.jsonl, one '
      'row a line, sorted on input within a shard; a rerun skips the '
      'inputs already there (mmgenre_jax/tagging/beam_tagging.py).')


def beam_options(args: argparse.Namespace):
  """The PipelineOptions of --beam_pipeline_options, None without it.

  Raises:
    ValueError: naming the flag: bad options, no --out, --format csv.
  """
  if args.beam_pipeline_options is None:
    return None
  if not args.out:
    raise ValueError('--beam_pipeline_options writes sharded JSON lines: '
                     'give --out PREFIX.')
  if getattr(args, 'format', 'json') != 'json':
    raise ValueError(f'--format {args.format} cannot be used with '
                     '--beam_pipeline_options, whose shards are JSON lines '
                     '(--format json).')
  # Imported here: Beam takes a second to import, and only these runs
  # need it.
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.beam import options as beam_options_lib
  return beam_options_lib.pipeline_options(args.beam_pipeline_options)


def run_on_beam(task: str, args: argparse.Namespace,
                items: List[items_lib.Item], options,
                head: Union[str, bool, None]) -> items_lib.Tally:
  """beam_tagging.run of a predict or embed command's flags: its Tally."""
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.tagging import beam_tagging
  model = beam_tagging.Model(str(args.workdir),
                             getattr(args, 'taxonomy', None), head)
  return beam_tagging.run(task, items, args.out, options, model,
                          top_k=getattr(args, 'top_k', 0),
                          level=getattr(args, 'level', 'all'),
                          batch_items=args.batch_items)

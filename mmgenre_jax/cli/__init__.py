"""The `mmgenre` console command: data preparation and tagging tools.

Training stays `python main.py --config=... --workdir=...`. Each subcommand
lives in its own module of this package (the only home of argparse in the
library), which defines `add_arguments(parser)` and `main(args) -> int` and
calls the library; modules are imported only when their subcommand runs, so
`mmgenre --help` stays fast. The flags several commands share, how a
command reports a user's mistake (one line, exit status 2, as main.py) and
the exit statuses of the commands over many inputs (0 all done, 3 some
failed, 4 none could be done or too many failed; each command's --help ends
with its own) are in flags.py. The commands that compile JAX programs in
their own process (`COMPILING`: tagging, exporting, preparing) first point
JAX at the project's persistent compilation cache
(input_pipeline/startup.py), so that a cold command loads what an
earlier one compiled.
"""

import argparse
import importlib
import sys

# name -> (module, one-line help). Order is the order shown in --help.
SUBCOMMANDS = {
    'synth': ('mmgenre_jax.cli.synth',
              'Write the deterministic synthetic corpus (audio, covers, '
              'reviews, MuMu/MSD-I metadata).'),
    'splits': ('mmgenre_jax.cli.splits',
               'Write artist-filtered train/val/test item lists.'),
    'prepare': ('mmgenre_jax.cli.prepare',
                'Compute features and write TFRecord shards + manifest.'),
    'tfds': ('mmgenre_jax.cli.tfds_build',
             'Build the TFDS datasets (mumu, msdi) of a corpus or of '
             'prepared shards.'),
    'factorize': ('mmgenre_jax.cli.factorize',
                  'PPMI-SVD label factors and item targets (COSINE).'),
    'report': ('mmgenre_jax.cli.report',
               'Write report.md, results.json and the figures of a '
               'pipeline workdir.'),
    'figures': ('mmgenre_jax.cli.figures',
                'Draw the paper\'s figures of a pipeline workdir.'),
    'predict': ('mmgenre_jax.cli.predict',
                'Tag audio files, covers and reviews with genres.'),
    'embed': ('mmgenre_jax.cli.embed',
              'Write per-modality, aligned and fused representations.'),
    'neighbours': ('mmgenre_jax.cli.neighbours',
                   'Nearest genres or catalog items in the cosine space.'),
    'finetune': ('mmgenre_jax.cli.finetune',
                 'Fit a head for new labels from a few labelled examples.'),
    'export': ('mmgenre_jax.cli.export',
               'The model in one directory: a bundle, ONNX or StableHLO.'),
}
# The commands that compile JAX programs in this process (networks, the
# JAX front end with --workers 1, an export's tracing): they use the
# project's persistent compilation cache (input_pipeline.startup), set up
# before their module is imported; the others never load JAX for it.
COMPILING = frozenset(('prepare', 'tfds', 'predict', 'embed', 'neighbours',
                       'finetune', 'export'))


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='mmgenre', description=__doc__.splitlines()[0])
  subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
  for name, (module_name, help_text) in SUBCOMMANDS.items():
    # add_help=False: the module's own parser (second pass) answers --help.
    sub = subparsers.add_parser(name, help=help_text, description=help_text,
                                add_help=False)
    sub.set_defaults(_module=module_name)
  return parser


def setup_compilation_cache() -> str:
  """This process's JAX uses the project's persistent compilation cache
  (startup.CACHE_DIR) unless JAX_COMPILATION_CACHE_DIR names one: a cold
  command loads the programs an earlier one compiled. Returns the
  directory ('' or None: none)."""
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline import startup
  return startup.enable_compilation_cache()


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = build_parser()
  # First pass finds the subcommand; its module then adds its own arguments.
  known, _ = parser.parse_known_args(argv)
  if not known.command:
    parser.print_help()
    return 2
  if known.command in COMPILING:
    setup_compilation_cache()
  module = importlib.import_module(known._module)
  sub = argparse.ArgumentParser(
      prog=f'mmgenre {known.command}',
      description=SUBCOMMANDS[known.command][1])
  module.add_arguments(sub)
  args = sub.parse_args(argv[1:])
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax import errors
  from mmgenre_jax.cli import flags
  # pylint: enable=g-import-not-at-top
  try:
    return int(module.main(args) or 0)
  except errors.UserError as e:
    # A user's mistake a command did not catch itself (or its inputs
    # failing: errors.InputsFailedError): the same one line and exit
    # status as the ones it did.
    return flags.fail(known.command, e)


if __name__ == '__main__':
  sys.exit(main())

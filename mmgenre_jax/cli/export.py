"""`mmgenre export W --out BUNDLE`: everything prediction needs, one folder.

  mmgenre export runs/mumu_cosine --out mumu_cosine_bundle
  mmgenre predict --workdir mumu_cosine_bundle --audio song.mp3
  mmgenre export runs/mumu_cosine --head moods_head --out moods_bundle

The bundle's layout: mmgenre_jax/tagging/model/bundle.py. The decision
thresholds, computed in memory when the model is loaded, are written into the
bundle; the workdir is only read. Exit status 2 when W cannot be read or BUNDLE
cannot be written.
"""

import argparse

from mmgenre_jax.cli import flags
from mmgenre_jax.tagging import tagger as tagger_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', nargs='?', default=None,
                      help='Pipeline workdir, stage workdir or bundle.')
  parser.add_argument('--workdir', dest='workdir_flag', default=None,
                      help=argparse.SUPPRESS)
  parser.add_argument('--head', default=None, metavar='HEAD',
                      help='A finetuned head (mmgenre finetune) to bundle: '
                      'the bundle then answers with its labels.')
  parser.add_argument('--out', required=True, metavar='BUNDLE',
                      help='New (or existing bundle) directory to write.')


def main(args: argparse.Namespace) -> int:
  workdir = args.workdir or args.workdir_flag
  if not workdir:
    return flags.fail('export', ValueError(
        'give the workdir: mmgenre export W --out BUNDLE'))
  try:
    tagger = tagger_lib.Tagger.from_workdir(workdir, head=args.head)
    out = tagger.export(args.out)
  except (ValueError, OSError) as e:
    return flags.fail('export', e)
  calibrated = [n for n, s in tagger.stages.items()
                if s.thresholds is not None]
  head = '' if tagger.head is None else f'; head {tagger.head.name!r}'
  print(f'Wrote {out} (stages {tagger.order}, final {tagger.final}; '
        f'thresholds for {calibrated or "no stage"}{head}).')
  return 0

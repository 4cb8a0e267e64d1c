"""`mmgenre report W`: report.md and results.json of pipeline workdirs.

  mmgenre report runs/mumu_cosine     # one pipeline workdir
  mmgenre report runs                 # every pipeline workdir beneath runs/

Writes the files (mmgenre_jax/report.py, docs/workdirs.md §3) and prints the
markdown.
"""

import argparse
import sys

from mmgenre_jax import report
from mmgenre_jax import workdir as workdir_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', help='A pipeline workdir (with '
                      f'{workdir_lib.PIPELINE_JSON}), or a directory such as '
                      'runs/ with pipeline workdirs below it.')
  parser.add_argument('--out', default=None,
                      help=f'Directory for {workdir_lib.REPORT_MD} and '
                      f'{workdir_lib.RESULTS_JSON} (default: the workdir).')


def main(args: argparse.Namespace) -> int:
  try:
    text = report.write_report(args.workdir, args.out)
  except (FileNotFoundError, ValueError) as e:
    print(f'mmgenre report: error: {e}', file=sys.stderr)
    return 2
  print(text, end='')
  return 0

"""`mmgenre report W`: report.md, results.json and figures of pipelines.

  mmgenre report runs/mumu_cosine     # one pipeline workdir
  mmgenre report runs                 # every pipeline workdir beneath runs/
  mmgenre report runs --no-figures    # tables; link the figures drawn

Writes the files (mmgenre_jax/reporting/report.py, docs/workdirs.md §3):
report.md, results.json and tables.json (the paper's Tables 1, 3, 4, 7 and
words per genre, mmgenre_jax/reporting/tables.py); draws each pipeline's
W/figures/ (mmgenre_jax/reporting/figures.py) and links them from its
W/report.md, and prints the markdown.
"""

import argparse

from mmgenre_jax.cli import flags
from mmgenre_jax.reporting import report
from mmgenre_jax import workdir as workdir_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', help='A pipeline workdir (with '
                      f'{workdir_lib.PIPELINE_JSON}), or a directory such as '
                      'runs/ with pipeline workdirs below it.')
  parser.add_argument('--out', default=None,
                      help=f'Directory for {workdir_lib.REPORT_MD} and '
                      f'{workdir_lib.RESULTS_JSON} (default: the workdir).')
  parser.add_argument('--no-figures', dest='figures', action='store_false',
                      help='Do not redraw the figures: link those already in '
                      'W/figures/ (mmgenre figures W redraws them).')
  parser.add_argument('--taxonomy', default=None, metavar='TSV',
                      help='Genre taxonomy for the t-SNE figures (see '
                      'mmgenre figures --help).')
  parser.add_argument('--genres', nargs='+', default=None, metavar='GENRE',
                      help='Genres of the words-per-genre section (default: '
                      'those the paper names, Sec 7.5: Rock, Pop, Rap, '
                      'Reggae, Country, Blues).')


def main(args: argparse.Namespace) -> int:
  try:
    text = report.write_report(args.workdir, args.out,
                               figures=args.figures, taxonomy=args.taxonomy,
                               genres=args.genres)
  except (FileNotFoundError, ValueError) as e:
    return flags.fail('report', e)
  print(text, end='')
  return 0

"""`mmgenre figures W`: the paper's figures of a pipeline workdir.

  mmgenre figures runs/mumu_cosine
  mmgenre figures runs/msdi --only confusion_matrices label_auc
  mmgenre figures runs                  # every pipeline workdir beneath

Draws W/figures/<name>.png from what the stages saved (mmgenre_jax/
figures.py; nothing retrains) without recomputing the report's tables; a
figure whose inputs are missing is skipped with one line saying why.
`mmgenre report W` draws them too and links them from W/report.md.
"""

import argparse

from mmgenre_jax.reporting import figures
from mmgenre_jax.reporting import report
from mmgenre_jax.cli import flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', help='A pipeline workdir, or a directory '
                      'such as runs/ with pipeline workdirs below it.')
  parser.add_argument('--only', nargs='+', metavar='NAME',
                      choices=list(figures.FIGURES),
                      help='Draw only these figures (default: all): '
                      + ', '.join(figures.FIGURES) + '.')
  parser.add_argument('--taxonomy', default=None, metavar='TSV',
                      help='Genre taxonomy (label<TAB>parent) for the '
                      'single-parent-label subset of the t-SNE figures '
                      '(default: genre_taxonomy.tsv of the corpus the '
                      'shards were prepared from).')


def main(args: argparse.Namespace) -> int:
  try:
    for workdir in report.find_pipelines(args.workdir):
      figures.write_figures(workdir, args.only, args.taxonomy)
  except (FileNotFoundError, ValueError) as e:
    return flags.fail('figures', e)
  return 0

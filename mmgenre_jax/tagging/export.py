"""`mmgenre export W --out BUNDLE`: everything prediction needs, one folder.

  mmgenre export runs/mumu_cosine --out mumu_cosine_bundle
  mmgenre predict --workdir mumu_cosine_bundle --audio song.mp3

BUNDLE/bundle.json lists the stages (name, kind, inputs) and the final one;
BUNDLE/stages/<name>/ holds config.json, params.msgpack (the best
checkpoint's parameters, and batch statistics for ResNet), labels.tsv,
label_factors.npy (COSINE), thresholds.json (F1-optimal on validation) and,
for modality networks, data/: the shards' manifest.json plus the feature
files (audio_stats.npz, text_vectorizer.json, the enrichment dictionary).
Nothing refers back to the workdir, the corpus or the shards.
"""

import argparse
import sys

from mmgenre_jax.tagging import tagger as tagger_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', nargs='?', default=None,
                      help='Pipeline workdir, stage workdir or bundle.')
  parser.add_argument('--workdir', dest='workdir_flag', default=None,
                      help=argparse.SUPPRESS)
  parser.add_argument('--out', required=True, metavar='BUNDLE',
                      help='New (or existing bundle) directory to write.')


def main(args: argparse.Namespace) -> int:
  workdir = args.workdir or args.workdir_flag
  if not workdir:
    print('mmgenre export: give the workdir: mmgenre export W --out BUNDLE',
          file=sys.stderr)
    return 2
  try:
    tagger = tagger_lib.Tagger.from_workdir(workdir)
    # Loads the feature files now, so a missing one fails before writing.
    for stage in tagger.stages.values():
      if stage.kind in tagger_lib.INPUT_MODALITIES:
        tagger._data(stage)  # pylint: disable=protected-access
    out = tagger.export(args.out)
  except (ValueError, OSError) as e:
    print(f'mmgenre export: {e}', file=sys.stderr)
    return 2
  calibrated = [n for n, s in tagger.stages.items()
                if s.thresholds is not None]
  print(f'Wrote {out} (stages {tagger.order}, final {tagger.final}; '
        f'thresholds for {calibrated or "no stage"}).')
  return 0

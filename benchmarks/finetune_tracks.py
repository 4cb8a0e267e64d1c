r"""The single-track case of benchmarks/finetune.py (issue 27).

Labels the base model already predicts, under new names: the taxonomy's
top-level genres (`new <genre>`), which the base pipeline was trained on.
Examples: one track per training album of the base split (the first in the
catalog's order for draw 0, a random one for the others), labelled with its
album's top-level genres (an album with none is a negative). Evaluation:
every track of the val + test albums, the same tracks for every method,
macro ROC-AUC over the genres:

  - finetune: `mmgenre finetune`'s work (fit.finetune) on those tracks, its
    head scoring the evaluation tracks through Tagger.embed's vectors;
  - finetune, no model scores: the same without the base model's own
    scores as answers (selection.fit_calibrated, base=None);
  - finetune, C by the best mean (before issue 27): the regression with C
    from 0.001..1 by the best mean held-out AUC, as finetune chose it
    before;
  - base model: its own scores for those genres (the `<name>_scores`
    vector of the network that answers for audio alone);
  - MFCC probe: selection.fit_calibrated on each track's MFCC statistics.

  rows = finetune_tracks.run(base_workdir, truth, tracks, taxonomy, splits,
                             out, [0, 1, 2], mfcc_vector, macro_auc)

(mfcc_vector and macro_auc are benchmarks/finetune.py's, passed in: that
script is run as __main__.) Run alone, the same on the main job's MuMu
model (after ./run.sh; its pipeline names paths relative to the repo):

  python benchmarks/finetune_tracks.py [--runs runs] [--pipeline mumu_cosine]
      [--out runs/bench/finetune_tracks] [--samples 0 1 2 3 4]
"""

import argparse
import csv
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import tagger as tagger_lib
from mmgenre_jax.tagging.finetune import fit
from mmgenre_jax.tagging.finetune import selection

# The C grid and rule of finetune before issue 27 (commit 40135f9).
OLD_CS = (0.001, 0.01, 0.1, 1.0)
METHODS = ('finetune', 'finetune, no model scores',
           'finetune, C by the best mean (before issue 27)', 'base model',
           'MFCC probe')


def draw_tracks(train_ids, tracks, sample: int):
  """One track per training album: the first (sample 0) or a random one."""
  rng = np.random.default_rng(sample)
  return [tracks[a][0] if sample == 0 else tracks[a][rng.integers(
      len(tracks[a]))] for a in train_ids if tracks[a]]


def _old_rule_head(x, targets, labels, name):
  """finetune's regression as chosen before issue 27."""
  helds = [selection.holdout_split(targets, labels,
                                   selection.DEFAULT_HOLDOUT_FRACTION, k)
           for k in range(selection.SELECTION_SPLITS)]
  means = {c: float(np.mean(selection.heldout_aucs(
      x, targets, helds, labels, name, 0, c))) for c in OLD_CS}
  best = OLD_CS[0]
  for c in OLD_CS:
    if means[c] > means[best]:
      best = c
  return selection.fit_head(x, targets, labels, name, 0, best)


def run(workdir, truth, tracks, taxonomy, splits, out, samples,
        mfcc_vector, macro_auc):
  """JSON rows (sample, method, macro_auc, per_label) of every method.

  Args:
    workdir: the base pipeline.
    truth: album id -> its labels; tracks: album id -> its track paths.
    taxonomy: label -> parent; splits: the base split's album ids.
    out: where the heads and the embedding cache go.
    samples: the seeds of the track draws.
    mfcc_vector, macro_auc: benchmarks/finetune.py's.
  """
  tagger = tagger_lib.Tagger.from_workdir(workdir, head=False)
  genres = sorted(g for g in tagger.labels if not taxonomy.get(g))
  labels = [f'new {g}' for g in genres]
  album_of = {t: a for a, ts in tracks.items() for t in ts}
  evaluation = [t for a in splits['val'] + splits['test'] for t in tracks[a]]
  y_of = lambda paths: np.array([[g in truth[album_of[p]] for g in genres]
                                 for p in paths])
  cache = out / 'cache'
  vectors, errors, _ = fit.embed_cached(
      tagger, [items_lib.Item(p, [p]) for p in evaluation], cache,
      progress=False)
  assert not errors, errors
  eval_vectors = dict(zip(evaluation, vectors))
  name = fit.default_representation(tagger, [items_lib.Item(evaluation[0],
                                                            [evaluation[0]])])
  own = np.stack([v[f'{name}_scores'] for v in vectors])
  own = own[:, [tagger.labels.index(g) for g in genres]]
  mfcc = {}
  found = []
  for sample in samples:
    train = draw_tracks(splits['train'], tracks, sample)
    examples = [(items_lib.Item(p, [p]), [labels[j] for j, g in
                                          enumerate(genres)
                                          if g in truth[album_of[p]]])
                for p in train]
    head, summary = fit.finetune(tagger, examples, out / f'head_s{sample}',
                                 cache_dir=cache, progress=False)
    train_vectors, _, _ = fit.embed_cached(
        tagger, [item for item, _ in examples], cache, progress=False)
    x = np.stack([v[name] for v in train_vectors])
    x_eval = np.stack([eval_vectors[p][name] for p in evaluation])
    y_train, y_eval = y_of(train), y_of(evaluation)
    plain, _ = selection.fit_calibrated(x, y_train, labels, name)
    for p in train + evaluation:
      if p not in mfcc:
        mfcc[p] = mfcc_vector([p])
    m_train = np.stack([mfcc[p] for p in train])
    m_eval = np.stack([mfcc[p] for p in evaluation])
    probe, _ = selection.fit_calibrated(m_train, y_train, labels, 'mfcc')
    scores = {
        METHODS[0]: head.scores(np.stack([head.vector(eval_vectors[p])
                                          for p in evaluation])),
        METHODS[1]: plain.scores(x_eval),
        METHODS[2]: _old_rule_head(x, y_train, labels, name).scores(x_eval),
        METHODS[3]: own,
        METHODS[4]: probe.scores(m_eval)}
    answers = {label: held['answer']
               for label, held in summary['heldout'].items()}
    for method, values in scores.items():
      auc, per = macro_auc(y_eval, values)
      found.append({'section': 'finetune single tracks', 'sample': sample,
                    'method': method, 'representation': name,
                    'train_tracks': len(train),
                    'eval_tracks': len(evaluation), 'macro_auc': round(auc, 4),
                    'per_label': {genres[j]: round(v, 3)
                                  for j, v in per.items()},
                    **({'c': summary['c'], 'answers': answers}
                       if method == METHODS[0] else {})})
  return found


def table(found, samples) -> str:
  """The markdown table of `run`'s rows: mean ± sd over the draws."""
  head = found[0]
  lines = [f'| {" | ".join(METHODS)} |  (macro ROC-AUC over the top-level '
           f'genres, {head["train_tracks"]} training tracks, '
           f'{head["eval_tracks"]} evaluation tracks; mean ± sd over '
           f'{len(samples)} draws)', '|' + '---|' * len(METHODS)]
  cells = []
  for method in METHODS:
    values = [r['macro_auc'] for r in found if r['method'] == method]
    cells.append(f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}'
                 if len(values) > 1 else f'{values[0]:.3f}')
  lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def mumu_run(runs: pathlib.Path):
  """(truth, tracks, taxonomy, splits) of ./run.sh's embedded MuMu corpus:
  album id -> its genres, album id -> its tracks' audio paths."""
  corpus = runs / 'data' / 'synthetic'
  with open(corpus / layout.MUMU_MULTI_LABEL_CSV, newline='',
            encoding='utf-8') as f:
    rows = list(csv.DictReader(f))
  files = {os.path.splitext(name)[0]: name
           for name in os.listdir(corpus / layout.AUDIO_DIR)}
  truth, tracks = {}, {}
  for row in rows:
    truth[row['amazon_id']] = set(row['genres'].split(','))
    tracks.setdefault(row['amazon_id'], []).append(os.path.abspath(
        corpus / layout.AUDIO_DIR / files[row['MSD_track_id']]))
  splits = splits_lib.read_splits(runs / 'data' / 'mumu_shards' /
                                  layout.SPLITS_DIR)
  return (truth, tracks, mumu.read_taxonomy(corpus /
                                            layout.MUMU_TAXONOMY_TSV), splits)


def main():
  import finetune  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--runs', default='runs')
  parser.add_argument('--pipeline', default='mumu_cosine')
  parser.add_argument('--out', default='runs/bench/finetune_tracks')
  parser.add_argument('--samples', type=int, nargs='+', default=[0, 1, 2, 3,
                                                                 4])
  args = parser.parse_args()
  runs = pathlib.Path(args.runs)
  truth, tracks, taxonomy, splits = mumu_run(runs)
  found = run(runs / args.pipeline, truth, tracks, taxonomy, splits,
              pathlib.Path(args.out).resolve(), args.samples,
              finetune.mfcc_vector, finetune.macro_auc)
  for row in found:
    print(json.dumps(row))
  print('\n' + table(found, args.samples) + '\n', flush=True)


if __name__ == '__main__':
  main()

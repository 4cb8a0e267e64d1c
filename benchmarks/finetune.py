r"""New labels from a few examples: the finetuned head against two baselines.

  python benchmarks/finetune.py [--out runs/bench/finetune] [--albums 600]
      [--held-out 6] [--shots 10 30] [--seed 0] [--samples 0 1 2]
      [--sections albums tracks]

One run, the same items for every method (issue 14's measure):

 1. The embedded corpus as a catalog (`mmgenre synth --format catalog`).
    The held-out labels are its --held-out most frequent leaf sub-genres
    (children in taxonomy.tsv, e.g. Dance Pop under Pop). They are removed
    from the catalog's `labels` column (their albums keep every other label,
    the parent included), and the whole paper pipeline
    (configs/catalog_cosine.py:cpu) is trained on it: the base model has
    never seen them.
 2. For each N in --shots: N positive training albums per held-out label
    (from the base model's train split; an album picked for one label
    counts for all its held-out labels) plus N negatives (albums with none
    of them), drawn once per --samples seed. Evaluation: every album of the base val + test splits
    (never trained on), each held-out label scored against all of them.
 3. Three methods on exactly those examples, ROC-AUC per label, macro mean:
    - finetune: `mmgenre finetune`'s head (selection.fit_calibrated: one
      balanced logistic regression per label on the L2-normalised,
      standardised representation, or the base model's own score of one
      of its labels; C, those answers and the thresholds chosen on 30 %
      held-out parts of the examples) on the base model's fused A+T+I
      representation (`fusion`, with the final fusion's scores) and, audio
      alone, on its audio CNN's album-mean vector (with its scores); also
      a regression with scikit-learn's default C = 1 (the first version's
      fixed choice);
    - mfcc: the same calibrated linear probe on MFCC statistics (20 MFCCs, mean and std
      over the first 30 s of each track, averaged over the album's tracks);
    - scratch: configs/catalog_cosine.py:cpu trained from scratch on the
      few examples alone (80 % train, 20 % val; labels: the held-out ones,
      negatives labelled `none`), scored on the same evaluation albums (its
      final A+T+I stage's test scores).
    The representations are those the base pipeline extracted for its
    splits (the vectors `mmgenre finetune` computes from the files; this
    skips decoding ~3,000 tracks twice). The finetune and mfcc heads see no
    validation set; scratch uses its 20 % for early stopping.

 4. The single-track case (issue 27; benchmarks/finetune_tracks.py): labels
    the base model knows (the taxonomy's top-level genres, under new
    names), one track per training album as examples, every track of the
    val + test albums to evaluate: `mmgenre finetune`'s head vs the base
    model's own scores vs an MFCC probe, per --samples draw of the tracks.

Prints one JSON line per (sample, N, method, representation) and a
markdown table of the mean (and sd) over the samples, per section. Takes
~45 min on 2 cores (corpus ~5, base pipeline ~4-8, each scratch run ~1.5-3,
single tracks ~5); a rerun reuses the corpus, the base model, finished
scratch runs and the tracks' embeddings.
"""

import argparse
import collections
import csv
import json
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from sklearn import metrics as sk_metrics

from input_pipeline.formats import catalog
from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax import cli
from mmgenre_jax.data import representations
from mmgenre_jax.tagging.finetune import selection

REPO = pathlib.Path(__file__).resolve().parent.parent
NONE_LABEL = 'none'
IMAGE_SIZE = 64
MFCC_SECONDS = 30.0
SCRATCH = 'catalog_cosine:cpu A+T+I'


def _log(message: str) -> None:
  print(f'[finetune bench] {message}', file=sys.stderr, flush=True)


def _read_catalog(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _write_catalog(path, rows, columns) -> pathlib.Path:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore',
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
  return pathlib.Path(path)


def _labels(row):
  return [l for l in row['labels'].split('|') if l]


def held_out_labels(rows, taxonomy, count: int):
  """The `count` most frequent leaf sub-genres (ties by name)."""
  parents = {p for p in taxonomy.values() if p}
  freq = collections.Counter(l for r in rows for l in _labels(r))
  leaves = [l for l in freq if taxonomy.get(l) and l not in parents]
  return sorted(sorted(leaves), key=lambda l: -freq[l])[:count]


def _run(args, what: str) -> None:
  start = time.time()
  _log(f'{what} ...')
  subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
  _log(f'{what}: {time.time() - start:.0f} s')


def train_pipeline(csv_path, out: pathlib.Path, what: str) -> pathlib.Path:
  """Prepares a catalog and trains catalog_cosine:cpu on it; returns W."""
  shards, workdir = out / 'shards', out / 'W'
  if not (shards / layout.MANIFEST_JSON).exists():
    assert cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                     str(csv_path), '--out', str(shards), '--image-size',
                     str(IMAGE_SIZE), '--no-progress']) == 0
  _run([sys.executable, 'main.py', '--config=configs/catalog_cosine.py:cpu',
        f'--workdir={workdir}', f'--config.data.shard_dir={shards}'], what)
  return workdir


def few_shot(train_ids, targets, shots: int, seed: int):
  """Album ids: `shots` positives per label, then `shots` negatives."""
  rng = np.random.default_rng(seed)
  chosen = []
  for j in range(targets.shape[1]):
    have = int(targets[chosen, j].sum()) if chosen else 0
    pool = [i for i in rng.permutation(len(train_ids))
            if targets[i, j] and i not in chosen]
    chosen += pool[:max(0, shots - have)]
  negatives = [i for i in rng.permutation(len(train_ids))
               if not targets[i].any()]
  chosen += negatives[:shots]
  return [train_ids[i] for i in chosen]


def _album_vectors(workdir, stage, name, splits, key='representation'):
  """album id -> its vector of stage's representation (album means), or of
  its label scores (key 'scores')."""
  found = {}
  for split in splits:
    data = representations.load_representations(workdir / stage, name, split)
    albums, _, (means,) = representations.group_mean(
        data['album_ids'], data[key])
    found.update(zip(albums.tolist(), means))
  return found


def mfcc_vector(paths):
  """float32 [40]: MFCC mean and std of each track, averaged over tracks."""
  import librosa  # pylint: disable=g-import-not-at-top
  stats = []
  for path in paths:
    y, sr = librosa.load(path, sr=22050, mono=True, duration=MFCC_SECONDS)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    stats.append(np.concatenate([mfcc.mean(1), mfcc.std(1)]))
  return np.mean(stats, 0).astype(np.float32)


def macro_auc(targets, scores):
  """Mean ROC-AUC over the labels with positives and negatives, per label."""
  per = {}
  for j in range(targets.shape[1]):
    if 0 < targets[:, j].sum() < len(targets):
      per[j] = float(sk_metrics.roc_auc_score(targets[:, j], scores[:, j]))
  return float(np.mean(list(per.values()))), per


def probe(vectors, train_ids, eval_ids, labels, y_train, y_eval, name,
          c=None, model_labels=None):
  """Macro AUC on eval of `mmgenre finetune`'s head (chosen on its own
  held-out parts, selection.fit_calibrated; with the base model's scores
  `vectors[name + '_scores']` when there), or of a fixed-C regression."""
  stack = lambda key, ids: np.stack([vectors[key][a] for a in ids])
  x = stack(name, train_ids)
  scores = f'{name}_scores'
  base = (selection.BaseScores(scores, model_labels, stack(scores, train_ids))
          if scores in vectors else None)
  if c is None:
    head, _ = selection.fit_calibrated(x, y_train, labels, name, base=base)
  else:
    head = selection.fit_head(x, y_train, labels, name, c=c)
  x_eval = selection.head_input(
      stack(name, eval_ids), base and selection.BaseScores(
          scores, model_labels, stack(scores, eval_ids)), head)
  return macro_auc(y_eval, head.scores(x_eval))


def scratch_auc(corpus, rows, picked, eval_ids, labels, truth, out, seed):
  """catalog_cosine:cpu from scratch on the picked albums; AUC on eval."""
  rng = np.random.default_rng(seed)
  val = set(rng.choice(picked, size=max(2, len(picked) // 5),
                       replace=False).tolist())
  by_id = {r['album_id']: dict(r) for r in rows}
  scratch = []
  for album_id in picked + eval_ids:
    row = by_id[album_id]
    mine = [l for l in labels if l in truth[album_id]] or [NONE_LABEL]
    row['labels'] = '|'.join(mine)
    row['split'] = ('test' if album_id in eval_ids else
                    'val' if album_id in val else 'train')
    scratch.append(row)
  out.mkdir(parents=True, exist_ok=True)
  path = _write_catalog(corpus / f'scratch_{out.name}.csv', scratch,
                        catalog.COLUMNS)
  workdir = train_pipeline(path, out, f'scratch pipeline ({out.name})')
  data = representations.load_representations(
      workdir / 'audio_text_image', 'fusion', 'test')
  names = [str(n) for n in data['label_names']]
  index = {a: i for i, a in enumerate(data['album_ids'].tolist())}
  scores = np.stack([data['scores'][index[a]] for a in eval_ids])
  scores = scores[:, [names.index(l) for l in labels]]
  return macro_auc(np.stack([[l in truth[a] for l in labels]
                             for a in eval_ids]), scores)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='runs/bench/finetune')
  parser.add_argument('--albums', type=int, default=600)
  parser.add_argument('--held-out', type=int, default=6)
  parser.add_argument('--shots', type=int, nargs='+', default=[10, 30])
  parser.add_argument('--seed', type=int, default=0, help='Corpus seed.')
  parser.add_argument('--samples', type=int, nargs='+', default=[0, 1, 2],
                      help='Seeds of the few-shot draws.')
  parser.add_argument('--sections', nargs='+', default=['albums', 'tracks'],
                      choices=['albums', 'tracks'],
                      help='albums: new sub-genres from album examples; '
                      'tracks: known genres from single tracks.')
  args = parser.parse_args()
  out = (REPO / args.out).resolve()
  corpus = out / 'corpus'
  assert cli.main(['synth', '--format', 'catalog', '--out', str(corpus),
                   '--albums', str(args.albums), '--seed', str(args.seed),
                   '--no-progress']) == 0
  rows = _read_catalog(corpus / layout.CATALOG_CSV)
  taxonomy = mumu.read_taxonomy(corpus / layout.CATALOG_TAXONOMY_TSV)
  labels = held_out_labels(rows, taxonomy, args.held_out)
  truth = {r['album_id']: set(_labels(r)) for r in rows}
  _log(f'held-out labels: {labels}')
  base_rows = [dict(r, labels='|'.join(l for l in _labels(r)
                                       if l not in labels)) for r in rows]
  base_csv = _write_catalog(corpus / 'base_catalog.csv', base_rows,
                            catalog.COLUMNS[:-1])
  base = train_pipeline(base_csv, out / 'base', 'base pipeline')
  splits = splits_lib.read_splits(out / 'base' / 'shards' / 'splits')
  train_ids = splits['train']
  eval_ids = splits['val'] + splits['test']
  tracks = {r['album_id']: [str(corpus / p) for p in r['audio'].split(';')
                            if p] for r in rows}
  if 'tracks' in args.sections:
    _tracks_section(base, truth, tracks, taxonomy, splits, out / 'tracks',
                    args.samples)
  if 'albums' in args.sections:
    _albums_section(args, base, corpus, rows, out, tracks, labels, truth,
                    train_ids, eval_ids)


def _tracks_section(base, truth, tracks, taxonomy, splits, out, samples):
  """Step 4 of the module docstring: its JSON lines and table."""
  import finetune_tracks  # pylint: disable=g-import-not-at-top
  found = finetune_tracks.run(base, truth, tracks, taxonomy, splits, out,
                              samples, mfcc_vector, macro_auc)
  for row in found:
    print(json.dumps(row))
  print('\n' + finetune_tracks.table(found, samples) + '\n', flush=True)


def _albums_section(args, base, corpus, rows, out, tracks, labels, truth,
                    train_ids, eval_ids):
  """Steps 2-3 of the module docstring: JSON lines and table."""
  final = ('audio_text_image', 'fusion')
  model_labels = [str(n) for n in representations.load_representations(
      base / final[0], final[1], 'train')['label_names']]
  vectors = {'mfcc': {}}
  for key, (stage, name) in (('fusion', final), ('audio', ('audio',
                                                             'audio'))):
    vectors[key] = _album_vectors(base, stage, name, representations.SPLITS)
    vectors[f'{key}_scores'] = _album_vectors(
        base, stage, name, representations.SPLITS, 'scores')
  results = []
  for sample in args.samples:
    for shots in args.shots:
      results += _methods(corpus, rows, out, vectors, tracks, labels, truth,
                          train_ids, eval_ids, shots, sample, model_labels)
  for result in results:
    print(json.dumps({'section': 'finetune', 'held_out': labels, **result}))
  print(f'\n| examples per label | finetune (fusion) | finetune (audio) | '
        f'MFCC probe | from scratch | finetune, C = 1 |  (macro ROC-AUC over {len(labels)} '
        f'held-out labels, {len(eval_ids)} albums; mean ± sd over '
        f'{len(args.samples)} draws)\n|---|---|---|---|---|---|')
  columns = (('finetune', 'fusion'), ('finetune', 'audio'), ('mfcc', 'mfcc'),
             ('scratch', SCRATCH), ('finetune C=1', 'fusion'))
  for shots in args.shots:
    cells = []
    for method, name in columns:
      values = [r['macro_auc'] for r in results if r['shots'] == shots and
                r['method'] == method and r['representation'] == name]
      cells.append(f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}'
                   if len(values) > 1 else f'{values[0]:.3f}')
    print(f'| {shots} | ' + ' | '.join(cells) + ' |')


def _methods(corpus, rows, out, vectors, tracks, labels, truth, train_ids,
             eval_ids, shots, sample, model_labels):
  """The rows of every method for one few-shot draw."""
  y_of = lambda ids: np.array([[l in truth[a] for l in labels] for a in ids])
  picked = few_shot(train_ids, y_of(train_ids), shots, sample)
  y_train, y_eval = y_of(picked), y_of(eval_ids)
  needed = [a for a in picked + eval_ids if a not in vectors['mfcc']]
  start = time.time()
  vectors['mfcc'].update({a: mfcc_vector(tracks[a]) for a in needed})
  _log(f'MFCC of {len(needed)} albums: {time.time() - start:.0f} s')
  common = {'sample': sample, 'shots': shots, 'train_albums': len(picked),
            'eval_albums': len(eval_ids)}
  found = []
  for method, name, c in (('finetune', 'fusion', None),
                          ('finetune', 'audio', None),
                          ('mfcc', 'mfcc', None),
                          ('finetune C=1', 'fusion', 1.0)):
    auc, per = probe(vectors, picked, eval_ids, labels, y_train, y_eval,
                     name, c, model_labels)
    found.append({**common, 'method': method, 'representation': name,
                  'macro_auc': round(auc, 4),
                  'per_label': {labels[j]: round(v, 3)
                                for j, v in per.items()}})
  auc, per = scratch_auc(corpus, rows, picked, eval_ids, labels, truth,
                         out / f'scratch_{shots}_s{sample}', sample)
  found.append({**common, 'method': 'scratch', 'representation': SCRATCH,
                'macro_auc': round(auc, 4),
                'per_label': {labels[j]: round(v, 3)
                              for j, v in per.items()}})
  return found


if __name__ == '__main__':
  main()

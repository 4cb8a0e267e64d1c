"""New labels from a few examples: the work of `mmgenre finetune`.

  mmgenre finetune --workdir W --labels moods.csv --out moods_head
  mmgenre predict --workdir W --head moods_head --audio song.mp3

The examples (a labels CSV of audio files, album folders or catalog
album_ids, an empty labels cell a negative) are read by examples.py.

The trained model embeds each item once (Tagger.embed): the vectors are
cached as CACHE/<sha256>.npz, the key hashing the model (head.model_identity)
and the bytes of the item's files, so a second run on the same files runs no
network. A one-vs-rest logistic regression per label (scikit-learn, class
weights balanced) is fitted on one representation, L2-normalised and
standardised; its L2 strength (REGULARISATION_CS, by the mean AUC over
SELECTION_SPLITS held-out splits) and per-label thresholds (F1-optimal, on
the first) are chosen on held-out parts (`holdout_split`: about
`holdout_fraction` of each label's examples, at least
examples.MIN_HELDOUT_POSITIVES, stratified) scored by heads fitted without
them; the head is then refitted on every item and written (head.py).

The representation, by default, is the one of the network `predict` answers
with for the modalities every item has (graph.py): the final fusion
('fusion') for albums with every modality the model reads, the fusion of
audio + MM_AUDIO ('fusion_<stage>') or the audio CNN's ('audio') for audio
alone, ...

  examples, skipped = examples_lib.read_labels('moods.csv', 'catalog.csv')
  head, summary = finetune.finetune(tagger, examples, 'moods_head')
"""

import hashlib
import os
import pathlib
import time
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from sklearn import linear_model
from sklearn import metrics as sk_metrics
import tqdm

from input_pipeline import fileio
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging.finetune import examples as examples_lib
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

DEFAULT_HOLDOUT_FRACTION = 0.3
# Inverse L2 strengths of the logistic regressions tried; the one with the
# best mean held-out AUC is kept (`calibrate`). A few dozen examples in a
# 576-d fusion space need strong regularisation: on the embedded corpus
# (BENCHMARKS.md §7) scikit-learn's default C = 1 gave held-out-label AUC
# 0.855 / 0.818 at 10 / 30 examples per label, C = 0.01 0.911 / 0.899.
REGULARISATION_CS = (0.001, 0.01, 0.1, 1.0)
# Held-out splits (seeds seed, seed + 1, ...) whose mean AUC chooses C: one
# split of a few dozen examples picks a poor C about one draw in three.
SELECTION_SPLITS = 3


# --------------------------------------------------------------- embedding


def _file_digest(path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def cache_key(identity: str, item: items_lib.Item) -> str:
  """sha256 of the model identity and the item's file contents by role.

  Raises:
    OSError: a file cannot be read.
  """
  parts = [identity] + [f'audio:{_file_digest(p)}' for p in item.audio]
  parts += [f'{role}:{_file_digest(p)}' for role, p in
            (('cover', item.cover), ('reviews', item.reviews)) if p]
  return hashlib.sha256('\n'.join(parts).encode('utf-8')).hexdigest()


def _read_cached(path: pathlib.Path) -> Optional[Dict[str, np.ndarray]]:
  """A cached item's vectors; None when absent or unreadable (redone)."""
  if not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as data:
      return {name: data[name] for name in data.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile):
    return None


def embed_cached(tagger, items: Sequence[items_lib.Item], cache_dir, *,
                 identity: Optional[str] = None, progress: bool = True
                 ) -> Tuple[List[Optional[Dict[str, np.ndarray]]],
                            List[Tuple[str, str]], int]:
  """Tagger.embed vectors of each item, from the cache when there.

  Args:
    tagger: the model.
    items: the inputs.
    cache_dir: where CACHE_KEY.npz files are read and written (atomically,
      one as soon as its item is embedded: an interrupted run keeps them).
    identity: head.model_identity(tagger), if already computed.
    progress: show a progress bar (on stderr) for two items or more.

  Returns:
    ([{name: float32 [D]} or None (failed) per item], [(input, error)],
     how many items the networks ran on).
  """
  identity = identity or head_lib.model_identity(tagger)
  cache_dir = pathlib.Path(cache_dir)
  found, errors, computed = [], [], 0
  for item in tqdm.tqdm(items, desc='embed', unit='item',
                        disable=not progress or len(items) < 2):
    try:
      path = cache_dir / f'{cache_key(identity, item)}.npz'
    except OSError as e:
      errors.append((item.key, f'cannot read its files ({e})'))
      found.append(None)
      continue
    vectors = _read_cached(path)
    if vectors is None:
      got, failed = embed.embed_items(tagger, [item], progress=False)
      if failed:
        errors.extend(failed)
        found.append(None)
        continue
      vectors = {name: rows[0][1] for name, rows in got.items()}
      with fileio.atomic_open(path) as f:
        np.savez(f, **vectors)
      computed += 1
    found.append(vectors)
  return found, errors, computed


def item_modalities(item: items_lib.Item) -> frozenset:
  """The raw modalities an item gives (audio, image, text)."""
  return frozenset(m for m, given in (('audio', item.audio),
                                      ('image', item.cover),
                                      ('text', item.reviews)) if given)


def default_representation(tagger, items: Sequence[items_lib.Item]) -> str:
  """The representation of the network that answers for the modalities
  every item gives (the first when the answer is a mean of several).

  Raises:
    ValueError: the items share no modality the model reads.
  """
  common = frozenset(tagger.modalities())
  for item in items:
    common &= item_modalities(item)
  answer = tagger.graph.answer(common) if common else []
  if not answer:
    raise ValueError(f'the examples share no modality this model reads '
                     f'({tagger.modalities()}) and no stage answers for '
                     f'{sorted(common)}; give --representation NAME.')
  return tagger.representation_name(answer[0])


def stack_representation(keys: Sequence[str],
                         vectors: Sequence[Mapping[str, np.ndarray]],
                         name: str) -> np.ndarray:
  """float32 [N, D]: every item's vector `name`.

  Raises:
    ValueError: naming the items that lack it.
  """
  lacking = [k for k, v in zip(keys, vectors) if name not in v]
  if lacking:
    given = sorted(set().union(*[set(v) for v in vectors]))
    shown = ', '.join(lacking[:5]) + (', ...' if len(lacking) > 5 else '')
    raise ValueError(
        f'representation {name!r}: {len(lacking)} of the {len(keys)} '
        f'examples do not give it ({shown}); the examples give {given}. '
        'Give those examples the modalities it needs, or choose another '
        'with --representation.')
  return np.stack([v[name] for v in vectors]).astype(np.float32)


# ------------------------------------------------------------ the head


def holdout_split(targets: np.ndarray, labels: Sequence[str],
                  fraction: float, seed: int) -> np.ndarray:
  """bool [N]: the items held out to calibrate the thresholds.

  Labels rarest first: about `fraction` of each label's positives (at least
  MIN_HELDOUT_POSITIVES) are held out, one negative too, then random items
  up to `fraction` of all; an item is held out only if every label keeps
  MIN_TRAIN_POSITIVES positives and one negative to fit on (examples.py).

  Raises:
    ValueError: a label cannot get its held-out examples that way.
  """
  min_fit = examples_lib.MIN_TRAIN_POSITIVES
  min_held = examples_lib.MIN_HELDOUT_POSITIVES
  targets = np.asarray(targets, bool)
  rng = np.random.default_rng(seed)
  held = np.zeros(len(targets), bool)
  fit_pos = targets.sum(0)
  fit_neg = len(targets) - fit_pos

  def hold(i) -> bool:
    if held[i] or (fit_pos - targets[i] < min_fit).any() or (
        fit_neg - ~targets[i] < 1).any():
      return False
    held[i] = True
    fit_pos[:] -= targets[i]
    fit_neg[:] -= ~targets[i]
    return True

  order = np.argsort(targets.sum(0), kind='stable')
  for j in order:
    positives = np.flatnonzero(targets[:, j])
    want = max(min_held, int(round(fraction * len(positives))))
    for i in rng.permutation(positives):
      if targets[held, j].sum() >= want:
        break
      hold(i)
  for j in order:
    for i in rng.permutation(np.flatnonzero(~targets[:, j])):
      if (~targets[held, j]).any() or hold(i):
        break
  for i in rng.permutation(len(targets)):
    if held.sum() >= int(round(fraction * len(targets))):
      break
    hold(i)
  short = [labels[j] for j in order
           if targets[held, j].sum() < min_held or
           not (~targets[held, j]).any()]
  if short:
    raise ValueError(
        f'cannot hold out {min_held} examples (and an item '
        f'without it) of {short} while keeping {min_fit} to fit: '
        'their examples are the same few items as other labels\'; add '
        'examples of them.')
  return held


def fit_head(x: np.ndarray, targets: np.ndarray, labels: Sequence[str],
             representation: str, seed: int = 0,
             c: float = 1.0) -> head_lib.Head:
  """One logistic regression per label on normalised representations.

  Args:
    x: float [N, D] representations.
    targets: bool [N, L], each label with positives and negatives.
    labels, representation: the head's names.
    seed: the solvers' seed.
    c: the inverse L2 strength.

  Returns:
    A Head without thresholds (all NaN).
  """
  unit = head_lib.l2_normalise(x)
  mean = unit.mean(0)
  # A constant dimension carries nothing; scale 1 keeps it at 0.
  scale = np.where(unit.std(0) > head_lib.EPSILON, unit.std(0), 1.0)
  z = (unit - mean) / scale
  coef, intercept = [], []
  for j in range(targets.shape[1]):
    model = linear_model.LogisticRegression(
        C=c, class_weight='balanced', max_iter=1000,
        random_state=seed).fit(z, targets[:, j])
    coef.append(model.coef_[0])
    intercept.append(model.intercept_[0])
  return head_lib.Head(
      labels=list(labels), representation=representation,
      coef=np.asarray(coef, np.float32),
      intercept=np.asarray(intercept, np.float32),
      mean=mean.astype(np.float32), scale=scale.astype(np.float32),
      thresholds=np.full(len(labels), np.nan))


def _heldout_aucs(x, targets, held, labels, representation, seed, c):
  """(AUC per label on the held-out items, their scores [H, L]) of a head
  fitted with C = c on the others."""
  partial = fit_head(x[~held], targets[~held], labels, representation, seed,
                     c)
  scores = partial.scores(x[held])
  return [float(sk_metrics.roc_auc_score(targets[held, j], scores[:, j]))
          for j in range(len(labels))], scores


def choose_c(x: np.ndarray, targets: np.ndarray, helds: Sequence[np.ndarray],
             labels: Sequence[str], representation: str, seed: int
             ) -> Tuple[float, Dict[float, float]]:
  """The C of REGULARISATION_CS with the best mean held-out AUC over the
  held-out splits `helds` (the strongest of equals), and every C's."""
  by_c = {c: float(np.mean([np.mean(_heldout_aucs(
      x, targets, held, labels, representation, seed, c)[0])
                            for held in helds]))
          for c in REGULARISATION_CS}
  best = REGULARISATION_CS[0]
  for c in REGULARISATION_CS:
    if by_c[c] > by_c[best]:
      best = c
  return best, by_c


def calibrate(x: np.ndarray, targets: np.ndarray, held: np.ndarray,
              labels: Sequence[str], representation: str, seed: int,
              c: float) -> Tuple[np.ndarray, Dict[str, Dict[str, float]]]:
  """Thresholds F1-optimal on the held-out items for a head fitted on the
  others with C = c, and its held-out metrics.

  Returns:
    (float64 [L], {label: {'positives', 'auc', 'f1'}}).
  """
  aucs, scores = _heldout_aucs(x, targets, held, labels, representation,
                               seed, c)
  thresholds, f1 = thresholds_lib.f1_optimal(scores, targets[held])
  return thresholds, {label: {'positives': int(targets[held, j].sum()),
                              'auc': aucs[j], 'f1': float(f1[j])}
                      for j, label in enumerate(labels)}


def fit_calibrated(x: np.ndarray, targets: np.ndarray,
                   labels: Sequence[str], representation: str, *,
                   holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
                   seed: int = 0) -> Tuple[head_lib.Head, Dict[str, Any]]:
  """The head finetune writes: C chosen on SELECTION_SPLITS held-out splits
  (`choose_c`), thresholds on the first (`calibrate`), then the head
  refitted on every item with that C.

  Args:
    x: float [N, D] representations; targets: bool [N, L].

  Returns:
    (the head with thresholds, {'items': held-out count, 'c', 'auc_by_c',
     'labels'}).
  """
  helds = [holdout_split(targets, labels, holdout_fraction, seed + k)
           for k in range(SELECTION_SPLITS)]
  c, by_c = choose_c(x, targets, helds, labels, representation, seed)
  thresholds, heldout = calibrate(x, targets, helds[0], labels,
                                  representation, seed, c)
  head = fit_head(x, targets, labels, representation, seed, c)
  head.thresholds = thresholds
  return head, {'items': int(helds[0].sum()), 'c': c, 'auc_by_c': by_c,
                'labels': heldout}


def check_out(out) -> pathlib.Path:
  """`out` as a path if it is new, empty, a head or only a cache.

  Raises:
    ValueError: it holds something else (nothing is overwritten).
  """
  out = pathlib.Path(out)
  if out.exists() and not out.is_dir():
    raise ValueError(f'--out {out} is a file; give a new directory.')
  others = [p.name for p in out.iterdir()] if out.is_dir() else []
  others = [n for n in others if n != head_lib.CACHE_DIR]
  if others and not head_lib.is_head(out):
    raise ValueError(f'--out {out} exists and is not a finetuned head (it '
                     f'holds {sorted(others)[:5]}); give a new or empty '
                     'directory.')
  return out


def finetune(tagger, examples: Sequence[examples_lib.Example], out, *,
             source='the labels CSV', representation: Optional[str] = None,
             taxonomy: Optional[Mapping[str, Optional[str]]] = None,
             cache_dir=None, seed: int = 0,
             holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
             progress: bool = True, info: Optional[Mapping[str, Any]] = None
             ) -> Tuple[head_lib.Head, Dict[str, Any]]:
  """Fits, calibrates and writes a head for the examples' labels.

  Args:
    tagger: the trained model (a Tagger; its own head, if any, is unused).
    examples: (item, labels) pairs (examples_lib.read_labels).
    out: the head directory to write (new, empty or a previous head).
    source: what the examples came from, for messages.
    representation: the Tagger.embed vector to fit on; default
      `default_representation`.
    taxonomy: label -> parent over the new labels (decisions and targets
      follow it), or None.
    cache_dir: the embedding cache; default OUT/cache.
    seed: the held-out split's and the solvers' seed.
    holdout_fraction: in (0, 1), the part held out per label.
    progress: show a progress bar while embedding.
    info: extra head.json fields.

  Returns:
    (the written Head, a summary: items, failed [(input, error)], labels,
     examples, heldout, computed, cached, seconds).

  Raises:
    ValueError: too few examples of a label (before anything is embedded),
      examples lacking the representation, a bad `out`.
  """
  start = time.perf_counter()
  if not 0.0 < holdout_fraction < 1.0:
    raise ValueError(f'--holdout-fraction {holdout_fraction}: give a '
                     'fraction between 0 and 1 (e.g. 0.3).')
  out = check_out(out)
  labels, targets = examples_lib.targets_of(examples, taxonomy)
  examples_lib.check_counts(labels, targets, source)
  items = [item for item, _ in examples]
  name = representation or default_representation(tagger, items)
  identity = head_lib.model_identity(tagger)
  vectors, failed, computed = embed_cached(
      tagger, items, cache_dir or out / head_lib.CACHE_DIR,
      identity=identity, progress=progress)
  kept = [i for i, v in enumerate(vectors) if v is not None]
  targets = targets[kept]
  examples_lib.check_counts(labels, targets, source,
               f' ({len(failed)} failed to embed)' if failed else '')
  x = stack_representation([items[i].key for i in kept],
                           [vectors[i] for i in kept], name)
  head, calibration = fit_calibrated(x, targets, labels, name,
                                     holdout_fraction=holdout_fraction,
                                     seed=seed)
  head.taxonomy = taxonomy
  examples_per_label = {label: int(n) for label, n in
                        zip(labels, targets.sum(0))}
  head.info = {
      **(info or {}), 'name': out.name,
      'model': {'source': os.fspath(tagger.source), 'kind': tagger.kind,
                'final': tagger.final, 'identity': identity},
      'items': len(kept), 'failed': [list(f) for f in failed],
      'negatives': int((~targets.any(1)).sum()),
      'examples': examples_per_label, 'seed': seed,
      'holdout_fraction': holdout_fraction,
      'regularisation_c': calibration['c'],
      'heldout': {'items': calibration['items'],
                  'auc_by_c': {str(c): round(v, 4) for c, v in
                               calibration['auc_by_c'].items()},
                  'labels': calibration['labels']}}
  head_lib.save(head, out)
  return head, {'items': len(kept), 'failed': failed, 'labels': labels,
                'negatives': int((~targets.any(1)).sum()),
                'representation': name, 'dim': int(x.shape[1]),
                'examples': examples_per_label,
                'heldout': calibration['labels'], 'c': calibration['c'],
                'heldout_items': calibration['items'], 'computed': computed,
                'cached': len(kept) - computed,
                'seconds': time.perf_counter() - start}

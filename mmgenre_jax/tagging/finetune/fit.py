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
standardised, or a label answers with the model's own score of one of its
labels (the representation's `<name>_scores`) when that does better; the
L2 strength, those answers and per-label thresholds (F1-optimal) are
chosen on held-out parts scored by heads fitted without them
(selection.py); the head is then refitted on every item and written
(fitted_head.py).

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
import tqdm

from input_pipeline import fileio
from mmgenre_jax import errors
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging.finetune import examples as examples_lib
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging.finetune import selection

DEFAULT_HOLDOUT_FRACTION = selection.DEFAULT_HOLDOUT_FRACTION
# In the cache key: 2, the vectors include the networks' label scores
# (<name>_scores), which caches of version 1 lack.
CACHE_VERSION = 2


# --------------------------------------------------------------- embedding


def _file_digest(path) -> str:
  digest = hashlib.sha256()
  with fileio.open_sequential(path) as f:  # A file or a URL.
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def cache_key(identity: str, item: items_lib.Item) -> str:
  """sha256 of the model identity and the item's file contents by role.

  Raises:
    OSError: a file cannot be read.
  """
  parts = [identity, f'cache:{CACHE_VERSION}'] + [
      f'audio:{_file_digest(p)}' for p in item.audio]
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


def base_scores(tagger, name: str, vectors: Sequence[Mapping[str,
                                                             np.ndarray]]
                ) -> Optional[selection.BaseScores]:
  """The label scores of the network whose representation `name` is
  (`<name>_scores`), when every item gives them; else None (an alignment
  representation, a vector picked by --representation that scores nothing).
  """
  scores = f'{name}_scores'
  nodes = [n for n in tagger.nodes() if tagger.representation_name(n) == name]
  if not nodes or not all(scores in v for v in vectors):
    return None
  values = np.stack([v[scores] for v in vectors]).astype(np.float32)
  labels = tagger.stages[nodes[0][0]].labels or [
      f'label {k}' for k in range(values.shape[1])]
  return selection.BaseScores(scores, list(labels), values)


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
    errors.ExamplesFailedError (a ValueError): too few examples of a label
      once those that failed to embed are left out.
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
  try:
    examples_lib.check_counts(labels, targets, source,
                              f' ({len(failed)} failed to embed)'
                              if failed else '')
  except ValueError as e:
    # They passed before embedding: the examples that failed are why.
    raise errors.ExamplesFailedError(str(e)) from e
  x = stack_representation([items[i].key for i in kept],
                           [vectors[i] for i in kept], name)
  head, calibration = selection.fit_calibrated(
      x, targets, labels, name,
      base=base_scores(tagger, name, [vectors[i] for i in kept]),
      holdout_fraction=holdout_fraction, seed=seed)
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
      'answers': {label: held['answer'] for label, held in
                  calibration['labels'].items()},
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

"""Nearest genres, or nearest catalog items: the work of `mmgenre neighbours`.

  # Nearest genres: cosine of the query's output to the label factors
  # (COSINE models; paper Sec 5.1, 7.2).
  mmgenre neighbours --workdir BUNDLE --audio song.mp3
  # Nearest catalog items (`mmgenre embed --out CAT`) in a shared space:
  mmgenre neighbours --workdir BUNDLE --audio song.mp3 --catalog CAT \
      --space aligned                # MM_AUDIO query -> MM_VISUAL covers
  mmgenre neighbours --workdir BUNDLE --reviews r.txt --catalog CAT \
      --space factors --to audio     # text output -> audio outputs

The result names the query, the space and its `duration_s`, `warnings` and
`notes` (what decoding the query's files observed, as in `mmgenre predict`).

Spaces: `aligned` is the alignment space of Sec 3.4 (mm_audio, mm_visual;
audio -> covers by default, and the reverse); `factors` is the label-factor
space every COSINE network predicts into (unit vectors, <modality>_output),
so reviews, audio and covers can be compared there. The flags live in
mmgenre_jax/cli/neighbours.py, which prints the result as JSON.
"""

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mmgenre_jax.core import cosine
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed as embed_lib
from mmgenre_jax.tagging import tagger as tagger_lib

DEFAULT_K = 10
SPACES = ('aligned', 'factors')
# Modality shorthands of --to, per space.
_ALIASES = {'aligned': {'audio': 'mm_audio', 'image': 'mm_visual',
                        'cover': 'mm_visual', 'visual': 'mm_visual'},
            'factors': {m: f'{m}_output' for m in ('audio', 'text', 'image',
                                                   'fusion')}}
_ALIASES['factors'].update(cover='image_output', reviews='text_output')


def _unit(x: np.ndarray) -> np.ndarray:
  return np.asarray(cosine.l2_normalize(np.asarray(x, np.float32)))


def nearest(query: np.ndarray, arrays: Dict[str, np.ndarray],
            keys: Dict[str, List[str]], names: List[str],
            k: int) -> List[Dict[str, Any]]:
  """Top-k catalog rows of `names` by cosine to `query`."""
  found = []
  for name in names:
    cos = _unit(arrays[name]) @ _unit(query)
    found.extend({'input': keys[name][i], 'representation': name,
                  'cosine': float(cos[i])} for i in range(len(cos)))
  found.sort(key=lambda r: -r['cosine'])
  return found[:k]


def query_vector(vectors: Dict[str, np.ndarray], space: str):
  """(name, vector) of the query in `space`."""
  if space == 'aligned':
    order = ('mm_audio', 'mm_visual')
  else:
    order = ('fusion_output', 'audio_output', 'text_output', 'image_output')
  for name in order:
    if name in vectors:
      return name, vectors[name]
  raise ValueError(
      f'The query has no vector in the {space} space (it has '
      f'{sorted(vectors)}); the aligned space needs an alignment stage and '
      'audio or a cover, the factors space a COSINE model.')


def targets_for(query_name: str, space: str, to: List[str],
                available: List[str]) -> List[str]:
  if to:
    names = [_ALIASES[space].get(t, t) for t in to]
  elif space == 'aligned':
    names = ['mm_visual' if query_name == 'mm_audio' else 'mm_audio']
  else:
    names = [n for n in available if n.endswith('_output') and
             n != query_name]
  missing = [n for n in names if n not in available]
  if missing or not names:
    raise ValueError(f'The catalog has no {missing or "other"} vectors (it '
                     f'has {available}); embed the catalog with those '
                     'modalities.')
  return names


def genre_neighbours(tagger: tagger_lib.Tagger, item: items_lib.Item,
                     k: int = DEFAULT_K) -> Dict[str, Any]:
  """The k labels whose factors are nearest to the item's output.

  Raises:
    ValueError: not a COSINE model (no label factors).
  """
  found = {s.target for s in tagger.stages.values() if s.target is not None}
  if not all(t.uses_label_factors for t in found):
    raise ValueError(f'nearest genres need a COSINE model (label factors); '
                     f'this one is {sorted(t.name for t in found)}: use '
                     'mmgenre predict.')
  result = tagger.predict(audio=item.audio or None, cover=item.cover,
                          reviews=item.read_reviews())
  scores = result['scores']
  order = np.argsort(-scores, kind='stable')[:k]
  return {'query': item.key, 'space': 'label_factors',
          'model': result['model'], **_report(result),
          'neighbours': [{'label': tagger.labels[j],
                          'cosine': float(scores[j])} for j in order]}


def _report(result: Dict[str, Any]) -> Dict[str, Any]:
  """The query's duration_s, warnings and notes, as predict rows give
  them."""
  duration = result['duration_s']
  return {'duration_s': None if duration is None else round(duration, 4),
          'warnings': result['warnings'], 'notes': result['notes']}


def catalog_neighbours(tagger: tagger_lib.Tagger, item: items_lib.Item,
                       catalog_dir, *, space: Optional[str] = None,
                       to: Sequence[str] = (),
                       k: int = DEFAULT_K) -> Dict[str, Any]:
  """The k catalog rows nearest to the item in a shared space.

  Args:
    tagger: the model.
    item: the query (a track or an album).
    catalog_dir: an `mmgenre embed --out` folder.
    space: one of SPACES; default 'aligned' when the model has an alignment
      stage, else 'factors'.
    to: catalog representations to search (modality shorthands or file
      names); default every other one of the space.
    k: rows listed.

  Raises:
    ValueError: the query or the catalog has no vector in that space.
  """
  arrays, keys = embed_lib.read_catalog(catalog_dir)
  vectors, report = tagger.embed_and_report(
      audio=item.audio or None, cover=item.cover, reviews=item.read_reviews())
  # The alignment space has no label scores (no target).
  has_alignment = any(s.target is None for s in tagger.stages.values())
  space = space or ('aligned' if has_alignment else 'factors')
  name, query = query_vector(vectors, space)
  names = targets_for(name, space, list(to), sorted(arrays))
  return {'query': item.key, 'space': space, 'query_vector': name,
          **_report(report),
          'neighbours': nearest(query, arrays, keys, names, k)}

"""`mmgenre neighbours`: nearest genres, or nearest catalog items.

  # Nearest genres: cosine of the query's output to the label factors
  # (COSINE models; SPEC §3).
  mmgenre neighbours --workdir BUNDLE --audio song.mp3
  # Nearest catalog items (`mmgenre embed --out CAT`) in a shared space:
  mmgenre neighbours --workdir BUNDLE --audio song.mp3 --catalog CAT \
      --space aligned                # MM_AUDIO query -> MM_VISUAL covers
  mmgenre neighbours --workdir BUNDLE --reviews r.txt --catalog CAT \
      --space factors --to audio     # text output -> audio outputs

Spaces: `aligned` is the alignment space of Sec 3.4 (mm_audio, mm_visual;
audio -> covers by default, and the reverse); `factors` is the label-factor
space every COSINE network predicts into (unit vectors, <modality>_output),
so reviews, audio and covers can be compared there. Prints JSON.
"""

import argparse
import json
import sys
from typing import Any, Dict, List

import numpy as np

from mmgenre_jax.models import heads
from mmgenre_jax.tagging import catalog
from mmgenre_jax.tagging import embed as embed_lib
from mmgenre_jax.tagging import predict
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
  return np.asarray(heads.l2_normalize(np.asarray(x, np.float32)))


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
  catalog.add_input_arguments(parser)
  parser.add_argument('--catalog', default=None, metavar='DIR',
                      help='`mmgenre embed --out` folder to search; without '
                      'it, the nearest genres are listed.')
  parser.add_argument('--space', choices=SPACES, default=None,
                      help='Shared space (default: aligned when the model '
                      'has an alignment stage, else factors).')
  parser.add_argument('--to', nargs='+', default=[],
                      help='Catalog representations to search (audio, '
                      'image/cover, text/reviews, fusion, or a file name).')
  parser.add_argument('-k', '--top-k', type=int, default=DEFAULT_K)


def main(args: argparse.Namespace) -> int:
  try:
    items = catalog.items_from_args(args)
    if len(items) != 1:
      raise ValueError(f'neighbours takes one query (track or album); got '
                       f'{len(items)} inputs (use --album for several '
                       'tracks).')
    (item,) = items
    tagger = tagger_lib.Tagger.from_workdir(args.workdir)
    if args.catalog is None:
      targets = {s.target for s in tagger.stages.values()
                 if s.kind != 'alignment'}
      if targets != {'cosine'}:
        raise ValueError(f'nearest genres need a COSINE model (label '
                         f'factors); this one is {sorted(targets)}: use '
                         'mmgenre predict.')
      scores, _, model, _ = tagger.scores(item.audio or None, item.cover,
                                          item.read_reviews())
      order = np.argsort(-scores, kind='stable')[:args.top_k]
      result = {'query': item.key, 'space': 'label_factors', 'model': model,
                'neighbours': [{'label': tagger.labels[j],
                                'cosine': float(scores[j])} for j in order]}
    else:
      arrays, keys = embed_lib.read_catalog(args.catalog)
      vectors = tagger.embed(audio=item.audio or None, cover=item.cover,
                             reviews=item.read_reviews())
      has_alignment = any(s.kind == 'alignment'
                          for s in tagger.stages.values())
      space = args.space or ('aligned' if has_alignment else 'factors')
      name, query = query_vector(vectors, space)
      names = targets_for(name, space, args.to, sorted(arrays))
      result = {'query': item.key, 'space': space, 'query_vector': name,
                'neighbours': nearest(query, arrays, keys, names,
                                      args.top_k)}
  except predict.INPUT_ERRORS as e:
    print(f'mmgenre neighbours: {e}', file=sys.stderr)
    return 2
  json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
  sys.stdout.write('\n')
  return 0

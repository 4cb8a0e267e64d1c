"""Representations of files or a catalog as .npy + index: `mmgenre embed`.

  mmgenre embed --workdir BUNDLE --audio ~/Music --out music_vectors
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out catalog_vectors

OUT/<name>.npy holds float32 [N_name, D] for every representation computed
(Tagger.embed): audio, text, image (modality networks), mm_audio, mm_visual
(the alignment space), fusion, and <name>_output (COSINE outputs, unit
vectors in the label-factor space all modalities share). OUT/index.tsv maps
rows back to inputs (columns representation, row, input); OUT/errors.tsv
lists the inputs that failed and why; OUT/embed.json summarises. `mmgenre
neighbours --catalog OUT` searches these files (read_catalog). The flags live
in mmgenre_jax/cli/embed.py.

  vectors, errors = embed.write_embeddings(tagger, items, 'vectors')
"""

import csv
import json
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tqdm

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging import catalog
from mmgenre_jax.tagging import tagger as tagger_lib

# name -> [(input key, float32 [D]), ...] in input order.
Vectors = Dict[str, List[Tuple[str, np.ndarray]]]


def embed_items(tagger: tagger_lib.Tagger, items: Sequence[catalog.Item], *,
                progress: bool = True
                ) -> Tuple[Vectors, List[Tuple[str, str]]]:
  """Every representation of every item; failing items are set aside.

  Returns:
    (vectors by representation name, [(input key, error)]).
  """
  vectors: Vectors = {}
  errors: List[Tuple[str, str]] = []
  for item in tqdm.tqdm(items, desc='embed', unit='item',
                        disable=not progress or len(items) < 2):
    try:
      result = tagger.embed(audio=item.audio or None, cover=item.cover,
                            reviews=item.read_reviews())
    except tagger_lib.INPUT_ERRORS as e:
      errors.append((item.key, str(e)))
      continue
    for name, vector in result.items():
      vectors.setdefault(name, []).append((item.key, vector))
  return vectors, errors


def write_catalog(out, vectors: Vectors, errors: List[Tuple[str, str]],
                  info: Mapping[str, Any]) -> None:
  """Writes <name>.npy, index.tsv, errors.tsv and embed.json into `out`."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  with open(out / workdir_lib.EMBED_INDEX_TSV, 'w', newline='',
            encoding='utf-8') as f:
    writer = csv.writer(f, delimiter='\t', lineterminator='\n')
    writer.writerow(('representation', 'row', 'input'))
    for name, rows in sorted(vectors.items()):
      np.save(out / f'{name}.npy',
              np.stack([v for _, v in rows]).astype(np.float32))
      writer.writerows((name, i, key) for i, (key, _) in enumerate(rows))
  with open(out / workdir_lib.EMBED_ERRORS_TSV, 'w', newline='',
            encoding='utf-8') as f:
    writer = csv.writer(f, delimiter='\t', lineterminator='\n')
    writer.writerow(('input', 'error'))
    writer.writerows(errors)
  (out / workdir_lib.EMBED_INFO_JSON).write_text(json.dumps(
      {**info, 'representations': {n: len(r) for n, r in vectors.items()}},
      indent=2) + '\n', encoding='utf-8')


def write_embeddings(tagger: tagger_lib.Tagger, items: Sequence[catalog.Item],
                     out, *, info: Optional[Mapping[str, Any]] = None,
                     progress: bool = True
                     ) -> Tuple[Vectors, List[Tuple[str, str]]]:
  """Embeds the items and writes the catalog folder `out` (module docstring).

  Args:
    tagger: the model.
    items: the inputs (catalog.collect_items).
    out: the folder to write.
    info: extra fields of embed.json (e.g. the workdir); `items` and
      `representations` are added.
    progress: show a progress bar (on stderr) for two items or more.

  Returns:
    What embed_items returns.
  """
  vectors, errors = embed_items(tagger, items, progress=progress)
  write_catalog(out, vectors, errors, {**(info or {}), 'items': len(items)})
  return vectors, errors


def read_catalog(directory) -> Tuple[Dict[str, np.ndarray],
                                     Dict[str, List[str]]]:
  """({name: [N, D]}, {name: [input, ...]}) of an embed output folder."""
  directory = pathlib.Path(directory)
  index = directory / workdir_lib.EMBED_INDEX_TSV
  if not index.is_file():
    raise ValueError(f'{directory} has no {workdir_lib.EMBED_INDEX_TSV}: not '
                     'the --out of `mmgenre embed`.')
  keys: Dict[str, List[str]] = {}
  with open(index, newline='', encoding='utf-8') as f:
    for row in csv.DictReader(f, delimiter='\t'):
      keys.setdefault(row['representation'], []).append(row['input'])
  arrays = {name: np.load(directory / f'{name}.npy') for name in keys}
  return arrays, keys

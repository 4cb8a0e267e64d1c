"""`mmgenre embed`: representations of files or a catalog, as .npy + index.

  mmgenre embed --workdir BUNDLE --audio ~/Music --out music_vectors
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out catalog_vectors

OUT/<name>.npy holds float32 [N_name, D] for every representation computed
(Tagger.embed): audio, text, image (modality networks), mm_audio, mm_visual
(the alignment space), fusion, and <name>_output (COSINE outputs, unit
vectors in the label-factor space all modalities share). OUT/index.tsv maps
rows back to inputs (columns representation, row, input); OUT/errors.tsv
lists the inputs that failed and why. `mmgenre neighbours --catalog OUT`
searches these files.
"""

import argparse
import csv
import json
import pathlib
import sys
from typing import Dict, List, Tuple

import numpy as np
import tqdm

from mmgenre_jax.tagging import catalog
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import tagger as tagger_lib

INDEX_FILE = 'index.tsv'
ERRORS_FILE = 'errors.tsv'
INFO_FILE = 'embed.json'


def write_catalog(out, vectors: Dict[str, List[Tuple[str, np.ndarray]]],
                  errors: List[Tuple[str, str]], info: Dict) -> None:
  """Writes <name>.npy, index.tsv, errors.tsv and embed.json into `out`."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  with open(out / INDEX_FILE, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f, delimiter='\t', lineterminator='\n')
    writer.writerow(('representation', 'row', 'input'))
    for name, rows in sorted(vectors.items()):
      np.save(out / f'{name}.npy',
              np.stack([v for _, v in rows]).astype(np.float32))
      writer.writerows((name, i, key) for i, (key, _) in enumerate(rows))
  with open(out / ERRORS_FILE, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f, delimiter='\t', lineterminator='\n')
    writer.writerow(('input', 'error'))
    writer.writerows(errors)
  (out / INFO_FILE).write_text(json.dumps(
      {**info, 'representations': {n: len(r) for n, r in vectors.items()}},
      indent=2) + '\n', encoding='utf-8')


def read_catalog(directory) -> Tuple[Dict[str, np.ndarray],
                                     Dict[str, List[str]]]:
  """({name: [N, D]}, {name: [input, ...]}) of an embed output folder."""
  directory = pathlib.Path(directory)
  if not (directory / INDEX_FILE).is_file():
    raise ValueError(f'{directory} has no {INDEX_FILE}: not the --out of '
                     '`mmgenre embed`.')
  keys: Dict[str, List[str]] = {}
  with open(directory / INDEX_FILE, newline='', encoding='utf-8') as f:
    for row in csv.DictReader(f, delimiter='\t'):
      keys.setdefault(row['representation'], []).append(row['input'])
  arrays = {name: np.load(directory / f'{name}.npy') for name in keys}
  return arrays, keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  catalog.add_input_arguments(parser)
  parser.add_argument('--out', required=True, metavar='DIR',
                      help='Folder for <name>.npy, index.tsv, errors.tsv.')


def main(args: argparse.Namespace) -> int:
  try:
    items = catalog.items_from_args(args)
    tagger = tagger_lib.Tagger.from_workdir(args.workdir)
  except (ValueError, OSError) as e:
    print(f'mmgenre embed: {e}', file=sys.stderr)
    return 2
  vectors: Dict[str, List[Tuple[str, np.ndarray]]] = {}
  errors: List[Tuple[str, str]] = []
  for item in tqdm.tqdm(items, desc='embed', unit='item',
                        disable=args.no_progress or len(items) < 2):
    try:
      result = tagger.embed(audio=item.audio or None, cover=item.cover,
                            reviews=item.read_reviews())
    except predict.INPUT_ERRORS as e:
      errors.append((item.key, str(e)))
      continue
    for name, vector in result.items():
      vectors.setdefault(name, []).append((item.key, vector))
  write_catalog(args.out, vectors, errors,
                {'workdir': str(args.workdir), 'items': len(items)})
  print(f'Wrote {sum(len(v) for v in vectors.values())} vectors of '
        f'{sorted(vectors)} to {args.out} ({len(errors)} inputs failed).')
  return 0

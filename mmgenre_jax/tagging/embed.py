"""Representations of files or a catalog as .npy + index: `mmgenre embed`.

  mmgenre embed --workdir BUNDLE --audio ~/Music --out music_vectors
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out catalog_vectors

OUT/<name>.npy holds float32 [N_name, D] for every representation computed
(Tagger.embed): audio, text, image (modality networks), mm_audio, mm_visual
(the alignment space), fusion, and <name>_output (COSINE outputs, unit
vectors in the label-factor space all modalities share). OUT/index.tsv maps
rows back to inputs (columns representation, row, input, duration_s,
warnings: what decoding the input observed, `|`-joined, docs/tagging.md);
OUT/errors.tsv lists the inputs that failed and why; OUT/embed.json
summarises. `mmgenre neighbours --catalog OUT` searches these files
(read_catalog). The flags live in mmgenre_jax/cli/embed.py.

Every file is written atomically and embed.json last: a run killed midway
leaves the previous catalog's files (or none), never a half-written one; run
it again (the whole catalog is recomputed, so inputs gone are gone).

  vectors, errors = embed.write_embeddings(tagger, items, 'vectors')
"""

import csv
import io
import json
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tqdm

from input_pipeline import fileio
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging import decoding
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib

# name -> [(input key, float32 [D]), ...] in input order.
Vectors = Dict[str, List[Tuple[str, np.ndarray]]]
# input key -> {'duration_s', 'warnings'} (Tagger.embed_and_report).
Reports = Dict[str, Dict[str, Any]]
INDEX_COLUMNS = ('representation', 'row', 'input', 'duration_s', 'warnings')


def embed_items(tagger: tagger_lib.Tagger, items: Sequence[items_lib.Item], *,
                progress: bool = True, reports: Optional[Reports] = None,
                batch_items: int = items_lib.BATCH_ITEMS,
                decode_workers: int = items_lib.DECODE_WORKERS
                ) -> Tuple[Vectors, List[Tuple[str, str]]]:
  """Every representation of every item; failing items are set aside.

  Args:
    tagger, items: the model and the inputs (items_lib.collect_items).
    progress: show a progress bar (on stderr) for two items or more.
    reports: filled with each embedded item's {'duration_s', 'warnings'}.
    batch_items: items embedded together (Tagger.embed_many; the vectors
      are Tagger.embed's, whatever the batch).
    decode_workers: processes decoding audio ahead of the device
      (decoding.py, predict.run's; the same vectors to float32 precision).

  Returns:
    (vectors by representation name, [(input key, error)]).
  """
  vectors: Vectors = {}
  errors: List[Tuple[str, str]] = []
  with tqdm.tqdm(total=len(items), desc='embed', unit='item',
                 disable=not progress or len(items) < 2) as bar, \
      decoding.AheadDecoder(tagger, items, decode_workers) as decoder:
    for batch in decoder.batches(batch_items):
      decoded = decoder.take(batch)
      # URL inputs (gs://...) are embedded from local copies; messages
      # name the URLs (remote.py).
      with remote.local_inputs(batch) as local:
        results = tagger.embed_many(items_lib.tagger_inputs(local), decoded)
        names = remote.copy_names(batch, local)
      for item, result in zip(batch, results):
        if isinstance(result, Exception):
          errors.append((item.key, remote.renamed(str(result), names)))
          continue
        found, report = result
        if reports is not None:
          reports[item.key] = {
              **report, 'warnings': remote.renamed(
                  report.get('warnings', []), names)}
        for name, vector in found.items():
          vectors.setdefault(name, []).append((item.key, vector))
      bar.update(len(batch))
  return vectors, errors


def embed_rows(tagger: tagger_lib.Tagger, items: Sequence[items_lib.Item]
               ) -> List[Dict[str, Any]]:
  """One row per item, their audio batched together (Tagger.embed_many).

  Returns:
    [{'input', 'vectors': {name: float32 [D]} (every representation, as
    Tagger.embed), 'duration_s', 'warnings', 'error' (None, or why the
    input failed: then no vectors), 'sources' (items_lib.sources)}]: the
    vectors are those embed_items gives, the shards' rows of `mmgenre embed
    --beam_pipeline_options` (beam_tagging.py).
  """
  # Stamped before reading, as predict_items does.
  found = [items_lib.sources(item) for item in items]
  results = tagger.embed_many(items_lib.tagger_inputs(items))
  rows = []
  for item, result, sources in zip(items, results, found):
    failed = isinstance(result, Exception)
    vectors, report = ({}, {}) if failed else result
    duration = report.get('duration_s')
    rows.append({'input': item.key, 'vectors': vectors,
                 'duration_s': None if duration is None else round(duration,
                                                                   4),
                 'warnings': report.get('warnings', []),
                 'error': str(result) if failed else None,
                 'sources': sources})
  return rows


def _tsv(header: Sequence[str], rows) -> bytes:
  text = io.StringIO(newline='')
  writer = csv.writer(text, delimiter='\t', lineterminator='\n')
  writer.writerow(header)
  writer.writerows(rows)
  return text.getvalue().encode('utf-8')


def _index_row(name: str, row: int, key: str, reports: Reports):
  report = reports.get(key) or {}
  duration = report.get('duration_s')
  return (name, row, key, '' if duration is None else f'{duration:.4f}',
          items_lib.LIST_SEPARATOR.join(
              ' '.join(w.splitlines()) for w in report.get('warnings', [])))


def write_catalog(out, vectors: Vectors, errors: List[Tuple[str, str]],
                  info: Mapping[str, Any],
                  reports: Optional[Reports] = None) -> None:
  """Writes <name>.npy, index.tsv, errors.tsv and embed.json into `out`.

  Each atomically, embed.json last (module docstring).
  """
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  reports = reports or {}
  index = []
  for name, rows in sorted(vectors.items()):
    with fileio.atomic_open(out / f'{name}.npy') as f:
      np.save(f, np.stack([v for _, v in rows]).astype(np.float32))
    index.extend(_index_row(name, i, key, reports)
                 for i, (key, _) in enumerate(rows))
  fileio.write_atomic(out / workdir_lib.EMBED_INDEX_TSV,
                      _tsv(INDEX_COLUMNS, index))
  fileio.write_atomic(out / workdir_lib.EMBED_ERRORS_TSV,
                      _tsv(('input', 'error'),
                           [(k, ' '.join(e.splitlines())) for k, e in errors]))
  fileio.write_atomic(out / workdir_lib.EMBED_INFO_JSON, (json.dumps(
      {**info, 'representations': {n: len(r) for n, r in vectors.items()}},
      indent=2) + '\n').encode('utf-8'))


def write_embeddings(tagger: tagger_lib.Tagger, items: Sequence[items_lib.Item],
                     out, *, info: Optional[Mapping[str, Any]] = None,
                     progress: bool = True,
                     batch_items: int = items_lib.BATCH_ITEMS,
                     decode_workers: int = items_lib.DECODE_WORKERS
                     ) -> Tuple[Vectors, List[Tuple[str, str]]]:
  """Embeds the items and writes the catalog folder `out` (module docstring).

  Args:
    tagger: the model.
    items: the inputs (items_lib.collect_items).
    out: the folder to write.
    info: extra fields of embed.json (e.g. the workdir); `items` and
      `representations` are added.
    progress: show a progress bar (on stderr) for two items or more.
    batch_items, decode_workers: as in embed_items.

  Returns:
    What embed_items returns.
  """
  reports: Reports = {}
  vectors, errors = embed_items(tagger, items, progress=progress,
                                reports=reports, batch_items=batch_items,
                                decode_workers=decode_workers)
  write_catalog(out, vectors, errors, {**(info or {}), 'items': len(items)},
                reports)
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

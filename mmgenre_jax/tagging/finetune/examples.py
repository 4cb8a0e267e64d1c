"""The examples `mmgenre finetune` learns from: a labels CSV read as items.

The labels CSV has the header `input,labels`, one example per row: `input`
is an audio file (one track), an album folder (`album_folder`) or an
album_id of the `--catalog CSV` (items_lib.read_manifest); relative paths are
relative to the CSV's folder; `labels` are `|`-separated names the model may
never have seen, and an empty cell makes the row a negative (an example of
none of the labels). A row that cannot be used (no input, an input that is
neither, an input given twice, bytes that are not UTF-8, a NUL, a last line
cut short) is skipped and reported as `FILE:LINE: why`.

  examples, skipped = examples.read_labels('moods.csv', 'catalog.csv')
  labels, targets = examples.targets_of(examples)   # bool [N, L]
  examples.check_counts(labels, targets, 'moods.csv')  # enough to calibrate
"""

import os
import pathlib
from typing import List, Mapping, Optional, Sequence, Tuple

from etils import epath
import numpy as np

from input_pipeline import fileio
from input_pipeline.formats import release_format
from mmgenre_jax.core import hierarchy
from mmgenre_jax.tagging import items as items_lib

LABELS_COLUMNS = ('input', 'labels')
# An album folder's cover: the first image named so (in this order), else
# its only image; its reviews: this text file.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.gif', '.tif',
                    '.tiff')
COVER_STEMS = ('cover', 'folder', 'front')
REVIEWS_TXT = 'reviews.txt'
# Examples a label needs: some to fit the head, some held out to calibrate
# its threshold (F1 on one held-out positive is all or nothing).
MIN_TRAIN_POSITIVES = 2
MIN_HELDOUT_POSITIVES = 2
MIN_POSITIVES = MIN_TRAIN_POSITIVES + MIN_HELDOUT_POSITIVES
# Items without the label: one to fit against, one held out (for its AUC).
MIN_NEGATIVES = 2
# (item, its labels) of one labels-CSV row.
Example = Tuple[items_lib.Item, List[str]]


def album_folder(directory, key: str) -> items_lib.Item:
  """An album of a folder: its audio files (recursive, sorted), the image
  named cover.* / folder.* / front.* in it (else its only image) and its
  reviews.txt, each when present.

  Raises:
    ValueError: the folder holds none of them.
  """
  directory = epath.Path(directory)  # A folder or a URL prefix.
  images = sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
  cover = next((p for stem in COVER_STEMS for p in images
                if p.stem.lower() == stem), None)
  if cover is None and len(images) == 1:
    cover = images[0]
  reviews = directory / REVIEWS_TXT
  item = items_lib.Item(key, items_lib.audio_files(directory),
                      None if cover is None else os.fspath(cover),
                      os.fspath(reviews) if reviews.is_file() else None)
  if not item.files():
    raise ValueError(f'folder {key!r} holds no audio file, cover image or '
                     f'{REVIEWS_TXT}')
  return item


def _named_path(cell: str, base) -> epath.Path:
  """The path a cell names: a URL (gs://...) as it is, else expanded and
  joined to `base` (a folder or a URL prefix) when relative."""
  if not fileio.is_local(cell):
    return epath.Path(cell)
  path = pathlib.Path(cell).expanduser()
  return epath.Path(path if path.is_absolute() else epath.Path(base) / path)


def _is(path: epath.Path, remote_test, local_test) -> bool:
  """`local_test(path)` for a local path, else `remote_test(path)`."""
  # os.path: a cell of several KB (a damaged row) is a name too long to
  # stat, which names no file rather than stopping the whole CSV.
  return (local_test if fileio.is_local(path) else remote_test)(path)


def resolve_input(cell: str, base,
                  albums: Mapping[str, items_lib.Item],
                  catalog_csv=None) -> items_lib.Item:
  """The item a labels-CSV `input` names (module docstring).

  Raises:
    ValueError: it names nothing usable (the message names it).
  """
  path = _named_path(cell, base)
  if _is(path, fileio.is_file, os.path.isfile):
    if path.suffix.lower() not in items_lib.AUDIO_EXTENSIONS:
      raise ValueError(f'{cell!r} is not an audio file '
                       f'({", ".join(items_lib.AUDIO_EXTENSIONS)})')
    return items_lib.Item(cell, [os.fspath(path)])
  if _is(path, fileio.is_dir, os.path.isdir):
    return album_folder(path, cell)
  if cell in albums:
    album = albums[cell]
    return items_lib.Item(cell, album.audio, album.cover, album.reviews)
  where = (f'an album_id of --catalog {catalog_csv}' if catalog_csv else
           'an album_id (no --catalog CSV given)')
  raise ValueError(f'input {cell!r} is neither a file, a folder (relative '
                   f'to {base}) nor {where}')


def _split_labels(cell: str) -> List[str]:
  labels = [x.strip() for x in (cell or '').split(items_lib.LIST_SEPARATOR)]
  return list(dict.fromkeys(x for x in labels if x))


def read_labels(path, catalog_csv=None) -> Tuple[List[Example], List[str]]:
  """The examples of a labels CSV (module docstring).

  Args:
    path: the CSV, header `input,labels`.
    catalog_csv: a catalog manifest whose album_ids inputs may name.

  Returns:
    ([(item, [label, ...])] in file order, keyed by the `input` cell;
     ['FILE:LINE: why' for each row skipped]).

  Raises:
    ValueError: an unreadable file, a wrong header or a bad catalog.
  """
  path = epath.Path(path)  # A file or a URL: relative inputs join its folder.
  albums = ({} if catalog_csv is None else
            {item.key: item for item in items_lib.read_manifest(catalog_csv)})
  try:
    # Read as every user's text file is (docs/data_formats.md §1.4): a BOM
    # and CRLF are fine, a row with bytes that are not UTF-8 is skipped.
    with release_format.open_text(path) as f:
      table = release_format.Table(f, path)
      columns = table.header((), optional=LABELS_COLUMNS)
      if len(columns) < len(LABELS_COLUMNS):
        raise ValueError(
            f'{path}: a labels CSV needs the header '
            f'{",".join(LABELS_COLUMNS)} (input: an audio file, an album '
            f'folder or a catalog album_id; labels: "|"-separated); found '
            f'{table.names}.')
      rows = list(table)
  except OSError as e:
    raise ValueError(f'{path}: cannot read the labels CSV ({e}).') from e
  examples, skipped, seen = [], [], {}
  for line, row, problem in rows:
    if problem is not None:
      where = f'column {problem.column!r}: ' if problem.column else ''
      skipped.append(f'{path}:{line}: {where}{problem.reason}; row skipped.')
      continue
    cell, labels = (row[columns[name]] if len(row) > columns[name] else ''
                    for name in LABELS_COLUMNS)
    cell, labels = cell.strip(), _split_labels(labels)
    try:
      if not cell:
        raise ValueError('no input')
      item = resolve_input(cell, path.parent, albums, catalog_csv)
    except ValueError as e:
      skipped.append(f'{path}:{line}: {e}; row skipped.')
      continue
    # The same files under two spellings are one input.
    files = tuple(os.path.realpath(p) if fileio.is_local(p) else p
                  for p in item.files())
    if files in seen:
      skipped.append(f'{path}:{line}: input {cell!r} repeats line '
                     f'{seen[files]}; row skipped.')
      continue
    seen[files] = line
    examples.append((item, labels))
  return examples, skipped


def targets_of(examples: Sequence[Example],
               taxonomy: Optional[Mapping[str, Optional[str]]] = None
               ) -> Tuple[List[str], np.ndarray]:
  """(sorted label names, bool [N, L] multi-hot targets).

  With a taxonomy, the labels' ancestors are labels too and every example
  carries the ancestors of its labels (the true-path rule, hierarchy.py).
  """
  names = {label for _, labels in examples for label in labels}
  for label in list(names):
    parent = (taxonomy or {}).get(label)
    while parent is not None and parent not in names:
      names.add(parent)
      parent = taxonomy.get(parent)
  names = sorted(names)
  index = {label: j for j, label in enumerate(names)}
  targets = np.zeros((len(examples), len(names)), bool)
  for i, (_, labels) in enumerate(examples):
    targets[i, [index[label] for label in labels]] = True
  if taxonomy is not None:
    targets = hierarchy.with_ancestors(
        targets, hierarchy.parent_indices(names, taxonomy))
  return names, targets


def check_counts(labels: Sequence[str], targets: np.ndarray, source,
                 note: str = '') -> None:
  """Raises ValueError naming every label with too few examples (or too
  few items without it) to fit and calibrate."""
  positives = targets.sum(0)
  problems = []
  for label, count in zip(labels, positives):
    if count < MIN_POSITIVES:
      problems.append(
          f"label {label!r} has {count} example{'' if count == 1 else 's'} "
          f'in {source}{note}; finetune needs at least {MIN_POSITIVES} per '
          f'label to train and calibrate ({MIN_TRAIN_POSITIVES} to fit the '
          f'head, {MIN_HELDOUT_POSITIVES} held out for its threshold): add '
          'examples of it or remove it.')
    elif len(targets) - count < MIN_NEGATIVES:
      problems.append(
          f'label {label!r} is on {count} of the {len(targets)} items in '
          f'{source}{note}; finetune needs at least {MIN_NEGATIVES} items '
          'without it: add examples of other labels.')
  if not len(targets):
    problems.append(f'{source}: no usable example{note}.')
  if problems:
    raise ValueError('\n'.join(problems))

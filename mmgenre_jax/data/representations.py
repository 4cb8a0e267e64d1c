"""Extracted representations on disk, and the inputs of fusion / alignment.

A stage workdir S holds S/representations/<name>/<split>.npz (docs/workdirs.md
§1): ids [N] str, album_ids [N] str, representation float32 [N, R], scores
float32 [N, L], labels ([N, L] multi-hot or [N] class ids) and label_names
[L] str. Fusion and alignment stages (docs/workdirs.md §2) read several such
files, named by config.data.inputs (representation name -> stage workdir),
and join them on the item ids:

  joined = representations.load_joined({'audio': 'W/audio',
                                        'text': 'W/text'}, 'train')
  joined.inputs['audio']   # float32 [N, Ra], the rows of joined.ids
  joined.labels            # the labels of the base input's rows

A track-level input (ids differ from album_ids, MSD-I tracks) joined with an
album-level one (MuMu albums, MSD-I covers keyed by album) is matched through
the track rows' album_ids. Rows missing from an input are dropped and counted.
"""

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
from etils import epath
import numpy as np

from input_pipeline import fileio
from mmgenre_jax import workdir as workdir_lib

# Keys of every representations .npz (docs/workdirs.md §1).
KEYS = ('ids', 'album_ids', 'representation', 'scores', 'labels')
# Optional keys: the label names (columns of scores / labels) and the step of
# the checkpoint that produced the file.
LABEL_NAMES = 'label_names'
STEP = 'step'
SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class ItemRows:
  """The rows of one representations file (one item each, the same order).

  Attributes:
    ids: [N] item ids (tracks where the records have them, else albums).
    album_ids: [N] the album of each row.
    representation: float32 [N, R].
    scores: float32 [N, L] label scores ([N, 0]: the alignment space has
      none).
    labels: [N, L] multi-hot or [N] class ids.
    label_names: the L label names, when known.
  """
  ids: np.ndarray
  album_ids: np.ndarray
  representation: np.ndarray
  scores: np.ndarray
  labels: np.ndarray
  label_names: Optional[Sequence[str]] = None


def write_representations(workdir, name: str, split: str, *, ids, album_ids,
                          representation, scores, labels,
                          label_names: Optional[Sequence[str]] = None,
                          step: Optional[int] = None) -> epath.Path:
  """Writes one representations file atomically (input_pipeline.fileio).

  Args:
    workdir: the stage workdir.
    name: the representation name ('audio', 'mm_audio', 'fusion', ...).
    split: 'train', 'val' or 'test'.
    ids: [N] item ids.
    album_ids: [N] album of each row.
    representation: [N, R].
    scores: [N, L] (alignment stages: [N, 0], no label scores).
    labels: [N, L] multi-hot or [N] class ids.
    label_names: the L label names, if known.
    step: the checkpoint step the rows come from.

  Returns:
    The path written.
  """
  path = workdir_lib.representation_path(workdir, name, split)
  path.parent.mkdir(parents=True, exist_ok=True)
  arrays = dict(ids=np.asarray(ids, dtype=str),
                album_ids=np.asarray(album_ids, dtype=str),
                representation=np.asarray(representation, np.float32),
                scores=np.asarray(scores, np.float32),
                labels=np.asarray(labels))
  n = len(arrays['ids'])
  for key, value in arrays.items():
    if value.shape[:1] != (n,):
      raise ValueError(f'{path}: {key} has shape {value.shape}, expected '
                       f'{n} rows like ids.')
  if label_names is not None:
    arrays[LABEL_NAMES] = np.asarray(list(label_names), dtype=str)
  if step is not None:
    arrays[STEP] = np.int64(step)
  with fileio.atomic_open(path) as f:
    np.savez(f, **arrays)
  return path


def write_rows(workdir, name: str, split: str, rows: ItemRows,
               step: Optional[int] = None) -> epath.Path:
  """write_representations of an ItemRows."""
  return write_representations(
      workdir, name, split, ids=rows.ids, album_ids=rows.album_ids,
      representation=rows.representation, scores=rows.scores,
      labels=rows.labels, label_names=rows.label_names, step=step)


def load_representations(workdir, name: str,
                         split: str) -> Dict[str, np.ndarray]:
  """Reads workdir/representations/<name>/<split>.npz.

  Returns:
    key -> array for KEYS (plus label_names / step when present).

  Raises:
    FileNotFoundError: naming the file and the command that writes it.
    ValueError: a file without the KEYS.
  """
  path = workdir_lib.representation_path(workdir, name, split)
  if not path.is_file():
    raise FileNotFoundError(
        f'{path} not found: the stage in {workdir} has not extracted its '
        f'{name!r} representations; run `python main.py --config=... '
        f'--workdir={workdir} --mode=extract --split=all`.')
  with path.open('rb') as f, np.load(f) as data:
    missing = [k for k in KEYS if k not in data]
    if missing:
      raise ValueError(f'{path} lacks the keys {missing} (has '
                       f'{sorted(data.files)}); extract it again.')
    return {k: data[k] for k in data.files}


# ---------------------------------------------------------------- grouping


def group_mean(keys: Sequence[str], *arrays: np.ndarray
               ) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
  """Means of rows that share a key (a segment mean), in first-seen order.

  Used to average window outputs per track, then track outputs per album
  (paper Sec 7.3.1; whole-track prediction: docs/fidelity.md).

  Args:
    keys: [N] group of each row.
    *arrays: each [N, ...] float.

  Returns:
    (unique keys [G] in order of first appearance, index [G] of each group's
    first row, the group means of each array [G, ...] float32; computed in
    float64).
  """
  keys = np.asarray(keys)
  unique, first, inverse = np.unique(keys, return_index=True,
                                     return_inverse=True)
  inverse = inverse.reshape(-1)
  # np.unique sorts; renumber groups by first appearance.
  order = np.argsort(first, kind='stable')
  rank = np.empty_like(order)
  rank[order] = np.arange(len(order))
  group = rank[inverse]
  counts = np.bincount(group, minlength=len(order)).astype(np.float64)
  means = []
  for array in arrays:
    array = np.asarray(array, np.float64)
    if array.shape[:1] != keys.shape:
      raise ValueError(f'group_mean: an array has {array.shape[0]} rows, '
                       f'keys have {keys.shape[0]}.')
    sums = np.zeros((len(order),) + array.shape[1:], np.float64)
    np.add.at(sums, group, array)
    counts_b = counts.reshape((-1,) + (1,) * (array.ndim - 1))
    means.append((sums / counts_b).astype(np.float32))
  return unique[order], first[order], means


# ------------------------------------------------------------------- joins


@dataclasses.dataclass
class Joined:
  """Rows present in every input of a fusion / alignment stage.

  Attributes:
    ids: [N] ids of the base input's rows (the first track-level input,
      else the first input).
    album_ids: [N] their albums.
    labels: [N, L] or [N], the base input's labels.
    inputs: name -> float32 [N, R_name], aligned with ids.
    dropped: name -> rows of that input not in the join.
    label_names: the L label names, or None.
  """
  ids: np.ndarray
  album_ids: np.ndarray
  labels: np.ndarray
  inputs: Dict[str, np.ndarray]
  dropped: Dict[str, int]
  label_names: Optional[List[str]] = None

  def __len__(self) -> int:
    return len(self.ids)


def _is_track_level(data: Mapping[str, np.ndarray]) -> bool:
  return bool(np.any(data['ids'] != data['album_ids']))


def _row_index(ids: np.ndarray, where: str) -> Dict[str, int]:
  index = {}
  for row, item in enumerate(ids.tolist()):
    if item in index:
      raise ValueError(f'{where}: id {item!r} appears on rows '
                       f'{index[item]} and {row}; each item must appear once '
                       '(extract it again).')
    index[item] = row
  return index


def join(inputs: Mapping[str, Mapping[str, np.ndarray]],
         where: str = 'inputs') -> Joined:
  """Joins representation files on their ids.

  Args:
    inputs: name -> a load_representations() dict; at least one.
    where: names the inputs in errors and logs (e.g. the split).

  Returns:
    The Joined rows: those of the base input present in every input. An
    album-level input joins a track-level base through the base's album_ids.
  """
  if not inputs:
    raise ValueError(f'{where}: no inputs to join; set config.data.inputs.')
  names = list(inputs)
  track_level = [n for n in names if _is_track_level(inputs[n])]
  base_name = track_level[0] if track_level else names[0]
  base = inputs[base_name]
  keep = np.ones(len(base['ids']), bool)
  rows = {base_name: np.arange(len(base['ids']))}
  for name in names:
    if name == base_name:
      continue
    data = inputs[name]
    # An album-level input under a track-level base: match albums.
    by_album = name not in track_level and base_name in track_level
    keys = base['album_ids'] if by_album else base['ids']
    index = _row_index(data['ids'], f'{where} {name}')
    found = np.asarray([index.get(k, -1) for k in keys.tolist()], np.int64)
    keep &= found >= 0
    rows[name] = found
  dropped = {}
  for name in names:
    used = np.unique(rows[name][keep])
    dropped[name] = int(len(inputs[name]['ids']) - len(used))
  if any(dropped.values()):
    logging.warning('%s: joining %s on %s ids dropped rows %s; %d rows '
                    'remain.', where, names, base_name, dropped,
                    int(keep.sum()))
  if not keep.any():
    raise ValueError(
        f'{where}: the inputs {names} share no item ids (e.g. {base_name} has '
        f'{base["ids"][:3].tolist()}); were they extracted from the same '
        'dataset and splits?')
  label_names = None
  for name in [base_name] + names:
    if LABEL_NAMES in inputs[name]:
      label_names = [str(x) for x in inputs[name][LABEL_NAMES]]
      break
  base_rows = rows[base_name][keep]
  return Joined(
      ids=base['ids'][base_rows], album_ids=base['album_ids'][base_rows],
      labels=base['labels'][base_rows],
      inputs={n: np.asarray(inputs[n]['representation'][rows[n][keep]],
                            np.float32) for n in names},
      dropped=dropped, label_names=label_names)


def load_joined(input_workdirs: Mapping[str, str], split: str) -> Joined:
  """Loads and joins config.data.inputs (name -> stage workdir) of a split."""
  if not input_workdirs:
    raise ValueError('config.data.inputs is empty; map each representation '
                     'name to the stage workdir that extracted it, e.g. '
                     "--config.data.inputs='{\"audio\": \"W/audio\"}'.")
  empty = [name for name, workdir in input_workdirs.items() if not workdir]
  if empty:
    raise ValueError(
        f'config.data.inputs.{empty[0]} is empty: set it to the stage workdir '
        f'that extracted the {empty[0]!r} representations, e.g. '
        f'--config.data.inputs.{empty[0]}=runs/<pipeline>/{empty[0]}.')
  loaded = {name: load_representations(workdir, name, split)
            for name, workdir in input_workdirs.items()}
  return join(loaded, where=f'{split} split')

"""Label matrices of a stage's data: the rows its label factors come from.

One row per album of the train + val splits (tracks of one album share the
album's labels, so tracks are deduplicated to albums, paper Sec 7.3), from
the shards' records or from a fusion stage's joined representations.

  albums, matrix = label_matrix.read_album_labels(shard_dir, 'audio',
                                                  ('train', 'val'))
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmgenre_jax.core import ppmi_svd
from mmgenre_jax.data import sources


def read_album_labels(data, modality: str,
                      splits: Iterable[str]) -> Tuple[List[str], np.ndarray]:
  """Album ids and labels of some splits, one row per album.

  Only `album_id` and `labels` are parsed (tracks of one album share the
  album's labels, so tracks are deduplicated to albums).

  Args:
    data: open_data's records, or a shard directory.
    modality: whose records to read.
    splits: e.g. ('train', 'val').

  Returns:
    album ids (first-seen order) and the binary matrix float32 [A, L].
  """
  data = sources.as_data(data)
  num_labels = len(data.manifest['labels'])
  rows: Dict[str, np.ndarray] = {}
  for split in splits:
    ds = data.album_labels(modality, split)
    for album, ids in ds.as_numpy_iterator():
      album = album.decode('utf-8')
      if album not in rows:
        row = np.zeros(num_labels, np.float32)
        row[ids] = 1.0
        rows[album] = row
  if not rows:
    raise ValueError(f'{data.where}: no {modality} records in splits '
                     f'{list(splits)}; the label factors need labelled '
                     'training albums.')
  return list(rows), np.stack(list(rows.values()))


def label_names(source) -> Optional[List[str]]:
  """The label names of a stage's data (columns of its scores)."""
  if isinstance(source, sources.ShardSource):
    return list(source.manifest['labels'])
  return source.split('train').label_names


def shard_label_matrix(data, modalities: Sequence[str]
                       ) -> Tuple[List[str], np.ndarray, List[str]]:
  """(album ids, binary label matrix [A, L], label names) of the train + val
  albums of the records of some modalities (their union, first-seen order).

  `data`: sources.open_data's records, or a shard directory.
  """
  data = sources.as_data(data)
  names = list(data.manifest['labels'])
  rows: Dict[str, np.ndarray] = {}
  for modality in modalities:
    items, matrix = read_album_labels(data, modality,
                                      ppmi_svd.FACTORIZE_SPLITS)
    for item, row in zip(items, matrix):
      rows.setdefault(item, row)
  matrix = (np.stack(list(rows.values())) if rows
            else np.zeros((0, len(names)), np.float32))
  return list(rows), matrix, names


def representation_label_matrix(
    source: sources.RepresentationSource, num_labels: int
) -> Tuple[List[str], np.ndarray, List[str]]:
  """(item ids, binary label matrix, label names) of the joined train + val
  rows of a fusion stage (class ids become one-hot rows)."""
  ids, rows, names = [], [], None
  for split in ppmi_svd.FACTORIZE_SPLITS:
    joined = source.split(split)
    labels = joined.labels
    if labels.ndim == 1:
      labels = np.eye(num_labels, dtype=np.float32)[labels.astype(np.int64)]
    ids += joined.ids.tolist()
    rows.append(np.asarray(labels, np.float32))
    names = names or joined.label_names
  names = names or [str(i) for i in range(num_labels)]
  return ids, np.concatenate(rows), names

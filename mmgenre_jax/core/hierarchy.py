"""Hierarchy-consistent label decisions over a genre taxonomy.

A MuMu album carries every branch of its taxonomy paths (paper Sec 7.1.1:
`Jazz/Vocal Jazz` gives `Jazz` and `Vocal Jazz`), so a decision of a child
label implies its parent: the true-path rule. Pure functions on label-index
arrays; the taxonomy is `label -> parent or None` as
input_pipeline.formats.mumu.read_taxonomy returns it.

  parents = hierarchy.parent_indices(labels, taxonomy)   # int [L]
  decided = hierarchy.with_ancestors(decided, parents)   # bool [..., L]
  top = hierarchy.roots(parents)                         # bool [L]
"""

from typing import Mapping, Optional, Sequence

import numpy as np


def parent_indices(labels: Sequence[str],
                   taxonomy: Mapping[str, Optional[str]]) -> np.ndarray:
  """Index of each label's nearest ancestor among `labels`, or -1.

  A parent the model does not predict (dropped by --min-albums, say) is
  skipped up to the next ancestor it does; a label the taxonomy does not
  know, or whose chain holds no predicted label, is a root (-1).

  Args:
    labels: the model's label names, [L].
    taxonomy: label -> parent label (None at the top level).

  Returns:
    int64 [L].
  """
  index = {label: j for j, label in enumerate(labels)}
  parents = np.full(len(labels), -1, np.int64)
  for j, label in enumerate(labels):
    seen = {label}
    parent = taxonomy.get(label)
    while parent is not None and parent not in seen:
      if parent in index:
        parents[j] = index[parent]
        break
      seen.add(parent)
      parent = taxonomy.get(parent)
  return parents


def roots(parents: np.ndarray) -> np.ndarray:
  """bool [L]: the labels without an ancestor among the model's labels."""
  return np.asarray(parents) < 0


def ancestor_matrix(parents: np.ndarray) -> np.ndarray:
  """bool [L, L]: [j, k] when k is j or one of j's ancestors."""
  parents = np.asarray(parents)
  matrix = np.eye(len(parents), dtype=bool)
  for j in range(len(parents)):
    k = parents[j]
    # parent_indices never points at a label's own descendant; the bound
    # only guards against a hand-made cyclic array.
    for _ in range(len(parents)):
      if k < 0:
        break
      matrix[j, k] = True
      k = parents[k]
  return matrix


def with_ancestors(decided: np.ndarray, parents: np.ndarray) -> np.ndarray:
  """Adds every ancestor of every decided label (never a child alone).

  Args:
    decided: bool [..., L].
    parents: int [L] from parent_indices.

  Returns:
    bool [..., L], a superset of `decided`, closed under parent.
  """
  decided = np.asarray(decided, dtype=bool)
  return (decided.astype(np.int64) @ ancestor_matrix(parents)) > 0

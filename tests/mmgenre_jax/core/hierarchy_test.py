"""mmgenre_jax.core.hierarchy: the true-path rule on label-index arrays."""

import numpy as np

from input_pipeline.formats import mumu
from mmgenre_jax.core import hierarchy

# A three-level tree; 'Bebop' sits under 'Jazz' through 'Modern Jazz', which
# the model does not predict.
TAXONOMY = {'Jazz': None, 'Modern Jazz': 'Jazz', 'Bebop': 'Modern Jazz',
            'Vocal Jazz': 'Jazz', 'Rock': None, 'Indie Rock': 'Rock',
            'Twee': 'Indie Rock'}
LABELS = ('Rock', 'Indie Rock', 'Twee', 'Jazz', 'Bebop', 'Vocal Jazz',
          'Unknown')


def test_parent_indices_skip_labels_the_model_lacks():
  parents = hierarchy.parent_indices(LABELS, TAXONOMY)
  # Bebop's parent Modern Jazz is not a label: its nearest ancestor is Jazz.
  np.testing.assert_array_equal(parents, [-1, 0, 1, -1, 3, 3, -1])
  np.testing.assert_array_equal(
      hierarchy.roots(parents),
      [True, False, False, True, False, False, True])


def test_a_decided_child_brings_every_ancestor():
  parents = hierarchy.parent_indices(LABELS, TAXONOMY)
  decided = np.array([[False, False, True, False, False, False, False],
                      [False, False, False, False, True, True, False],
                      [False, False, False, False, False, False, True],
                      [True, False, False, False, False, False, False]])
  closed = hierarchy.with_ancestors(decided, parents)
  np.testing.assert_array_equal(closed, [
      [True, True, True, False, False, False, False],   # Twee -> Indie, Rock
      [False, False, False, True, True, True, False],   # two Jazz children
      [False, False, False, False, False, False, True],  # unknown: alone
      [True, False, False, False, False, False, False]])  # a parent alone
  # Closed under parent: no decided child without its parent.
  child = parents >= 0
  assert not (closed[:, child] & ~closed[:, parents[child]]).any()
  # Already consistent decisions are unchanged.
  np.testing.assert_array_equal(
      hierarchy.with_ancestors(closed, parents), closed)


def test_ancestor_matrix_of_a_chain():
  np.testing.assert_array_equal(
      hierarchy.ancestor_matrix(np.array([-1, 0, 1])),
      [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_corpus_taxonomy_path_beside_the_prepared_corpus(tmp_path):
  (tmp_path / 'genre_taxonomy.tsv').write_text(
      'label\tparent\nJazz\t\nVocal Jazz\tJazz\n', encoding='utf-8')
  path = mumu.corpus_taxonomy_path({'args': {'data': str(tmp_path)}})
  assert mumu.read_taxonomy(path) == {'Jazz': None, 'Vocal Jazz': 'Jazz'}
  assert mumu.corpus_taxonomy_path({'args': {'data': str(tmp_path / 'x')}}
                                   ) is None
  assert mumu.corpus_taxonomy_path({}) is None

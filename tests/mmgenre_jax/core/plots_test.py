"""mmgenre_jax.core.plots: the numbers drawn, determinism, shape errors."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mmgenre_jax.core import plots

NAMES = ('Pop', 'Rock', 'Jazz')
# Rendered figures are at least this wide (they are drawn >= 1000 px).
MIN_WIDTH = 800
# Pixel standard deviation of a figure with something drawn on it.
MIN_STD = 5.0


def _rng(seed=0):
  return np.random.default_rng(seed)


def _covers(n, size=16):
  return _rng(1).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _heatmaps(n, size=16):
  grid = np.linspace(0.0, 1.0, size)
  return np.broadcast_to(np.outer(grid, grid), (n, size, size)).copy()


def _assert_drawn(fig):
  rgb = plots.to_rgb(fig)
  assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
  assert rgb.shape[1] >= MIN_WIDTH, rgb.shape
  assert rgb.std() > MIN_STD, rgb.std()


def test_row_normalised_confusion_on_a_known_example():
  # True 0, 0, 0, 1, 1 predicted 0, 0, 1, 1, 0; class 2 has no item.
  labels = np.array([0, 0, 0, 1, 1])
  scores = np.eye(3)[[0, 0, 1, 1, 0]] + 0.1
  matrix = plots.row_normalised_confusion(scores, labels, 3)
  np.testing.assert_allclose(matrix, [[2 / 3, 1 / 3, 0.0],
                                      [0.5, 0.5, 0.0],
                                      [0.0, 0.0, 0.0]])
  np.testing.assert_allclose(matrix.sum(axis=1), [1.0, 1.0, 0.0])


def test_per_label_auc_on_a_hand_example():
  scores = np.array([[0.9, 0.1, 0.5],
                     [0.8, 0.7, 0.5],
                     [0.3, 0.2, 0.5],
                     [0.1, 0.6, 0.5]])
  labels = np.array([[1, 0, 1],
                     [0, 1, 1],
                     [1, 0, 1],
                     [0, 1, 1]])
  auc, frequency = plots.per_label_auc(scores, labels)
  # Label 0: positives 0.9, 0.3 vs negatives 0.8, 0.1: 3 of 4 pairs right.
  # Label 1: positives 0.7, 0.6 above negatives 0.1, 0.2. Label 2: no
  # negative, undefined.
  np.testing.assert_allclose(auc[:2], [0.75, 1.0])
  assert np.isnan(auc[2])
  np.testing.assert_array_equal(frequency, [2, 2, 4])
  # Class ids are one-vs-rest: item i of class c is a positive of label c.
  ids_auc, ids_frequency = plots.per_label_auc(scores, np.array([0, 1, 0, 1]))
  np.testing.assert_allclose(ids_auc[:2], [0.75, 1.0])
  assert np.isnan(ids_auc[2])
  np.testing.assert_array_equal(ids_frequency, [2, 2, 0])


def test_tsne_is_deterministic_for_a_seed():
  x = _rng().normal(size=(12, 6))
  # One OpenMP thread: on a loaded 2-core machine sklearn's spinning
  # threads make even 12 points take seconds.
  with threadpool_limits(1, user_api='openmp'):
    first = plots.tsne(x, seed=3)
    second = plots.tsne(x, seed=3)
    small = plots.tsne(x[:5], seed=3, perplexity=30.0)  # clipped to 2
  assert first.dtype == np.float32 and first.shape == (12, 2)
  np.testing.assert_array_equal(first, second)
  assert np.all(np.isfinite(first)) and first.std() > 0
  assert small.shape == (5, 2)
  with pytest.raises(ValueError, match='at least 5 points'):
    plots.tsne(x[:4], seed=0)
  with pytest.raises(ValueError, match=r'\[N, D\]'):
    plots.tsne(x[0], seed=0)


def _figures():
  rng = _rng()
  scores = rng.random((30, 3))
  ids = rng.integers(0, 3, 30)
  points = rng.normal(size=(8, 2))
  groups = np.array(['Pop', 'Rock', 'Jazz', 'Pop'] * 2)
  steps = np.array([0, 10, 20])
  return {
      'confusion': lambda: plots.confusion_matrices(
          [('test', scores, ids), ('val', scores[::-1], ids)], NAMES,
          title='MSD-I'),
      'auc_bars': lambda: plots.label_auc_bars(
          NAMES, np.array([0.7, np.nan, 0.9]), np.array([5, 0, 7]),
          title='test'),
      'scatter': lambda: plots.scatter_groups(points, groups, title='t-SNE'),
      'thumbnails': lambda: plots.thumbnail_scatter(
          points, _covers(8), groups, zoom=1.0),
      'cam_grid': lambda: plots.cam_grid(_covers(5), _heatmaps(5),
                                         [f'c{i}' for i in range(5)],
                                         ncols=3, title='CAM'),
      'cam_pair': lambda: plots.cam_pair(
          _covers(1)[0], [('Pop', _heatmaps(1)[0]),
                          ('Rock', 1 - _heatmaps(1)[0])]),
      'curves': lambda: plots.training_curves({
          'audio': {'train/loss': (steps, [1.0, 0.7, 0.5]),
                    'val/loss': (steps, [1.1, 0.9, 0.8]),
                    'val/roc_auc': (steps, [0.5, 0.6, 0.7])},
          'fused': {'train/loss': (steps, [0.9, 0.5, 0.4]),
                    'train/lr': (steps, [0.1, 0.1, 0.05])}}),
  }


@pytest.mark.parametrize('name', sorted(_figures()))
def test_each_figure_is_wide_and_not_blank(name):
  _assert_drawn(_figures()[name]())


def test_save_png_gives_the_same_bytes_twice(tmp_path):
  fig = _figures()['auc_bars']()
  plots.save_png(fig, tmp_path / 'a.png')
  plots.save_png(fig, str(tmp_path / 'sub' / 'b.png'))
  first = (tmp_path / 'a.png').read_bytes()
  assert first.startswith(b'\x89PNG')
  assert first == (tmp_path / 'sub' / 'b.png').read_bytes()
  assert b'Software' not in first
  # No temporary file is left beside the PNGs.
  assert sorted(p.name for p in tmp_path.iterdir()) == ['a.png', 'sub']


@pytest.mark.parametrize('call, message', [
    (lambda: plots.row_normalised_confusion(np.zeros((4, 3)),
                                            np.zeros(5, int), 3),
     r'scores shape \(4, 3\)'),
    (lambda: plots.confusion_matrices([('t', np.zeros((4, 3)),
                                        np.zeros(4, int))], NAMES[:2]),
     r'scores shape \(4, 3\)'),
    (lambda: plots.per_label_auc(np.zeros((4, 3)), np.zeros((4, 2))),
     'labels shape'),
    (lambda: plots.label_auc_bars(NAMES, np.zeros(3), np.zeros(2)),
     'frequency'),
    (lambda: plots.scatter_groups(np.zeros((4, 3)), ['a'] * 4),
     r'\[N, 2\]'),
    (lambda: plots.scatter_groups(np.zeros((4, 2)), ['a'] * 3),
     'groups has 3 rows'),
    (lambda: plots.thumbnail_scatter(np.zeros((4, 2)), _covers(3),
                                     ['a'] * 4), 'images has 3 rows'),
    (lambda: plots.cam_grid(_covers(2), _heatmaps(2, size=8), ['a', 'b']),
     'heatmaps shape'),
    (lambda: plots.cam_grid(_covers(2), _heatmaps(2), ['a']),
     'titles has 1 rows'),
    (lambda: plots.cam_grid(_covers(1), _heatmaps(1) * 2, ['a']),
     r'in \[0, 1\]'),
    (lambda: plots.cam_pair(_covers(1)[0], [('Pop', np.zeros((8, 8)))]),
     "heatmap 'Pop' shape"),
    (lambda: plots.training_curves({'a': {'val/loss': ([0, 1], [1.0])}}),
     'a val/loss: 2 steps but 1 values'),
])
def test_shape_mismatches_raise_value_error(call, message):
  with pytest.raises(ValueError, match=message):
    call()

"""The project's figures: arrays in, a matplotlib Figure out.

Pure drawing functions, no workdir knowledge: the callers (evaluation's
TensorBoard images, reports, notebooks) pass arrays and write the result with
save_png (atomic, local or gs://) or to_rgb (uint8 [H, W, 3] for
`writer.write_images`). Figures are built on matplotlib.figure.Figure with
an Agg canvas, never through pyplot, so no global state is touched and no
display is needed.

  fig = plots.label_auc_bars(names, *plots.per_label_auc(scores, labels))
  plots.save_png(fig, workdir / 'label_auc.png')
"""

import io
import math
from typing import Mapping, Optional, Sequence, Tuple

from matplotlib import colormaps
from matplotlib import lines as mlines
from matplotlib import offsetbox
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure
import numpy as np
from sklearn import manifold
from sklearn import metrics as sk_metrics

from input_pipeline import fileio
from mmgenre_jax.core import metrics

# Resolution of every figure: widths of >= 10 in give >= 1000 px.
DPI = 100
MIN_WIDTH_IN = 10.0
# Fewest points t-SNE embeds (its perplexity needs a few neighbours).
TSNE_MIN_POINTS = 5


def _figure(width: float, height: float) -> Figure:
  fig = Figure(figsize=(max(width, MIN_WIDTH_IN), height), dpi=DPI)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def _finish(fig: Figure, title: Optional[str]) -> Figure:
  """Adds the title, then lays the subplots out around it."""
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def _array(value, ndim: int, name: str, shape_doc: str) -> np.ndarray:
  value = np.asarray(value)
  if value.ndim != ndim:
    raise ValueError(f'{name} must be {shape_doc}, got shape {value.shape}.')
  return value


def _same_length(n: int, **arrays) -> None:
  for name, value in arrays.items():
    if len(value) != n:
      raise ValueError(f'{name} has {len(value)} rows, expected {n} (one '
                       'per point / item).')


def save_png(fig: Figure, path) -> None:
  """Writes `fig` as a PNG to `path` (str or etils.epath, local or gs://).

  Atomic (input_pipeline.fileio); without the Software metadata, so the same
  figure gives the same bytes.
  """
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=fig.dpi, metadata={'Software': None})
  fileio.write_atomic(path, buffer.getvalue())


def to_rgb(fig: Figure) -> np.ndarray:
  """The rendered figure, uint8 [H, W, 3] (for TensorBoard images)."""
  canvas = backend_agg.FigureCanvasAgg(fig)
  canvas.draw()
  return np.array(canvas.buffer_rgba())[..., :3]


def row_normalised_confusion(scores, labels, num_labels: int) -> np.ndarray:
  """Confusion matrix with each row summed to 1.

  Args:
    scores: float [N, L], L = num_labels; the prediction is the arg max.
    labels: int [N], the true class indices in [0, L).
    num_labels: L.

  Returns:
    float64 [L, L], row = true class, column = predicted; a class with no
    item keeps a row of zeros.
  """
  scores = _array(scores, 2, 'scores', 'float [N, L]')
  labels = _array(labels, 1, 'labels', 'int class indices [N]')
  if scores.shape != (len(labels), num_labels):
    raise ValueError(f'scores shape {scores.shape} must be [N, L] = '
                     f'({len(labels)}, {num_labels}).')
  if len(labels) and (labels.min() < 0 or labels.max() >= num_labels):
    raise ValueError(f'labels must be in [0, {num_labels}), found '
                     f'{labels.min()}..{labels.max()}.')
  counts = sk_metrics.confusion_matrix(
      labels, np.argmax(scores, axis=1), labels=np.arange(num_labels)
  ).astype(np.float64) if len(labels) else np.zeros((num_labels,) * 2)
  totals = counts.sum(axis=1, keepdims=True)
  return np.divide(counts, totals, out=np.zeros_like(counts),
                   where=totals > 0)


def confusion_matrices(panels: Sequence[Tuple[str, np.ndarray, np.ndarray]],
                       label_names: Sequence[str], *,
                       title: Optional[str] = None) -> Figure:
  """Row-normalised confusion matrices side by side (single-label, MSD-I).

  Args:
    panels: (panel title, scores float [N, L], labels int [N]) per subplot.
    label_names: L genre names (rows: true, columns: predicted arg max).
    title: figure title.
  """
  if not panels:
    raise ValueError('confusion_matrices needs at least one panel.')
  names = list(label_names)
  num = len(names)
  side = max(4.0, 0.35 * num + 2.5)
  fig = _figure(side * len(panels) + 1.0, side + 1.0)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (panel_title, scores, labels) in zip(axes, panels):
    matrix = row_normalised_confusion(scores, labels, num)
    image = ax.imshow(matrix, cmap='Blues', vmin=0.0, vmax=1.0)
    ax.set_xticks(range(num), names, rotation=60, ha='right',
                  rotation_mode='anchor', fontsize=8)
    ax.set_yticks(range(num), names, fontsize=8)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(f'{panel_title} (N={len(labels)})')
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  return _finish(fig, title)


def per_label_auc(scores, labels) -> Tuple[np.ndarray, np.ndarray]:
  """ROC-AUC and number of positives of each label (metrics.py's AUC).

  Args:
    scores: float [N, L].
    labels: [N, L] multi-hot, or int [N] class indices (one-vs-rest).

  Returns:
    auc float64 [L] (NaN for a label with no positive or no negative),
    frequency int64 [L].
  """
  scores = _array(scores, 2, 'scores', 'float [N, L]')
  labels = np.asarray(labels)
  if labels.ndim == 1:
    if labels.shape[0] != scores.shape[0]:
      raise ValueError(f'labels shape {labels.shape} must be [N] = '
                       f'({scores.shape[0]},) class indices.')
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
      raise ValueError(f'labels must be in [0, {scores.shape[1]}).')
    labels = np.eye(scores.shape[1], dtype=np.int64)[labels.astype(np.int64)]
  auc = metrics.roc_auc_per_label(scores, labels)  # checks [N, L] and 0/1
  return auc, labels.sum(axis=0).astype(np.int64)


def label_auc_bars(label_names: Sequence[str], auc, frequency, *,
                   title: Optional[str] = None) -> Figure:
  """Horizontal bars of the per-label ROC-AUC, best at the top.

  Args:
    label_names: L names.
    auc: float [L]; NaN (undefined) is drawn without a bar, as 'n/a', last.
    frequency: int [L], positives of each label, written beside its bar.
    title: figure title.
  """
  names = list(label_names)
  auc = _array(auc, 1, 'auc', 'float [L]').astype(np.float64)
  frequency = _array(frequency, 1, 'frequency', 'int [L]')
  if not len(auc) == len(frequency) == len(names):
    raise ValueError(f'label_names ({len(names)}), auc ({len(auc)}) and '
                     f'frequency ({len(frequency)}) must have one entry per '
                     'label.')
  # Best first, NaN last; ties keep the label order.
  order = sorted(range(len(names)), key=lambda j: (
      np.isnan(auc[j]), -auc[j] if not np.isnan(auc[j]) else 0.0, j))
  fig = _figure(10.0, max(3.0, 0.28 * len(names) + 1.5))
  ax = fig.subplots()
  rows = np.arange(len(order))
  values = np.nan_to_num(auc[order], nan=0.0)
  ax.barh(rows, values, color='tab:blue', height=0.7)
  for row, j in zip(rows, order):
    text = 'n/a' if np.isnan(auc[j]) else f'{auc[j]:.3f}'
    ax.text(values[row] + 0.01, row, f'{text}  (n={int(frequency[j])})',
            va='center', fontsize=8)
  ax.axvline(0.5, color='gray', linestyle='--', linewidth=1)
  ax.set_yticks(rows, [names[j] for j in order], fontsize=8)
  ax.set_ylim(len(order) - 0.5, -0.5)  # first row at the top
  ax.set_xlim(0.0, 1.25)
  ax.set_xlabel('ROC-AUC  (n = positive items)')
  return _finish(fig, title)


def tsne(x, *, seed: int, perplexity: float = 30.0) -> np.ndarray:
  """2-D t-SNE (sklearn, PCA init) of the rows of x.

  Args:
    x: float [N, D], N >= 5.
    seed: random_state; the same x and seed give the same output.
    perplexity: clipped to [2, (N - 1) / 3] for small N.

  Returns:
    float32 [N, 2].
  """
  x = _array(x, 2, 'x', 'float [N, D]').astype(np.float64)
  if len(x) < TSNE_MIN_POINTS:
    raise ValueError(f't-SNE needs at least {TSNE_MIN_POINTS} points, got '
                     f'{len(x)}.')
  if not np.all(np.isfinite(x)):
    raise ValueError('x has non-finite values (NaN or inf).')
  perplexity = max(2.0, min(float(perplexity), (len(x) - 1) / 3.0))
  model = manifold.TSNE(n_components=2, perplexity=perplexity, init='pca',
                        random_state=seed)
  return model.fit_transform(x).astype(np.float32)


def _group_colours(groups) -> Tuple[np.ndarray, dict]:
  """(groups as str [N], sorted name -> tab20 colour)."""
  groups = np.asarray(groups).astype(str)
  cmap = colormaps['tab20']
  return groups, {g: cmap(i % cmap.N)
                  for i, g in enumerate(sorted(set(groups.tolist())))}


def _points_and_groups(points, groups) -> Tuple[np.ndarray, np.ndarray,
                                                dict]:
  points = _array(points, 2, 'points', 'float [N, 2]')
  if points.shape[1] != 2:
    raise ValueError(f'points must be [N, 2], got shape {points.shape}.')
  groups = _array(groups, 1, 'groups', 'str [N]')
  _same_length(len(points), groups=groups)
  groups, colours = _group_colours(groups)
  return points.astype(np.float64), groups, colours


def _group_legend(ax, groups: np.ndarray, colours: dict) -> None:
  handles = [mlines.Line2D([], [], marker='o', linestyle='', color=colour,
                           label=f'{g} ({int(np.sum(groups == g))})')
             for g, colour in colours.items()]
  ax.legend(handles=handles, loc='center left', bbox_to_anchor=(1.01, 0.5),
            fontsize=8, frameon=False)


def scatter_groups(points, groups, *, title: Optional[str] = None) -> Figure:
  """Points coloured by group (tab20 over the sorted group names).

  Args:
    points: float [N, 2] (e.g. tsne output).
    groups: str [N], e.g. each item's genre.
    title: figure title.
  """
  points, groups, colours = _points_and_groups(points, groups)
  fig = _figure(11.0, 8.0)
  ax = fig.subplots()
  for group, colour in colours.items():
    at = groups == group
    ax.scatter(points[at, 0], points[at, 1], s=14, color=colour, alpha=0.8)
  _group_legend(ax, groups, colours)
  ax.set_xticks([])
  ax.set_yticks([])
  return _finish(fig, title)


def thumbnail_scatter(points, images, groups, *, title: Optional[str] = None,
                      zoom: float = 0.25) -> Figure:
  """Each image drawn at its point, bordered in its group's colour.

  Args:
    points: float [N, 2].
    images: uint8 [N, h, w, 3], e.g. album covers.
    groups: str [N]; colours as in scatter_groups.
    title: figure title.
    zoom: image scale (1.0 = one image pixel per figure pixel).
  """
  points, groups, colours = _points_and_groups(points, groups)
  images = _array(images, 4, 'images', 'uint8 [N, h, w, 3]')
  _same_length(len(points), images=images)
  if images.shape[-1] != 3:
    raise ValueError(f'images must be RGB [N, h, w, 3], got {images.shape}.')
  fig = _figure(12.0, 10.0)
  ax = fig.subplots()
  ax.scatter(points[:, 0], points[:, 1], s=1, color='none')  # data limits
  for point, image, group in zip(points, images, groups):
    box = offsetbox.AnnotationBbox(
        offsetbox.OffsetImage(image, zoom=zoom), tuple(point), pad=0.15,
        bboxprops={'edgecolor': colours[group], 'linewidth': 2})
    ax.add_artist(box)
  ax.margins(0.08)
  _group_legend(ax, groups, colours)
  ax.set_xticks([])
  ax.set_yticks([])
  return _finish(fig, title)


def _check_heatmap(heatmap: np.ndarray, shape, name: str) -> None:
  if heatmap.shape != tuple(shape):
    raise ValueError(f'{name} shape {heatmap.shape} differs from the '
                     f'image size {tuple(shape)}.')
  if not np.all(np.isfinite(heatmap)) or (
      heatmap.size and (heatmap.min() < -1e-6 or heatmap.max() > 1 + 1e-6)):
    raise ValueError(f'{name} must be finite and in [0, 1].')


def _overlay(ax, image: np.ndarray, heatmap: Optional[np.ndarray],
             label: str) -> None:
  ax.imshow(image)
  if heatmap is not None:
    ax.imshow(heatmap, cmap='jet', alpha=0.5, vmin=0.0, vmax=1.0)
  ax.set_title(label, fontsize=9)
  ax.axis('off')


def cam_grid(images, heatmaps, titles: Sequence[str], *, ncols: int = 4,
             title: Optional[str] = None) -> Figure:
  """Covers with their class activation maps overlaid (jet, alpha 0.5).

  Args:
    images: uint8 [N, H, W, 3].
    heatmaps: float [N, H, W] in [0, 1].
    titles: N strings, one above each cover.
    ncols: covers per row.
    title: figure title.
  """
  images = _array(images, 4, 'images', 'uint8 [N, H, W, 3]')
  heatmaps = _array(heatmaps, 3, 'heatmaps', 'float [N, H, W]')
  titles = list(titles)
  _same_length(len(images), heatmaps=heatmaps, titles=titles)
  if not len(images) or ncols < 1:
    raise ValueError('cam_grid needs at least one image and ncols >= 1.')
  _check_heatmap(heatmaps, images.shape[:3], 'heatmaps')
  ncols = min(ncols, len(images))
  nrows = math.ceil(len(images) / ncols)
  # 3.6 in a row: room for a two-line title above each cover.
  fig = _figure(3.0 * ncols, 3.6 * nrows + 0.5)
  axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
  for ax in axes[len(images):]:
    ax.axis('off')
  for ax, image, heatmap, label in zip(axes, images, heatmaps, titles):
    _overlay(ax, image, heatmap, label)
  return _finish(fig, title)


def cam_pair(image, heatmaps: Sequence[Tuple[str, np.ndarray]], *,
             title: Optional[str] = None) -> Figure:
  """One cover plain, then under each label's activation map.

  Args:
    image: uint8 [H, W, 3].
    heatmaps: (label, float [H, W] in [0, 1]) per overlay.
    title: figure title.
  """
  image = _array(image, 3, 'image', 'uint8 [H, W, 3]')
  if not heatmaps:
    raise ValueError('cam_pair needs at least one (label, heatmap).')
  maps = [(label, _array(h, 2, f'heatmap {label!r}', 'float [H, W]'))
          for label, h in heatmaps]
  for label, heatmap in maps:
    _check_heatmap(heatmap, image.shape[:2], f'heatmap {label!r}')
  fig = _figure(3.5 * (len(maps) + 1), 4.0)
  axes = fig.subplots(1, len(maps) + 1, squeeze=False)[0]
  _overlay(axes[0], image, None, 'cover')
  for ax, (label, heatmap) in zip(axes[1:], maps):
    _overlay(ax, image, heatmap, label)
  return _finish(fig, title)


def _is_auc(series: str) -> bool:
  return 'auc' in series


def training_curves(curves: Mapping[str, Mapping[str, Tuple[np.ndarray,
                                                           np.ndarray]]],
                    *, title: Optional[str] = None) -> Figure:
  """Loss and ROC-AUC against the training step, one subplot per stage.

  Args:
    curves: stage name -> series name ('train/loss', 'val/loss',
      'val/roc_auc', or any other) -> (steps int [T], values float [T]).
      Series whose name contains 'auc' go on a right axis in [0, 1], the
      others on the left.
    title: figure title.
  """
  if not curves:
    raise ValueError('training_curves needs at least one stage.')
  for stage, series in curves.items():
    for name, (steps, values) in series.items():
      steps = _array(steps, 1, f'{stage} {name} steps', 'int [T]')
      values = _array(values, 1, f'{stage} {name} values', 'float [T]')
      if len(steps) != len(values):
        raise ValueError(f'{stage} {name}: {len(steps)} steps but '
                         f'{len(values)} values.')
  ncols = min(3, len(curves))
  nrows = math.ceil(len(curves) / ncols)
  fig = _figure(5.0 * ncols, 3.8 * nrows + 0.5)
  axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
  for ax in axes[len(curves):]:
    ax.axis('off')
  colours = colormaps['tab10']
  for ax, (stage, series) in zip(axes, curves.items()):
    right = ax.twinx() if any(map(_is_auc, series)) else None
    handles = []
    for i, (name, (steps, values)) in enumerate(series.items()):
      target = right if _is_auc(name) else ax
      handles += target.plot(np.asarray(steps), np.asarray(values),
                             color=colours(i % 10), label=name,
                             marker='.' if len(steps) < 30 else None)
    ax.set_title(stage)
    ax.set_xlabel('step')
    ax.set_ylabel('loss')
    if right is not None:
      right.set_ylabel('ROC-AUC')
      right.set_ylim(0.0, 1.0)
    if handles:
      ax.legend(handles=handles, fontsize=8, loc='best')
  return _finish(fig, title)

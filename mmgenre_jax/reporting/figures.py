"""The paper's figures of a pipeline workdir: W/figures/<name>.png.

  mmgenre figures runs/mumu_cosine                 # every figure it can draw
  mmgenre figures runs/msdi --only confusion_matrices
  mmgenre report runs                              # tables, then figures

Each figure of FIGURES is drawn from what the stages saved (representations,
checkpoints, TensorBoard events, the pipeline's label factors, the shards'
covers); nothing is trained. A figure whose inputs the workdir lacks (no
image stage, no label factors, a multi-label pipeline for the confusion
matrices) is skipped with one line saying why, never drawn empty. Which
stage a figure reads is chosen by its row of results.json (the modality),
the lowest seed when a pipeline repeats stages over seeds (MSD-I).
Drawing is mmgenre_jax/core/plots.py; file names are FIGURES (used by scripts).
"""

import dataclasses
import os
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

from etils import epath
import numpy as np

from input_pipeline import layout
from mmgenre_jax.reporting import figure_inputs as inputs
from mmgenre_jax.core import plots
from mmgenre_jax.reporting import paper
from mmgenre_jax.data import representations
from mmgenre_jax import workdir as workdir_lib

# Fig 3 (Sec 6.5.1): the MSD-I models whose test confusion matrices it shows,
# by results.json modality.
CONFUSION_MODALITIES = ('audio+mm_audio', 'image',
                        'audio+image+mm_audio+mm_visual')
# Fig 7 / Fig 8 (Sec 7.5): t-SNE of at most this many albums of the
# single-parent-label subset (a seeded sample above it: the full MuMu has
# 31k albums; thumbnails need room to be seen).
TSNE_SEED = 0
TSNE_MAX_ALBUMS = 2000
THUMBNAIL_MAX_ALBUMS = 400
# Fig 5: test covers in the grid.
CAM_COVERS = 8
# Fig 6's covers are looked for among this many test covers, CAM_BATCH at a
# time through the network.
CAM_SEARCH_COVERS = 64
CAM_BATCH = 8
# Fig 6 (Sec 6.5.2): the Metal class map on a Metal album and on a New Age
# album (both with horns, the paper's point: New Age covers taken for Metal).
# The extra cam_two_classes figure shows one cover under both classes.
CAM_CLASS, CAM_OTHER_CLASS = 'Metal', 'New Age'
# The per-epoch series of training_curves, as training writes them.
CURVE_TAGS = ('train/loss', 'val/loss', 'val/roc_auc')


# ------------------------------------------------------------- the figures


def draw_confusion_matrices(pipeline: inputs.Pipeline, **_):
  """Fig 3: row-normalised test confusion of three MSD-I models."""
  panels, names = [], None
  for modality in CONFUSION_MODALITIES:
    stage = pipeline.row_stage(modality)
    if stage is None:
      continue
    data = pipeline.scored(stage, 'test')
    if data['labels'].ndim != 1:
      raise inputs.MissingInput('confusion matrices are for single-label '
                                'pipelines (MSD-I); this one is multi-label.')
    names = inputs.label_names(data, pipeline.stage_dir(stage))
    title = paper.PAPER_TABLE2[modality][0]
    panels.append((f'{title} (seed {inputs.seed(stage)})', data['scores'],
                   data['labels']))
  if not panels:
    raise inputs.MissingInput('none of the stages of Fig 3 (rows '
                              f'{", ".join(CONFUSION_MODALITIES)}) is '
                              'trained.')
  return plots.confusion_matrices(panels, names,
                                  title='Test confusion (rows normalised)')


def draw_label_auc(pipeline: inputs.Pipeline, **_):
  """Per-label test ROC-AUC of the final stage, label frequency beside."""
  final = [s for s in pipeline.info['stages']
           if s['name'] == pipeline.info.get('final')]
  if not final or not workdir_lib.is_training_done(
      pipeline.stage_dir(final[0])):
    raise inputs.MissingInput('the final stage is not trained.')
  data = pipeline.scored(final[0], 'test')
  names = inputs.label_names(data, pipeline.stage_dir(final[0]))
  auc, positives = plots.per_label_auc(data['scores'], data['labels'])
  return plots.label_auc_bars(
      names, auc, positives,
      title=f'Test ROC-AUC per label: {final[0]["name"]}')


def draw_training_curves(pipeline: inputs.Pipeline, **_):
  """Train / val loss and val ROC-AUC per evaluation of every stage."""
  curves = {}
  for stage in pipeline.stages(lambda s: True):
    series = inputs.read_scalars(pipeline.stage_dir(stage), CURVE_TAGS)
    if series:
      curves[stage['name']] = series
  if not curves:
    raise inputs.MissingInput('no stage has TensorBoard events.')
  return plots.training_curves(curves, title='Training curves')


def draw_tsne_album_factors(pipeline: inputs.Pipeline, taxonomy=None, **_):
  """Fig 7: t-SNE of the PPMI-SVD album factors, single-parent subset."""
  factor_dir = pipeline.workdir / workdir_lib.PIPELINE_FACTORS_DIR
  if not workdir_lib.factors_complete(factor_dir):
    raise inputs.MissingInput(f'no PPMI-SVD label factors in {factor_dir} '
                              '(COSINE pipelines have them).')
  items = workdir_lib.read_lines(factor_dir / workdir_lib.ITEMS_TSV)
  with (factor_dir / workdir_lib.ITEM_FACTORS_NPY).open('rb') as f:
    factors = np.load(f)
  keep, parents = inputs.drawn_subset(pipeline, items,
                                      inputs.album_labels(pipeline),
                                      taxonomy, TSNE_MAX_ALBUMS)
  points = plots.tsne(factors[keep], seed=TSNE_SEED)
  return plots.scatter_groups(
      points, parents, title=f'PPMI album factors, t-SNE ({len(keep)} '
      'single-parent-label train + val albums; one label set, one point)')


def draw_tsne_image_vectors(pipeline: inputs.Pipeline, taxonomy=None, **_):
  """Fig 8: t-SNE of the cover network's vectors, drawn as thumbnails.

  One point per album (MSD-I: the first track row of its cover).
  """
  stage = inputs.image_stage(pipeline)
  splits = [pipeline.scored(stage, split) for split in representations.SPLITS]
  names = inputs.label_names(splits[0], pipeline.stage_dir(stage))
  labels, vectors = {}, {}
  for data in splits:
    inputs.labels_by_album(data, names, labels)
    for album, vector in zip(data['album_ids'], data['representation']):
      vectors.setdefault(str(album), vector)
  ids = sorted(vectors)
  keep, parents = inputs.drawn_subset(pipeline, ids, labels, taxonomy,
                                 THUMBNAIL_MAX_ALBUMS)
  shard_dir = inputs.stage_shard_dir(pipeline, stage)
  covers = {}
  for split in representations.SPLITS:
    for album, cover in zip(*inputs.read_covers(shard_dir, split)):
      covers.setdefault(str(album), cover)
  missing = [ids[i] for i in keep if ids[i] not in covers]
  if missing:
    raise inputs.MissingInput(f'{len(missing)} covers (e.g. {missing[0]}) are '
                              f'not in {shard_dir}; prepare again.')
  points = plots.tsne(np.stack([vectors[ids[i]] for i in keep]),
                      seed=TSNE_SEED)
  return plots.thumbnail_scatter(
      points, np.stack([covers[ids[i]] for i in keep]), parents,
      title=f'Cover vectors of {stage["name"]!r}, t-SNE ({len(keep)} '
      'single-parent-label albums)')


def _cam_stage(pipeline: inputs.Pipeline):
  """(the image Stage, test album ids [N], covers uint8 [N, C, C, 3],
  standardise: uint8 covers -> network input) for the CAM figures."""
  # JAX and the checkpoint reader only for the CAM figures.
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import normalisation
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.tagging import remote
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.tagging.model import stages as stages_lib
  entry = inputs.image_stage(pipeline)
  shard_dir = inputs.stage_shard_dir(pipeline, entry)
  ids, covers = inputs.read_covers(shard_dir, 'test', CAM_SEARCH_COVERS)
  if not len(ids):
    raise inputs.MissingInput(f'{shard_dir} has no test covers.')
  # The stage code reads local files: a gs:// stage is read from a copy.
  stage = stages_lib.load_stage(
      remote.local_model(os.fspath(pipeline.stage_dir(entry))),
      entry['name'])
  mean, std = normalisation.image_normalisation(
      workdir_lib.read_json(shard_dir / layout.MANIFEST_JSON, strict=True))
  return stage, ids, covers, lambda c: (c.astype(np.float32) / 255.0 -
                                        mean) / std


def _cam(stage, covers: np.ndarray, standardise, labels=None):
  """(scores [N, L], unit-range maps [N, C, C] of labels[i], default each
  cover's top label), CAM_BATCH covers at a time: the maps of every label
  of a batch ([B, C, C, L]) are large at 224 px and hundreds of labels."""
  from mmgenre_jax.tagging import explain  # pylint: disable=g-import-not-at-top
  scores, heatmaps = [], []
  for start in range(0, len(covers), CAM_BATCH):
    batch_scores, maps = explain.class_maps(
        stage, standardise(covers[start:start + CAM_BATCH]))
    chosen = (np.argmax(batch_scores, axis=1) if labels is None
              else labels[start:start + CAM_BATCH])
    scores.append(batch_scores)
    heatmaps += [explain.unit_range(maps[i, :, :, j])
                 for i, j in enumerate(chosen)]
  return np.concatenate(scores), np.stack(heatmaps)


def draw_cam_examples(pipeline: inputs.Pipeline, **_):
  """Fig 5: test covers under the activation map of their top genre."""
  stage, ids, covers, standardise = _cam_stage(pipeline)
  ids, covers = ids[:CAM_COVERS], covers[:CAM_COVERS]
  scores, heatmaps = _cam(stage, covers, standardise)
  truth = _test_truth(pipeline)
  titles = [f'{stage.labels[j]} ({scores[i, j]:.2f})\ntrue: '
            f'{", ".join(truth.get(str(ids[i]), [])[:2]) or "?"}'
            for i, j in enumerate(np.argmax(scores, axis=1))]
  return plots.cam_grid(covers, heatmaps, titles,
                        title=f'Class activation maps of the top genre '
                        f'({stage.name}, test covers)')


def _test_truth(pipeline: inputs.Pipeline) -> Dict[str, List[str]]:
  """Test album id -> its true label names, from the image stage."""
  entry = inputs.image_stage(pipeline)
  test = pipeline.scored(entry, 'test')
  return inputs.labels_by_album(
      test, inputs.label_names(test, pipeline.stage_dir(entry)))


def _one_class_covers(labels: Sequence[str], ids, scores: np.ndarray,
                      truth: Mapping[str, Sequence[str]]
                      ) -> Tuple[int, int, int]:
  """(class, cover of that class, cover of another class) for Fig 6.

  The paper's CAM_CLASS on its highest-scored album of CAM_CLASS and on its
  highest-scored album of CAM_OTHER_CLASS (not CAM_CLASS). Without those
  labels or albums: the class of the highest score, on its highest-scored
  album of the class and its highest-scored album without it.

  Args:
    labels: the network's label names [L].
    ids: test album ids [N].
    scores: their scores [N, L].
    truth: album id -> true label names.

  Raises:
    inputs.MissingInput: no class has both kinds of album among the covers.
  """
  def best(label: int, has: Optional[str], lacks: Optional[str] = None
           ) -> Optional[int]:
    """The cover scored highest for `label` whose album has / lacks those."""
    found = [i for i in range(len(ids))
             if (has is None or has in truth.get(str(ids[i]), ()))
             and (lacks is None or lacks not in truth.get(str(ids[i]), ()))]
    return max(found, key=lambda i: scores[i, label]) if found else None

  if CAM_CLASS in labels:
    label = labels.index(CAM_CLASS)
    own = best(label, CAM_CLASS)
    other = best(label, CAM_OTHER_CLASS, lacks=CAM_CLASS)
    if own is not None and other is not None:
      return label, own, other
  label = int(np.unravel_index(np.argmax(scores), scores.shape)[1])
  own = best(label, labels[label])
  other = best(label, None, lacks=labels[label])
  if own is None or other is None:
    raise inputs.MissingInput(
        f'the first {len(ids)} test covers have no album of the class '
        f'{labels[label]!r} and one without it.')
  return label, own, other


def draw_cam_one_class(pipeline: inputs.Pipeline, **_):
  """Fig 6: one class's activation map on an album of that class and on an
  album of another class (the paper: Metal on a Metal and a New Age
  cover)."""
  stage, ids, covers, standardise = _cam_stage(pipeline)
  scores, _ = _cam(stage, covers, standardise)
  truth = _test_truth(pipeline)
  label, own, other = _one_class_covers(stage.labels, ids, scores, truth)
  picked = [own, other]
  _, heatmaps = _cam(stage, covers[picked], standardise, [label, label])
  name = stage.labels[label]
  titles = [f'{ids[i]}: {name} {scores[i, label]:.2f}\ntrue: '
            f'{", ".join(truth.get(str(ids[i]), [])[:2]) or "?"}'
            for i in picked]
  return plots.cam_grid(covers[picked], heatmaps, titles, ncols=2,
                        title=f'Class activation map of {name} on two test '
                        'covers')


def draw_cam_two_classes(pipeline: inputs.Pipeline, **_):
  """One test cover under two classes (Metal and New Age when the network
  has them): an extra view beside Fig 6, not a figure of the paper.

  The cover is the test cover (of the first CAM_SEARCH_COVERS) scored
  highest for the first class; without those classes, the most confidently
  scored cover under its two best labels.
  """
  stage, ids, covers, standardise = _cam_stage(pipeline)
  scores, _ = _cam(stage, covers, standardise)
  two_classes = (CAM_CLASS, CAM_OTHER_CLASS)
  if all(c in stage.labels for c in two_classes):
    classes = [stage.labels.index(c) for c in two_classes]
    cover = int(np.argmax(scores[:, classes[0]]))
  else:
    cover = int(np.argmax(scores.max(axis=1)))
    classes = [int(j) for j in np.argsort(-scores[cover], kind='stable')[:2]]
  image = covers[cover:cover + 1]
  heatmaps = [(f'{stage.labels[j]} ({scores[cover, j]:.2f})',
               _cam(stage, image, standardise, [j])[1][0]) for j in classes]
  return plots.cam_pair(image[0], heatmaps,
                        title=f'Test cover {ids[cover]} under two classes')


@dataclasses.dataclass(frozen=True)
class FigureSpec:
  file: str
  caption: str
  draw: Callable[..., Any]


# name -> the figure; the order of `mmgenre figures` and of report.md.
FIGURES = {
    'confusion_matrices': FigureSpec(
        'confusion_matrices.png', 'Fig 3: test confusion matrices (MSD-I)',
        draw_confusion_matrices),
    'cam_examples': FigureSpec(
        'cam_examples.png', 'Fig 5: class activation maps of test covers',
        draw_cam_examples),
    'cam_one_class': FigureSpec(
        'cam_one_class.png',
        'Fig 6: one class\'s activation map on an album of that class and '
        'on one of another class', draw_cam_one_class),
    'cam_two_classes': FigureSpec(
        'cam_two_classes.png',
        'One cover under two classes (an extra view beside Fig 6)',
        draw_cam_two_classes),
    'tsne_album_factors': FigureSpec(
        'tsne_album_factors.png',
        'Fig 7: t-SNE of the PPMI album factors (single-parent labels)',
        draw_tsne_album_factors),
    'tsne_image_vectors': FigureSpec(
        'tsne_image_vectors.png',
        'Fig 8: t-SNE of the cover vectors (single-parent labels)',
        draw_tsne_image_vectors),
    'label_auc': FigureSpec('label_auc.png', 'Per-label test ROC-AUC',
                            draw_label_auc),
    'training_curves': FigureSpec(
        'training_curves.png', 'Loss and validation ROC-AUC per stage',
        draw_training_curves),
}


@dataclasses.dataclass
class Outcome:
  """What became of one figure: its path, or why it was skipped."""
  name: str
  path: Optional[epath.Path] = None
  skipped: Optional[str] = None


def write_figures(workdir, only: Optional[Sequence[str]] = None,
                  taxonomy=None, log: Callable[[str], None] = print
                  ) -> List[Outcome]:
  """Draws FIGURES (or `only` those) into W/figures/.

  Args:
    workdir: a pipeline workdir W.
    only: figure names (FIGURES keys); default all.
    taxonomy: a genre taxonomy TSV for the single-parent subset (default:
      the corpus's, found through the shards' manifest).
    log: receives one line per figure (written, or skipped and why).

  Returns:
    One Outcome per figure, in FIGURES order.

  Raises:
    ValueError: an unknown name in `only`.
  """
  unknown = sorted(set(only or ()) - set(FIGURES))
  if unknown:
    raise ValueError(f'unknown figure(s) {unknown}; choose from '
                     f'{list(FIGURES)}.')
  pipeline = inputs.Pipeline.read(workdir)
  out_dir = pipeline.workdir / workdir_lib.FIGURES_DIR
  outcomes = []
  for name, figure in FIGURES.items():
    if only and name not in only:
      continue
    start = time.perf_counter()
    try:
      fig = figure.draw(pipeline, taxonomy=taxonomy)
    except inputs.MissingInput as e:
      outcomes.append(Outcome(name, skipped=str(e)))
      log(f'{pipeline.workdir}: skipped {figure.file}: {e}')
      continue
    path = out_dir / figure.file
    plots.save_png(fig, path)
    outcomes.append(Outcome(name, path=path))
    log(f'{pipeline.workdir}: wrote {path} '
        f'({time.perf_counter() - start:.1f} s)')
  return outcomes


def drawn_figures(workdir) -> List[Outcome]:
  """The figures already in W/figures/ (for a report that does not redraw)."""
  out_dir = epath.Path(workdir) / workdir_lib.FIGURES_DIR
  return [Outcome(name, path=out_dir / figure.file)
          for name, figure in FIGURES.items()
          if (out_dir / figure.file).exists()]


def markdown(outcomes: Sequence[Outcome], relative_to) -> List[str]:
  """The report's figure section: the written figures embedded (links
  relative to `relative_to`, where report.md is), then the skipped ones."""
  relative_to = epath.Path(relative_to)
  lines = ['## Figures', '']
  for outcome in outcomes:
    if outcome.path is not None:
      lines += [f'### {FIGURES[outcome.name].caption}', '',
                f'![{outcome.name}]({outcome.path.relative_to(relative_to)})',
                '']
  skipped = [o for o in outcomes if o.path is None]
  if skipped:
    lines += ['Not drawn:', '']
    lines += [f'- `{FIGURES[o.name].file}`: {o.skipped}' for o in skipped]
    lines.append('')
  return lines

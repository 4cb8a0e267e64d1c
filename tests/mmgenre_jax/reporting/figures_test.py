"""mmgenre figures / report's figures from hand-made pipeline workdirs.

The stages' saved files (representations, label factors, TensorBoard
events) are written here with the project's own writers, so the figures are
drawn from known inputs without training; the CAM figures need a trained
ResNet and are exercised by the main job
(tests/mmgenre_jax/tagging/explain_test.py checks the maps).
"""

import io
import json

from clu import metric_writers
import numpy as np
from PIL import Image
import pytest

from input_pipeline.formats import mumu
from mmgenre_jax import cli
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import figures
from mmgenre_jax.reporting import report
from mmgenre_jax.data import representations
from mmgenre_jax import workdir as workdir_lib

# A two-level taxonomy: three top-level genres with sub-genres.
TAXONOMY = {'Rock': None, 'Hard Rock': 'Rock', 'Punk Rock': 'Rock',
            'Jazz': None, 'Bebop': 'Jazz', 'Pop': None}
LABELS = ('Rock', 'Hard Rock', 'Punk Rock', 'Jazz', 'Bebop', 'Pop')


def test_single_parent_subset_on_a_small_taxonomy():
  labels = {
      'a': ['Rock', 'Hard Rock'],            # one parent: Rock
      'b': ['Hard Rock', 'Punk Rock'],       # both below Rock
      'c': ['Rock', 'Jazz', 'Bebop'],        # two parents: out
      'd': ['Bebop'],                        # Jazz, from the sub-genre
      'e': [],                               # no labels: out
      'f': ['Pop', 'Unknown Label'],         # an unknown label is its own
      'g': ['Pop'],
  }
  ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'not-labelled']
  keep, parents = figure_inputs.single_parent_subset(ids, labels, TAXONOMY)
  assert keep.tolist() == [0, 1, 3, 6]
  assert parents.tolist() == ['Rock', 'Rock', 'Jazz', 'Pop']
  assert mumu.top_level_genre(['Bebop', 'Jazz'], TAXONOMY) == 'Jazz'
  assert mumu.top_level_genre([], TAXONOMY) is None
  # Single-label data (no taxonomy): every labelled item, its one label.
  keep, parents = figure_inputs.single_parent_subset(
      ['x', 'y'], {'x': ['Jazz'], 'y': ['Rock', 'Pop']}, None)
  assert keep.tolist() == [0] and parents.tolist() == ['Jazz']


def _stage(workdir, name, kind, outputs, row):
  stage_dir = workdir / name
  stage_dir.mkdir(parents=True)
  workdir_lib.write_json(stage_dir / workdir_lib.TRAINING_DONE_JSON, {})
  return {'name': name, 'workdir': str(stage_dir), 'config': 'configs/x.py',
          'kind': kind, 'inputs': {}, 'outputs': outputs, 'status': 'done',
          'row': row}


def _write_pipeline(workdir, dataset, stages):
  workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON, {
      'name': workdir.name, 'config': f'configs/{workdir.name}.py:cpu',
      'dataset': dataset, 'final': stages[-1]['name'], 'stages': stages})


def _multi_hot(rng, n):
  """[n, 6] label sets over LABELS, each expanded with its parents."""
  choices = [('Rock', 'Hard Rock'), ('Rock', 'Punk Rock'), ('Jazz', 'Bebop'),
             ('Pop',), ('Rock', 'Pop'), ('Jazz',)]
  out = np.zeros([n, len(LABELS)], np.int64)
  for i in range(n):
    for label in choices[int(rng.integers(len(choices)))]:
      out[i, LABELS.index(label)] = 1
  return out


@pytest.fixture
def mumu_workdir(tmp_path):
  """A COSINE MuMu pipeline W: one fusion stage's representations (all
  splits, with labels), W/label_factors/, TensorBoard scalars."""
  rng = np.random.default_rng(0)
  workdir = tmp_path / 'mumu_cosine'
  stage = _stage(workdir, 'fused', 'fusion', ['fusion'],
                 {'dataset': 'mumu', 'modality': 'audio+text',
                  'target': 'cosine', 'settings': 'mlp', 'seed': 0})
  ids = {}
  for split, n in (('train', 40), ('val', 10), ('test', 12)):
    labels = _multi_hot(rng, n)
    ids[split] = [f'{split}{i}' for i in range(n)]
    # Scores that follow the labels, so the per-label AUC is high.
    scores = labels + rng.normal(0, 0.3, labels.shape)
    representations.write_representations(
        stage['workdir'], 'fusion', split, ids=ids[split],
        album_ids=ids[split], representation=rng.normal(size=(n, 4)),
        scores=scores, labels=labels, label_names=LABELS)
    if split == 'train':
      train_labels = labels
  # Album factors: a label set's factor is the mean of its labels' rows.
  label_factors = rng.normal(size=(len(LABELS), 3))
  item_factors = (train_labels @ label_factors /
                  train_labels.sum(axis=1, keepdims=True))
  workdir_lib.write_factors(workdir / workdir_lib.PIPELINE_FACTORS_DIR,
                            label_factors, item_factors, LABELS,
                            ids['train'])
  writer = metric_writers.create_default_writer(stage['workdir'],
                                                asynchronous=False)
  for step in (10, 20, 30):
    writer.write_scalars(step, {'train/loss': 1.0 / step,
                                'val/loss': 2.0 / step,
                                'val/roc_auc': 0.5 + step / 100})
  writer.write_scalars(30, {'val/loss': 0.01})  # rewritten on a resume
  writer.close()
  _write_pipeline(workdir, 'mumu', [stage])
  taxonomy = tmp_path / 'genre_taxonomy.tsv'
  taxonomy.write_text('label\tparent\n' + ''.join(
      f'{label}\t{parent or ""}\n' for label, parent in TAXONOMY.items()))
  return workdir, taxonomy


def _png_size(path):
  with Image.open(io.BytesIO(path.read_bytes())) as image:
    image.verify()
  with Image.open(path) as image:
    rgb = np.asarray(image.convert('RGB'))
  return image.size, rgb


def test_tsne_of_album_factors_is_the_same_for_a_seed(mumu_workdir):
  workdir, taxonomy = mumu_workdir
  path = workdir / workdir_lib.FIGURES_DIR / 'tsne_album_factors.png'
  figures.write_figures(workdir, ['tsne_album_factors'], taxonomy)
  first = path.read_bytes()
  path.unlink()
  figures.write_figures(workdir, ['tsne_album_factors'], taxonomy)
  assert path.read_bytes() == first
  (width, _), rgb = _png_size(path)
  assert width >= 800 and rgb.std() > 5.0


def test_curves_and_label_auc_from_saved_files(mumu_workdir):
  workdir, _ = mumu_workdir
  scalars = figure_inputs.read_scalars(workdir / 'fused', figures.CURVE_TAGS)
  assert scalars['train/loss'][0].tolist() == [10, 20, 30]
  np.testing.assert_allclose(scalars['val/roc_auc'][1], [0.6, 0.7, 0.8])
  # The step written twice keeps its last value.
  np.testing.assert_allclose(scalars['val/loss'][1], [0.2, 0.1, 0.01])
  outcomes = figures.write_figures(workdir, ['label_auc', 'training_curves'],
                                   log=lambda line: None)
  for outcome in outcomes:
    assert outcome.skipped is None
    (width, _), rgb = _png_size(outcome.path)
    assert width >= 800 and rgb.std() > 5.0


def test_missing_inputs_skip_the_figure_with_a_message(mumu_workdir):
  workdir, _ = mumu_workdir
  lines = []
  # No taxonomy given and none beside the (absent) shards; no image stage;
  # multi-label, so no confusion matrices.
  outcomes = {o.name: o for o in figures.write_figures(
      workdir, ['confusion_matrices', 'cam_examples', 'tsne_image_vectors',
                'tsne_album_factors'], log=lines.append)}
  assert 'none of the stages of Fig 3' in outcomes['confusion_matrices'].skipped
  assert 'no trained cover (image) stage' in outcomes['cam_examples'].skipped
  assert 'image' in outcomes['tsne_image_vectors'].skipped
  assert 'no trained network stage' in outcomes['tsne_album_factors'].skipped
  assert len(lines) == 4 and all('skipped' in line for line in lines)
  assert not (workdir / workdir_lib.FIGURES_DIR).exists()


def test_confusion_matrices_of_the_fig3_rows(tmp_path):
  rng = np.random.default_rng(1)
  workdir = tmp_path / 'msdi'
  names = ('Blues', 'Jazz', 'Rock')
  stages = []
  for seed in (1, 0):  # the lowest seed is drawn, whatever the order
    for modality in figures.CONFUSION_MODALITIES:
      stage = _stage(workdir, f'{modality}_s{seed}', 'fusion', ['fusion'],
                     {'dataset': 'msdi', 'modality': modality,
                      'target': 'softmax', 'settings': 'mlp', 'seed': seed})
      labels = rng.integers(0, 3, 30)
      representations.write_representations(
          stage['workdir'], 'fusion', 'test', ids=np.arange(30).astype(str),
          album_ids=np.zeros(30).astype(str),
          representation=np.zeros((30, 2)),
          scores=np.eye(3)[labels] + rng.normal(0, 0.5, (30, 3)),
          labels=labels, label_names=names)
      stages.append(stage)
  _write_pipeline(workdir, 'msdi', stages)
  assert figure_inputs.Pipeline.read(workdir).row_stage('image')['name'] == (
      'image_s0')
  outcome, = figures.write_figures(workdir, ['confusion_matrices'])
  (width, _), rgb = _png_size(outcome.path)
  assert width >= 800 and rgb.std() > 5.0


def test_cli_and_report_link_the_figures(mumu_workdir, capsys):
  workdir, taxonomy = mumu_workdir
  assert cli.main(['figures', str(workdir), '--only', 'label_auc']) == 0
  assert sorted(p.name for p in (workdir / 'figures').iterdir()) == [
      'label_auc.png']
  assert 'wrote' in capsys.readouterr().out
  with pytest.raises(SystemExit):  # argparse: not one of the FIGURES
    cli.main(['figures', str(workdir), '--only', 'no_such'])
  text = report.write_report(workdir, taxonomy=taxonomy)
  assert '![label_auc](figures/label_auc.png)' in text
  assert '![tsne_album_factors](figures/tsne_album_factors.png)' in text
  assert '`cam_examples.png`: the pipeline has no trained cover' in text
  assert text == (workdir / workdir_lib.REPORT_MD).read_text()
  # A tree: each pipeline's own report, linked from the top one.
  top = report.write_report(workdir.parent, figures=False)
  assert '[mumu_cosine](mumu_cosine/report.md)' in top
  assert json.loads((workdir / workdir_lib.RESULTS_JSON).read_text()) == []


def test_fig6_picks_an_album_of_the_class_and_one_of_another():
  """Fig 6: the Metal map on the top Metal album and the top New Age one."""
  labels = ['Rock', 'Metal', 'New Age']
  ids = np.array(['m1', 'm2', 'n1', 'n2', 'mn', 'r1'])
  scores = np.array([[.1, .6, .1], [.1, .8, .1], [.1, .3, .7],
                     [.1, .5, .2], [.1, .9, .5], [.9, .95, .1]])
  truth = {'m1': ['Metal'], 'm2': ['Metal'], 'n1': ['New Age'],
           'n2': ['New Age'], 'mn': ['Metal', 'New Age'], 'r1': ['Rock']}
  # 'mn' is Metal and the highest Metal score of a Metal album; the New Age
  # album must not be Metal too, so n2 (0.5) and not mn (0.9).
  assert figures._one_class_covers(labels, ids, scores, truth) == (1, 4, 3)
  # Without New Age albums: the class of the highest score (Metal, 0.95 on
  # r1), on its best Metal album and its best album without Metal (r1).
  no_new_age = {k: v for k, v in truth.items() if 'New Age' not in v}
  assert figures._one_class_covers(labels, ids, scores, no_new_age) == (
      1, 1, 5)
  with pytest.raises(figure_inputs.MissingInput, match="'Metal'"):
    figures._one_class_covers(labels, ids, scores,
                              {i: ['Metal'] for i in ids})

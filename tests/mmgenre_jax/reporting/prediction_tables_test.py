"""Tables 3 and 7 from hand-made pipeline workdirs with known predictions.

The stages' test representations and test_metrics.json are written with the
project's own writers (metrics.multilabel_report for the metrics), so the
per-genre F1, the top-3 lists and the distinct-label counts are known by
hand without training.
"""

import re

import numpy as np
import pytest

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import metrics
from mmgenre_jax.data import representations
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import paper
from mmgenre_jax.reporting import prediction_tables
from mmgenre_jax.reporting import report

AUDIO, VISUAL, ALL = (m for _, m in paper.TABLE3_COLUMNS)


def _stage(workdir, name, row, trained=True):
  stage_dir = workdir / name
  stage_dir.mkdir(parents=True)
  if trained:
    workdir_lib.write_json(stage_dir / workdir_lib.TRAINING_DONE_JSON, {})
  return {'name': name, 'workdir': str(stage_dir), 'config': 'configs/x.py',
          'kind': 'fusion', 'inputs': {}, 'outputs': ['fusion'],
          'status': 'done', 'row': row}


def _write_test(stage, ids, scores, labels, names):
  representations.write_representations(
      stage['workdir'], 'fusion', 'test', ids=ids, album_ids=ids,
      representation=np.zeros((len(ids), 2)), scores=scores, labels=labels,
      label_names=names)


def _write_pipeline(workdir, dataset, stages):
  workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON, {
      'name': workdir.name, 'config': f'configs/{workdir.name}.py:cpu',
      'dataset': dataset, 'final': stages[-1]['name'], 'stages': stages})
  return figure_inputs.Pipeline.read(workdir)


# ----------------------------------------------------------------- Table 3

# Our genres: three of the paper's out of its order and one it lacks.
MSDI_NAMES = ('Rock', 'Polka', 'Blues', 'Jazz')
TRUTH = [0, 0, 1, 2, 3, 3]
# (modality, seed) -> (true classes, predicted classes) of the test tracks.
# Seed 1 comes first in pipeline.json: ours_per_seed is in seed order.
PREDICTED = {
    (AUDIO, 1): (TRUTH, [0, 1, 1, 2, 3, 0]),
    (AUDIO, 0): (TRUTH, TRUTH),
    # Blues neither true nor predicted: undefined at this seed.
    (VISUAL, 0): ([0, 0, 1, 1, 3, 3], [0, 1, 1, 1, 3, 3]),
    (VISUAL, 1): (TRUTH, TRUTH),
}
# By hand (F1 = 2PR / (P + R)), genre -> seed 0, seed 1 values.
AUDIO_F1 = {'Rock': (1, 0.5), 'Polka': (1, 2 / 3), 'Blues': (1, 1),
            'Jazz': (1, 2 / 3)}
VISUAL_F1 = {'Rock': (2 / 3, 1), 'Polka': (0.8, 1), 'Blues': (None, 1),
             'Jazz': (1, 1)}


@pytest.fixture
def msdi(tmp_path):
  workdir = tmp_path / 'msdi'
  stages = []
  for (modality, seed), (truth, predicted) in PREDICTED.items():
    stage = _stage(workdir, f'{modality}_s{seed}',
                   {'dataset': 'msdi', 'modality': modality,
                    'target': 'softmax', 'settings': 'mlp', 'seed': seed})
    # One-hot scores: the arg max is the prediction.
    _write_test(stage, [f't{i}' for i in range(len(truth))],
                np.eye(len(MSDI_NAMES))[predicted], truth, MSDI_NAMES)
    stages.append(stage)
  # Not Table 3's: the audio network's own head, and ALL still training.
  stages.append(_stage(workdir, 'audio_head_s0',
                       {'dataset': 'msdi', 'modality': 'audio_head',
                        'target': 'softmax', 'settings': 'cnn', 'seed': 0}))
  stages.append(_stage(workdir, 'all_s0',
                       {'dataset': 'msdi', 'modality': ALL,
                        'target': 'softmax', 'settings': 'mlp', 'seed': 0},
                       trained=False))
  return _write_pipeline(workdir, 'msdi', stages)


def test_table3_per_genre_f1_means_over_seeds(msdi):
  table = prediction_tables.table3([msdi])
  rows = {r['genre']: r for r in table.data['rows']}
  # The paper's genres in its order, ours it lacks, the rest of its, Average.
  assert [r['genre'] for r in table.data['rows']] == (
      ['Blues', 'Jazz', 'Rock', 'Polka'] +
      [g for g in paper.PAPER_TABLE3 if g not in MSDI_NAMES] + ['Average'])
  for genre, (s0, s1) in AUDIO_F1.items():
    assert rows[genre]['ours_per_seed']['audio'] == pytest.approx([s0, s1])
    assert rows[genre]['ours']['audio'] == pytest.approx((s0 + s1) / 2)
  assert rows['Rock']['ours']['audio'] == pytest.approx(0.75)
  assert rows['Rock']['ours']['visual'] == pytest.approx(5 / 6)
  # An undefined seed is skipped, not counted as 0.
  assert rows['Blues']['ours_per_seed']['visual'] == [None, 1.0]
  assert rows['Blues']['ours']['visual'] == 1.0
  assert rows['Polka']['ours']['visual'] == pytest.approx(0.9)
  # ALL is not trained; Country is not one of our genres.
  assert rows['Rock']['ours']['a+v'] is None
  assert rows['Country']['ours'] == {'audio': None, 'visual': None,
                                     'a+v': None}
  # Average: the mean over seeds of each seed's macro F1.
  average = rows['Average']['ours']
  assert average['audio'] == pytest.approx((1 + 17 / 24) / 2)
  assert average['visual'] == pytest.approx((37 / 45 + 1) / 2)
  columns = table.data['columns']
  assert columns['audio']['stages'] == [f'{AUDIO}_s0', f'{AUDIO}_s1']
  assert columns['audio']['model'] == 'CNN_AUDIO + MM_AUDIO'
  assert columns['a+v']['stages'] == []


def test_table3_shows_the_papers_columns_labelled(msdi):
  table = prediction_tables.table3([msdi])
  blues = [r for r in table.data['rows'] if r['genre'] == 'Blues'][0]
  assert blues['paper_human_annotator'] == {'audio': 0, 'visual': 0.50,
                                            'a+v': 0.67}
  assert blues['paper_neural_model'] == {'audio': 0.05, 'visual': 0.36,
                                         'a+v': 0.42}
  header = [l for l in table.lines if l.startswith('| Genre')][0]
  assert header.count('Human annotator (paper)') == 3
  assert 'Audio: paper | Audio: ours' in header
  # Human (paper) x3, then paper / ours per input.
  assert ('| Blues | 0 | 0.50 | 0.67 | 0.05 | 1.00 | 0.36 | 1.00 | 0.42 '
          '| – |') in table.lines
  assert ('| **Average** | 0.41 | 0.32 | 0.46 | 0.35 | 0.85 | 0.25 | 0.91 '
          '| 0.43 | – |') in table.lines
  assert 'not ours' in table.lines[0]


def test_paper_table3_average_is_the_mean_of_its_genres():
  assert len(paper.PAPER_TABLE3) == 15
  for side in (0, 1):
    means = np.mean([v[side] for v in paper.PAPER_TABLE3.values()], axis=0)
    np.testing.assert_allclose(means, paper.PAPER_TABLE3_AVERAGE[side],
                               atol=0.01)


def test_table3_missing_inputs(tmp_path, msdi):
  mumu = _write_pipeline(tmp_path / 'mumu', 'mumu', [_stage(
      tmp_path / 'mumu', 'text', {'dataset': 'mumu', 'modality': 'text',
                                  'target': 'cosine', 'settings': 'vsm',
                                  'seed': 0})])
  with pytest.raises(figure_inputs.MissingInput, match='no msdi pipeline'):
    prediction_tables.table3([mumu])
  untrained = _write_pipeline(tmp_path / 'msdi2', 'msdi', [_stage(
      tmp_path / 'msdi2', 'all_s0', {'dataset': 'msdi', 'modality': ALL,
                                     'target': 'softmax', 'settings': 'mlp',
                                     'seed': 0}, trained=False)])
  with pytest.raises(figure_inputs.MissingInput, match='is trained'):
    prediction_tables.table3([untrained])


# ----------------------------------------------------------------- Table 7

LABELS = ('Rock', 'Hard Rock', 'Punk Rock', 'Jazz', 'Bebop', 'Pop')
N_TEST = 25
# Album ids not in sorted order: the table keeps the file's.
ALBUMS = [f'A{(7 * i) % N_TEST:02d}' for i in range(N_TEST)]


def _logistic_scores():
  """[25, 6]: top 3 Rock, Hard Rock, Punk Rock; album 21's Pop first."""
  scores = np.tile(-np.arange(6.0), (N_TEST, 1))
  scores[21, 5] = 1.0
  return scores


def _cosine_scores():
  """[25, 6]: album k's top 3 are labels k, k+1, k+2 (mod 6)."""
  k = np.arange(N_TEST)[:, None]
  return -((np.arange(6)[None, :] - k) % 6).astype(float)


def _audio_row(target, settings):
  return {'dataset': 'mumu', 'modality': 'audio', 'target': target,
          'settings': settings, 'seed': 0, 'features_stage': 'audio'}


def _audio_stage(workdir, name, row, scores, labels, auc, order):
  """An AUDIO stage whose test rows are ALBUMS[order]; test_metrics from
  metrics.multilabel_report, roc_auc set to `auc` to choose the best."""
  stage = _stage(workdir, name, row)
  _write_test(stage, [ALBUMS[i] for i in order], scores[order],
              labels[order], LABELS)
  test = metrics.multilabel_report(scores[order], labels[order])
  test['roc_auc'] = auc
  workdir_lib.write_json(workdir / name / workdir_lib.TEST_METRICS_JSON,
                         test)
  return stage


@pytest.fixture
def mumu(tmp_path):
  """(mumu_cosine, mumu_logistic) Pipelines; the COSINE test file lists
  the albums in reverse order."""
  labels = np.random.default_rng(0).integers(0, 2, (N_TEST, len(LABELS)))
  forward, backward = np.arange(N_TEST), np.arange(N_TEST)[::-1]
  cosine_dir = tmp_path / 'mumu_cosine'
  cosine = _write_pipeline(cosine_dir, 'mumu', [
      _audio_stage(cosine_dir, 'audio_album', _audio_row('cosine',
                                                         'low-4x96'),
                   _cosine_scores(), labels, 0.80, backward),
      # Lower test AUC: not the best COSINE AUDIO row.
      _audio_stage(cosine_dir, 'audio_album_high',
                   _audio_row('cosine', 'high-4x70'), _logistic_scores(),
                   labels, 0.70, forward)])
  logistic_dir = tmp_path / 'mumu_logistic'
  logistic = _write_pipeline(logistic_dir, 'mumu', [
      _audio_stage(logistic_dir, 'audio_album',
                   _audio_row('logistic', 'low-4x96'), _logistic_scores(),
                   labels, 0.75, forward)])
  return cosine, logistic


def test_table7_top3_and_distinct_labels(mumu):
  table = prediction_tables.table7(list(mumu))
  data = table.data
  rows = data['rows']
  assert [r['album'] for r in rows] == ALBUMS[:20]
  assert all(r['logistic'] == ['Rock', 'Hard Rock', 'Punk Rock']
             for r in rows)
  # Album k's COSINE top 3, found in the reversed file by its id.
  for k, row in enumerate(rows):
    assert row['cosine'] == [LABELS[(k + j) % 6] for j in range(3)]
  logistic, cosine = data['models']['logistic'], data['models']['cosine']
  assert cosine['stage'] == 'audio_album' and cosine['roc_auc'] == 0.80
  assert cosine['settings'] == 'low-4x96'
  assert logistic['workdir'].endswith('mumu_logistic')
  assert (logistic['distinct_shown'], logistic['distinct_all']) == (3, 4)
  assert (cosine['distinct_shown'], cosine['distinct_all']) == (6, 6)
  assert logistic['num_labels'] == 6 and logistic['test_albums'] == 25
  assert data['cosine_more_diverse'] == {'shown': True, 'all': True}
  assert data['paper']['distinct_shown'] == {'logistic': 11, 'cosine': 24}
  assert ('| 1 | A00 | Rock, Hard Rock, Punk Rock | Rock, Hard Rock, '
          'Punk Rock |') in table.lines
  assert ('| 2 | A07 | Rock, Hard Rock, Punk Rock | Hard Rock, Punk Rock, '
          'Jazz |') in table.lines
  assert '| | **Distinct labels, these 20 albums** | 3 | 6 |' in table.lines
  assert ('| | **Distinct labels, all test albums** | 4 of 6 labels, 25 '
          'albums | 6 of 6 labels, 25 albums |') in table.lines
  assert any('**holds**; 6 vs 4 over all test albums: **holds**' in l
             for l in table.lines)


def test_table7_adiv3_agrees_with_test_metrics_and_the_report(mumu):
  data = prediction_tables.table7(list(mumu)).data
  for target, model in data['models'].items():
    stage_dir = [p for p in mumu if p.workdir.name == f'mumu_{target}'][0]
    test = workdir_lib.read_json(stage_dir.workdir / model['stage'] /
                                 workdir_lib.TEST_METRICS_JSON)
    assert model['distinct_all'] / model['num_labels'] == test['adiv@3']
    assert model['adiv@3'] == test['adiv@3'] and model['adiv@3_agrees']
  # The report's ADiv finding for the same two models (AUDIO LOW-4X96).
  rows = (report.pipeline_results(mumu[0].workdir) +
          report.pipeline_results(mumu[1].workdir))
  line, = [l for l in report.findings(rows) if 'audio low-4x96' in l]
  found = re.search(r'ADiv [\d.]+/([\d.]+)/[\d.]+ vs [\d.]+/([\d.]+)/', line)
  assert found.groups() == (f'{data["models"]["cosine"]["adiv@3"]:.2f}',
                            f'{data["models"]["logistic"]["adiv@3"]:.2f}')


def test_table7_flags_an_adiv3_that_differs(mumu):
  cosine, logistic = mumu
  path = logistic.workdir / 'audio_album' / workdir_lib.TEST_METRICS_JSON
  test = workdir_lib.read_json(path)
  test['adiv@3'] = 0.5
  workdir_lib.write_json(path, test)
  table = prediction_tables.table7([cosine, logistic])
  assert not table.data['models']['logistic']['adiv@3_agrees']
  assert any('0.667 (0.500, DIFFERS)' in l for l in table.lines)


def test_table7_needs_both_pipelines(mumu, msdi):
  cosine, _ = mumu
  with pytest.raises(figure_inputs.MissingInput,
                     match=r'both MuMu pipelines.*only COSINE.*'
                           r'`mmgenre report runs`'):
    prediction_tables.table7([cosine])
  with pytest.raises(figure_inputs.MissingInput, match='no trained AUDIO'):
    prediction_tables.table7([msdi])

"""mmgenre report: results.json and report.md from hand-made stage files."""

import json
import pathlib

import pytest

from mmgenre_jax import cli
from mmgenre_jax.reporting import report


def _stage(workdir, name, kind, row, metrics, config):
  stage_dir = workdir / name
  stage_dir.mkdir(parents=True)
  if metrics is not None:
    (stage_dir / 'test_metrics.json').write_text(json.dumps(metrics))
  return {'name': name, 'workdir': str(stage_dir), 'config': config,
          'kind': kind, 'inputs': {}, 'outputs': [], 'status': 'done',
          'row': row}


def _mumu_metrics(auc, adiv, params=1000, epoch_s=2.5):
  return {'roc_auc': auc, 'pr_auc': auc - 0.3, 'adiv@1': adiv[0],
          'adiv@3': adiv[1], 'adiv@5': adiv[2], 'p@1': 0.5, 'loss': 0.1,
          'num_params': params, 'epoch_s': epoch_s, 'step': 7}


def _write_pipeline(workdir: pathlib.Path, name, dataset, stages):
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'pipeline.json').write_text(json.dumps(
      {'name': name, 'config': f'configs/{name}.py:cpu', 'dataset': dataset,
       'final': stages[-1]['name'], 'stages': stages}))


def _mumu(tmp_path, target, aucs, adivs):
  workdir = tmp_path / f'mumu_{target}'
  workdir.mkdir()
  stages = []
  for modality, auc, adiv in zip(('audio', 'text', 'audio+text'), aucs,
                                 adivs):
    settings = {'audio': 'low-4x70', 'text': 'vsm+sem'}.get(modality, 'mlp')
    stages.append(_stage(
        workdir, modality.replace('+', '_'),
        'fusion' if '+' in modality else 'network',
        {'dataset': 'mumu', 'modality': modality, 'target': target,
         'settings': settings, 'seed': 0},
        _mumu_metrics(auc, adiv), f'configs/x.py:{modality}-{target}'))
  _write_pipeline(workdir, f'mumu_{target}', 'mumu', stages)
  return workdir


def _msdi(tmp_path, f1s):
  workdir = tmp_path / 'msdi'
  workdir.mkdir()
  stages = []
  for seed in (0, 1, 2):
    for modality, f1 in f1s.items():
      settings = 'mlp' if '+' in modality else 'cnn'
      stages.append(_stage(
          workdir, f'{modality.replace("+", "_")}_s{seed}',
          'fusion' if '+' in modality else 'network',
          {'dataset': 'msdi', 'modality': modality, 'target': 'softmax',
           'settings': settings, 'seed': seed},
          {'roc_auc': 0.8, 'pr_auc': 0.4, 'adiv@1': 0.5, 'adiv@3': 0.9,
           'adiv@5': 1.0, 'precision': f1 + 0.05, 'recall': f1 + 0.01,
           'macro_f1': f1 + 0.01 * seed, 'params': 50, 'epoch_s': 1.0},
          f'configs/msdi_fusion.py:{modality}'))
    stages.append(_stage(workdir, f'align_s{seed}', 'alignment',
                         {'dataset': 'msdi', 'modality': 'mm_audio+mm_visual',
                          'target': 'cosine', 'settings': 'alignment',
                          'seed': seed}, {'loss': 0.3}, 'configs/a.py'))
  # A stage that has not run yet has no row.
  stages.append(_stage(workdir, 'pending', 'fusion', {}, None, 'c'))
  _write_pipeline(workdir, 'msdi', 'msdi', stages)
  return workdir


def test_results_json_keys_and_values(tmp_path):
  workdir = _mumu(tmp_path, 'cosine', (0.80, 0.85, 0.90),
                  ((0.3, 0.5, 0.7),) * 3)
  text = report.write_report(workdir)
  rows = json.loads((workdir / 'results.json').read_text())
  assert [list(r) for r in rows] == [list(report.RESULT_KEYS)] * 3
  audio = rows[0]
  assert audio['dataset'] == 'mumu' and audio['modality'] == 'audio'
  assert audio['target'] == 'cosine' and audio['settings'] == 'low-4x70'
  assert audio['roc_auc'] == 0.80 and audio['pr_auc'] == pytest.approx(0.5)
  assert audio['adiv@3'] == 0.5 and audio['params'] == 1000
  assert audio['epoch_s'] == 2.5 and audio['seed'] == 0
  # Single-label metrics are not defined for multi-label rows.
  assert audio['precision'] is None and audio['macro_f1'] is None
  assert audio['config'] == 'configs/x.py:audio-cosine'
  assert audio['workdir'] == str(workdir / 'audio')
  assert rows[2]['modality'] == 'audio+text'
  assert (workdir / 'report.md').read_text() == text


def test_markdown_has_paper_values_and_findings(tmp_path):
  _mumu(tmp_path, 'cosine', (0.80, 0.85, 0.90), ((0.3, 0.5, 0.7),) * 3)
  _mumu(tmp_path, 'logistic', (0.81, 0.86, 0.95), ((0.1, 0.2, 0.3),) * 3)
  _msdi(tmp_path, {'audio': 0.30, 'image': 0.20, 'audio+mm_audio': 0.32,
                   'audio+image+mm_audio+mm_visual': 0.40})
  text = report.write_report(tmp_path)
  # Our value, then the paper's (Table 6 AUDIO COSINE LOW-4x70: 0.868).
  assert '0.800 (0.868)' in text
  assert 'TEXT | COSINE | VSM+SEM' in text and '(0.917)' in text
  assert 'Table 6' in text and 'Table 2' in text
  # MSD-I: mean ± sd over the 3 seeds beside Table 2's CNN_AUDIO F1.
  assert '| Audio | CNN_AUDIO |' in text
  assert '0.310 ± 0.010 (0.336 ± 0.002)' in text
  assert 'ALL' in text
  lines = [l for l in text.splitlines() if l.startswith('- ')]
  fusion = [l for l in lines if l.startswith('- Fusion beats')]
  assert len(fusion) == 3
  assert all('**holds**' in l for l in fusion)
  cosine = [l for l in lines if l.startswith('- COSINE AUC near')]
  # audio: 0.80 vs 0.81 near; fusion: 0.90 vs 0.95 not near; ADiv higher.
  assert 'AUC near **holds**, ADiv higher **holds**' in cosine[0]
  assert 'AUC near **does not hold**' in cosine[2]
  msdi = [l for l in lines if 'CNN_AUDIO + MM_AUDIO beats' in l]
  assert msdi == ['- CNN_AUDIO + MM_AUDIO beats CNN_AUDIO (msdi, macro F1): '
                  '0.330 vs 0.310: **holds**.']
  rows = json.loads((tmp_path / 'results.json').read_text())
  assert len(rows) == 3 + 3 + 12
  assert {r['seed'] for r in rows if r['dataset'] == 'msdi'} == {0, 1, 2}


def test_findings_that_do_not_hold(tmp_path):
  _mumu(tmp_path, 'cosine', (0.80, 0.85, 0.84), ((0.3, 0.5, 0.7),) * 3)
  text = report.write_report(tmp_path / 'mumu_cosine')
  assert ('audio+text COSINE 0.840 vs audio COSINE 0.800, text COSINE '
          '0.850: **does not hold**.') in text
  assert 'COSINE vs LOGISTIC: not checked here' in text


def test_cli_prints_the_report(tmp_path, capsys):
  workdir = _mumu(tmp_path, 'cosine', (0.8, 0.85, 0.9), ((0.3, 0.5, 0.7),) * 3)
  assert cli.main(['report', str(workdir)]) == 0
  assert '# Results' in capsys.readouterr().out
  assert cli.main(['report', str(tmp_path / 'nothing')]) == 2
  assert 'No pipeline.json' in capsys.readouterr().err


def test_a_corrupt_stage_file_stops_the_report(tmp_path):
  # A stage whose metrics cannot be read must stop the report with the file
  # named, not drop out of the tables; a missing one is a stage not yet run.
  workdir = _mumu(tmp_path, 'cosine', (0.8, 0.85, 0.9),
                  ((0.1, 0.2, 0.3),) * 3)
  (workdir / 'text' / 'test_metrics.json').write_text('{"roc_auc": 0.8')
  with pytest.raises(ValueError, match=r'text/test_metrics.json is not valid '
                     'JSON'):
    report.pipeline_results(workdir)
  (workdir / 'text' / 'test_metrics.json').unlink()
  rows = report.pipeline_results(workdir)
  assert [r['modality'] for r in rows] == ['audio', 'audio+text']


def test_own_heads_are_listed_apart_from_the_paper_rows(tmp_path):
  """A CNN's own head (spec.own_head_row) never stands in a paper row."""
  # MSD-I: the CNNs' softmax heads score higher than the Sec 4 rows here, so
  # a mix-up would show in Table 2 and in the finding.
  workdir = _msdi(tmp_path, {'audio_head': 0.50, 'image_head': 0.45,
                             'audio': 0.30, 'audio+mm_audio': 0.32})
  text = report.write_report(workdir)
  table2, heads = text.split("The networks' own output layers")
  assert '| Audio | CNN_AUDIO | 0.350 ± 0.000' in table2
  assert 'HEAD' not in table2
  assert '| msdi | AUDIO | SOFTMAX | CNN | 0.800 | 0.510 | 3 |' in heads
  assert '| msdi | IMAGE | SOFTMAX | CNN |' in heads
  assert 'Sec 4 network on its vectors' in heads
  assert ('CNN_AUDIO + MM_AUDIO beats CNN_AUDIO (msdi, macro F1): 0.330 vs '
          '0.310') in heads
  rows = json.loads((workdir / 'results.json').read_text())
  assert {r['modality'] for r in rows} == {'audio_head', 'image_head',
                                           'audio', 'audio+mm_audio'}


def _table6_pipeline(tmp_path):
  """A MuMu pipeline with an AUDIO row fed by a CNN stage, the TEXT COSINE
  VSM row and both T+I fusions (rows with notes under Table 6)."""
  workdir = tmp_path / 'mumu_cosine'
  workdir.mkdir()
  rows = [('audio', 'audio_head', 'cosine', 'low-3x3', 135568, 19.0, None),
          ('audio_album', 'audio', 'cosine', 'low-3x3', 4112, 0.25,
           'audio'),
          ('text', 'text', 'cosine', 'vsm', 527120, 3.0, None),
          ('text_image', 'text+image', 'cosine', 'mlp', 5136, 0.5, None),
          ('text_image_logistic', 'text+image', 'logistic', 'mlp', 14445,
           0.5, None)]
  stages = []
  for name, modality, target, settings, params, epoch_s, features in rows:
    row = {'dataset': 'mumu', 'modality': modality, 'target': target,
           'settings': settings, 'seed': 0}
    if features:
      row['features_stage'] = features
    stages.append(_stage(
        workdir, name, 'network', row,
        _mumu_metrics(0.8, (0.3, 0.5, 0.7), params, epoch_s), f'c:{name}'))
  _write_pipeline(workdir, 'mumu_cosine', 'mumu', stages)
  return workdir


def test_table6_params_and_time_measure_what_the_paper_measures(tmp_path):
  workdir = _table6_pipeline(tmp_path)
  text = report.write_report(workdir, figures=False)
  rows = {r['modality']: r for r in
          json.loads((workdir / 'results.json').read_text())}
  # results.json: the row's own model, and the CNN that made its vectors.
  audio = rows['audio']
  assert (audio['params'], audio['epoch_s']) == (4112, 0.25)
  assert (audio['features_params'], audio['features_epoch_s']) == (135568,
                                                                   19.0)
  assert rows['text']['features_params'] is None
  # Table 6: the AUDIO row's Params / Time are the CNN's, beside the
  # paper's CNN figures (COSINE LOW-3x3: 0.33M, 400 s), with a note.
  line = next(l for l in text.splitlines()
              if l.startswith('| AUDIO | COSINE | LOW-3x3 |'))
  assert '| 0.14M (0.33M [' in line and '| 19.0 (400) |' in line
  assert "4112 parameters and 0.25 s an epoch more" in text
  # Each note once, though both T+I rows carry it.
  assert text.count('TEXT + IMAGE: one layer over') == 1
  assert text.count('AUDIO 3x3: the layers of Table 5') == 1
  t_i = [l for l in text.splitlines() if l.startswith('| TEXT + IMAGE |')]
  assert len(t_i) == 2 and len({l.split('(')[1][:9] for l in t_i}) == 2
  # The impossible paper cells are flagged, with the paper's digits kept.
  text_line = next(l for l in text.splitlines()
                   if l.startswith('| TEXT | COSINE | VSM |'))
  assert '(0.530 [' in text_line and '(0.440 [' in text_line
  assert text.count('ADiv@N cannot fall as N grows') == 1
  # Nothing the paper does not say about its hardware.
  assert 'GPU' not in text and 'does not say on what hardware' in text


def test_cosine_and_logistic_are_compared_on_the_same_settings(tmp_path):
  cosine = _mumu(tmp_path, 'cosine', (0.80, 0.85, 0.90),
                 ((0.3, 0.5, 0.7),) * 3)
  logistic = _mumu(tmp_path, 'logistic', (0.81, 0.86, 0.88),
                   ((0.1, 0.2, 0.3),) * 3)
  del cosine
  record = json.loads((logistic / 'pipeline.json').read_text())
  record['stages'][0]['row']['settings'] = 'high-4x70'
  (logistic / 'pipeline.json').write_text(json.dumps(record))
  text = report.write_report(tmp_path, figures=False)
  compared = [l for l in text.splitlines() if l.startswith('- COSINE AUC')]
  # audio LOW-4x70 COSINE has no LOGISTIC LOW-4x70 row: not compared.
  assert [l.split('(mumu, ')[1].split(')')[0] for l in compared] == [
      'text vsm+sem', 'audio+text mlp']


def test_tables_json_and_the_tables_not_drawn(tmp_path):
  """Each report writes tables.json; a table its workdirs cannot feed is
  listed under "Not drawn" with the reason (here: nothing extracted)."""
  _mumu(tmp_path, 'cosine', (0.80, 0.85, 0.90), ((0.3, 0.5, 0.7),) * 3)
  _msdi(tmp_path, {'audio': 0.30, 'audio+mm_audio': 0.32})
  text = report.write_report(tmp_path, figures=False)
  assert json.loads((tmp_path / 'tables.json').read_text()) == {}
  not_drawn = text[text.index('Not drawn:'):]
  for name in ('table1', 'table3', 'table4', 'table7', 'genre_words'):
    assert f'- `{name}`: ' in not_drawn
  # A pipeline's own report tries only the tables about its dataset.
  msdi = (tmp_path / 'msdi' / 'report.md').read_text()
  assert '`table1`' in msdi and '`table4`' not in msdi
  assert (tmp_path / 'msdi' / 'tables.json').exists()

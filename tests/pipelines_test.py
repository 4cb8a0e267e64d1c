"""mmgenre_jax.pipelines: a tiny 2-stage pipeline (audio CNN -> fusion).

The audio shards are the tiny ones of tests/conftest.py (fixture shard_dir);
each stage trains 1 epoch of tiny batches.
"""

import json
import logging

import pytest

from mmgenre_jax import representations
from mmgenre_jax import train
from mmgenre_jax.pipelines import runner
from mmgenre_jax.pipelines import spec

# Few labels in the tiny corpus: d must not exceed the number of labels.
TINY = {'data.factor_dim': 4, 'train.batch_size': 4, 'train.num_epochs': 1,
        'eval.batch_size': 4}


def _config(shard_dir):
  config = spec.pipeline_config(
      'tiny', 'tests/pipelines_test.py', dataset='mumu',
      shard_dir=str(shard_dir))
  spec.add_stage(config, 'audio', config_file='configs/mumu_audio.py',
                 config_arg='low-4x70-cosine', overrides=TINY)
  spec.add_stage(config, 'fused', config_file='configs/mumu_fusion.py',
                 config_arg='audio-cosine', overrides=TINY,
                 inputs={'audio': 'audio'})
  spec.link_input_dims(config)
  return config


@pytest.fixture(scope='module')
def finished(shard_dir, tmp_path_factory):
  """A pipeline workdir after one complete run."""
  workdir = tmp_path_factory.mktemp('pipeline')
  result = runner.run_pipeline(_config(shard_dir), workdir)
  return workdir, result


def _count_training(monkeypatch):
  calls = []
  original = train.train_and_evaluate

  def counting(config, workdir):
    calls.append(str(workdir))
    return original(config, workdir)

  monkeypatch.setattr(train, 'train_and_evaluate', counting)
  return calls


def test_runs_every_stage_in_order(finished):
  workdir, result = finished
  assert [s['name'] for s in result['stages']] == ['audio', 'fused']
  assert [s['status'] for s in result['stages']] == ['done', 'done']
  assert result['final'] == 'fused' and result['dataset'] == 'mumu'
  fused = result['stages'][1]
  assert fused['kind'] == 'fusion' and fused['inputs'] == {'audio': 'audio'}
  assert fused['outputs'] == ['fusion']
  assert fused['config'].startswith('configs/mumu_fusion.py:audio-cosine ')
  assert f'--config.data.inputs.audio={workdir / "audio"}' in fused['config']
  assert fused['row']['modality'] == 'audio'
  for stage, name in (('audio', 'audio'), ('fused', 'fusion')):
    for split in representations.SPLITS:
      assert (workdir / stage / 'representations' / name /
              f'{split}.npz').exists()
    assert runner.is_complete(workdir / stage, (name,))
  assert json.loads((workdir / 'pipeline.json').read_text()) == result
  rows = json.loads((workdir / 'results.json').read_text())
  assert [(r['modality'], r['settings']) for r in rows] == [
      ('audio', 'low-4x70'), ('audio', 'mlp')]
  metrics = json.loads((workdir / 'audio' / 'test_metrics.json').read_text())
  assert rows[0]['roc_auc'] == metrics['roc_auc']
  assert '# Results' in (workdir / 'report.md').read_text()


def test_rerun_skips_complete_stages(finished, shard_dir, monkeypatch):
  workdir, _ = finished
  calls = _count_training(monkeypatch)
  result = runner.run_pipeline(_config(shard_dir), workdir)
  assert calls == []
  assert [s['status'] for s in result['stages']] == ['skipped', 'skipped']


def test_interrupted_stage_resumes(finished, shard_dir, monkeypatch, caplog):
  workdir, _ = finished
  step = json.loads((workdir / 'fused' / 'training_done.json').read_text())
  # As if the run was stopped after the last checkpoint of the fusion stage,
  # before its done marker and its representations.
  (workdir / 'fused' / 'training_done.json').unlink()
  (workdir / 'fused' / 'representations' / 'fusion' / 'val.npz').unlink()
  calls = _count_training(monkeypatch)
  with caplog.at_level(logging.INFO):
    result = runner.run_pipeline(_config(shard_dir), workdir)
  assert calls == [str(workdir / 'fused')]
  assert 'Resumed from step' in caplog.text
  assert [s['status'] for s in result['stages']] == ['skipped', 'done']
  assert json.loads(
      (workdir / 'fused' / 'training_done.json').read_text()) == step
  assert runner.is_complete(workdir / 'fused', ('fusion',))


def test_extraction_only_when_training_is_done(finished, shard_dir,
                                               monkeypatch):
  workdir, _ = finished
  (workdir / 'audio' / 'representations' / 'audio' / 'test.npz').unlink()
  calls = _count_training(monkeypatch)
  result = runner.run_pipeline(_config(shard_dir), workdir, report=False)
  assert calls == []
  assert [s['status'] for s in result['stages']] == ['done', 'skipped']
  assert runner.is_complete(workdir / 'audio', ('audio',))

"""End-to-end tests of mmgenre_jax.train.loop and mmgenre_jax.evaluation.

The tiny MuMu audio shards of tiny.py (with whole-track windows) serve
every test; configs/test.py (LOW-4x70 COSINE) trains on them for 2 epochs of
2 steps. Test metrics are album-level (windows averaged per track, tracks
per album).
"""

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import tiny
from configs import default as default_lib
from input_pipeline.records import shard_reader
from mmgenre_jax import errors
from mmgenre_jax.evaluation import evaluate
from mmgenre_jax.evaluation import extract
from mmgenre_jax import models
from mmgenre_jax import sharding
from mmgenre_jax.train import loop as train_loop
from mmgenre_jax.train import train_state
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import image
from mmgenre_jax.models import torchvision

REPO = pathlib.Path(__file__).resolve().parents[3]
LABELS = tiny.TINY_LABELS
BATCH = tiny.TINY_BATCH
_config = tiny.tiny_train_config


_latest_params = tiny.latest_params


def test_train_and_evaluate_writes_finite_metrics(full_run):
  workdir, report = full_run
  assert report == json.loads((workdir / workdir_lib.TEST_METRICS_JSON).read_text())
  assert np.isfinite(report['loss'])
  for key in ('roc_auc', 'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5'):
    assert 0.0 <= report[key] <= 1.0, key
  # 6 test albums (their 2 tracks' windows averaged); every label is on
  # some but not all of them.
  assert report['num_items'] == 6
  assert report['num_labels_evaluated'] == len(LABELS)
  assert report['train_steps'] == 4  # 2 epochs of 16 tracks / 8.
  assert report['step'] in (2, 4)  # the best epoch's checkpoint
  assert report['epoch_s'] > 0
  assert report['params'] == report['num_params'] > 100_000
  done = json.loads((workdir / workdir_lib.TRAINING_DONE_JSON).read_text())
  assert done == {'step': 4, 'params': report['params'],
                  'epoch_s': report['epoch_s']}
  factors = np.load(workdir / 'label_factors.npy')
  assert factors.shape == (len(LABELS), 4)
  assert (workdir / 'labels.tsv').read_text().split('\n')[:2] == [
      'Rock', 'Indie Rock']
  assert (workdir / workdir_lib.TRAINING_DONE_JSON).exists()


def test_resume_after_stop_matches_uninterrupted_run(full_run, shard_dir,
                                                     tmp_path):
  full_dir, full_report = full_run
  # Stop inside the second epoch (step 3 of 4), then run the same command.
  stopped = train_loop.train_and_evaluate(_config(shard_dir, max_steps=3),
                                     tmp_path)
  assert stopped['train_steps'] == 3
  resumed = train_loop.train_and_evaluate(_config(shard_dir), tmp_path)
  assert resumed['train_steps'] == 4
  params, step, progress = _latest_params(_config(shard_dir), tmp_path)
  full_params, full_step, full_progress = _latest_params(_config(shard_dir),
                                                         full_dir)
  assert step == full_step == 4
  # Equal progress, but for the seconds timed.
  assert (dataclasses.replace(progress, train_seconds=0.0) ==
          dataclasses.replace(full_progress, train_seconds=0.0))
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, full_params)
  assert resumed['roc_auc'] == full_report['roc_auc']
  assert resumed['loss'] == full_report['loss']


def test_evaluate_reproduces_test_metrics_and_extracts(full_run, shard_dir):
  workdir, report = full_run
  config = _config(shard_dir)
  again = evaluate.evaluate(config, workdir, checkpoint='best')
  assert again['roc_auc'] == report['roc_auc']
  assert again['loss'] == report['loss']
  assert again['step'] == report['step']
  assert json.loads((workdir / 'eval_test' / 'metrics.json').read_text())[
      'roc_auc'] == report['roc_auc']
  # Follow mode on a finished run: evaluates the latest checkpoint, then
  # sees the done marker and returns.
  followed = evaluate.evaluate(config, workdir, split='val', follow=True,
                               poll_seconds=0.1, timeout_s=60)
  assert followed['step'] == 4 and followed['checkpoint'] == 'latest'
  paths = extract.extract(config, workdir, split='test')
  assert paths == {'audio': workdir_lib.representation_path(
      workdir, 'audio', 'test')}
  with np.load(paths['audio']) as data:
    assert data['representation'].shape[0] == 6
    assert data['labels'].shape == (6, len(LABELS))
    assert data['scores'].shape == (6, len(LABELS))
    assert data['ids'].tolist() == [f'ALtest{a}' for a in range(6)]
    assert data['ids'].tolist() == data['album_ids'].tolist()
    assert data['label_names'].tolist() == list(LABELS)
    assert np.all(np.isfinite(data['representation']))
  with pytest.raises(FileNotFoundError, match='step 99'):
    evaluate.evaluate(config, workdir, checkpoint=99)


def test_main_evaluate_ends_with_json_line(full_run, shard_dir):
  workdir, report = full_run
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=str(REPO))
  result = subprocess.run(
      [sys.executable, str(REPO / 'main.py'),
       f'--config={REPO / "configs" / "test.py"}', f'--workdir={workdir}',
       f'--config.data.shard_dir={shard_dir}',
       f'--config.train.batch_size={BATCH}',
       f'--config.eval.batch_size={BATCH}', '--mode=evaluate',
       '--checkpoint=best'],
      capture_output=True, text=True, env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  last = json.loads(result.stdout.strip().splitlines()[-1])
  assert last['roc_auc'] == report['roc_auc']
  for key in ('pr_auc', 'adiv@1', 'adiv@3', 'adiv@5', 'precision', 'recall',
              'macro_f1'):
    assert key in last


_EIGHT_DEVICES = r'''
import json, sys
from configs import test as test_config
from mmgenre_jax.train import loop as train_loop
import jax
assert jax.device_count() == 8, jax.devices()
config = test_config.get_config()
config.data.shard_dir = sys.argv[1]
try:  # configs/test.py's batch of 4 does not split over 8 devices.
  train_loop.train_and_evaluate(config, sys.argv[2] + '/bad')
  print('NO ERROR')
except ValueError as e:
  print('ERROR', e)
config.train.batch_size = config.eval.batch_size = 8
report = train_loop.train_and_evaluate(config, sys.argv[2] + '/good')
print(json.dumps(report))
'''


def test_eight_devices_match_one_device(full_run, shard_dir, tmp_path):
  _, report = full_run
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=str(REPO),
             XLA_FLAGS='--xla_force_host_platform_device_count=8')
  result = subprocess.run(
      [sys.executable, '-c', _EIGHT_DEVICES, str(shard_dir), str(tmp_path)],
      capture_output=True, text=True, env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  error = next(line for line in lines if line.startswith(('ERROR', 'NO ')))
  assert 'Batch size (4) must be divisible' in error
  assert 'multiple of 8' in error
  # The bad run failed before compiling or checkpointing anything.
  assert not (tmp_path / 'bad' / workdir_lib.CHECKPOINTS_DIR).exists()
  eight = json.loads(lines[-1])
  assert eight['train_steps'] == report['train_steps']
  np.testing.assert_allclose(eight['loss'], report['loss'], rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(eight['roc_auc'], report['roc_auc'], atol=1e-3)


def test_config_errors_are_clear(shard_dir, tmp_path):
  config = _config(shard_dir)
  config.model.name = 'text_mlp'
  with pytest.raises(ValueError, match="no 'text' shards"):
    train_loop.train_and_evaluate(config, tmp_path)
  config = _config(shard_dir)
  config.data.shard_dir = ''
  with pytest.raises(ValueError, match='shard_dir is empty'):
    train_loop.train_and_evaluate(config, tmp_path)
  config = _config(shard_dir)
  config.model.target = 'softmax'
  with pytest.raises(ValueError, match="holds 'multi_hot' labels"):
    train_loop.train_and_evaluate(config, tmp_path)


_TWO_PROCESSES = r'''
import json, os, sys
import jax
# Explicit arguments: jax.distributed.initialize() reads only the
# coordinator address from the environment.
jax.distributed.initialize(os.environ['JAX_COORDINATOR_ADDRESS'],
                           num_processes=2,
                           process_id=int(os.environ['JAX_PROCESS_ID']))
from configs import test as test_config
from mmgenre_jax.train import loop as train_loop
assert (jax.process_count(), jax.device_count()) == (2, 8), jax.devices()
config = test_config.get_config()
config.data.shard_dir = sys.argv[1]
config.train.batch_size = config.eval.batch_size = 8
report = train_loop.train_and_evaluate(config, sys.argv[2])
print('REPORT', json.dumps(report))
'''


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_of_four_devices(shard_dir, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=str(REPO),
             XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{_free_port()}')
  procs = [subprocess.Popen(
      [sys.executable, '-c', _TWO_PROCESSES, str(shard_dir), str(tmp_path)],
      env=dict(env, JAX_PROCESS_ID=str(i)), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=300) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  reports = []
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
    line = next(x for x in out.splitlines() if x.startswith('REPORT '))
    reports.append(json.loads(line[len('REPORT '):]))
  # The test split's 3 shard files are dealt 2 + 1: the process with fewer
  # feeds padding batches, and every item is evaluated once.
  for report in reports:
    assert report['num_items'] == 6
    assert report['train_steps'] == 4
    assert np.isfinite(report['loss'])
    assert 0.0 <= report['roc_auc'] <= 1.0
  timing = ('epoch_s',)
  assert ({k: v for k, v in reports[0].items() if k not in timing} ==
          {k: v for k, v in reports[1].items() if k not in timing})
  assert json.loads((tmp_path / workdir_lib.TEST_METRICS_JSON).read_text())[
      'roc_auc'] == reports[0]['roc_auc']


def test_image_optimizer_decays_weights_and_steps_the_rate():
  config = _config('unused')
  default_lib.set_image_optimizer(config, 'sgd')
  assert config.train.optimizer == 'sgd'
  config.train.learning_rate = 0.1
  config.train.momentum = 0.0  # Plain SGD steps, easy to write down.
  config.train.weight_decay = 0.5
  config.train.lr_decay_epochs = 1
  tx = train_state.create_optimizer(config, steps_per_epoch=2)
  params = {'w': jnp.asarray([1.0, -2.0])}
  grads = {'w': jnp.asarray([0.2, 0.4])}
  state = tx.init(params)
  for step, rate in enumerate([0.1, 0.1, 0.01, 0.01]):
    updates, state = tx.update(grads, state, params)
    # torch semantics: -lr * (grad + weight_decay * param).
    np.testing.assert_allclose(
        updates['w'], -rate * (grads['w'] + 0.5 * params['w']), rtol=1e-6,
        err_msg=f'step {step}')
  assert config.train.batch_size == 50 and config.train.num_epochs == 90


def test_image_weight_decay_reaches_every_weight_and_bias():
  # Sec 3.2: "weight decay is applied to all weights and biases": with zero
  # gradients, Adam still moves every leaf (conv kernels, batch-norm scales
  # and biases, the head's kernel and bias) towards zero.
  config = _config('unused')
  default_lib.set_image_optimizer(config)
  assert config.train.optimizer == 'adam'
  assert config.train.weight_decay == default_lib.IMAGE_WEIGHT_DECAY > 0
  tx = train_state.create_optimizer(config, steps_per_epoch=3)
  params = {'conv1': {'kernel': jnp.ones((3, 3, 3, 4))},
            'bn1': {'scale': jnp.ones(4), 'bias': jnp.full(4, 0.5)},
            'head': {'Dense_0': {'kernel': jnp.ones((4, 2)),
                                 'bias': jnp.full(2, -0.5)}}}
  updates, _ = tx.update(jax.tree_util.tree_map(jnp.zeros_like, params),
                         tx.init(params), params)
  for path, update in jax.tree_util.tree_leaves_with_path(updates):
    leaf = params
    for key in path:
      leaf = leaf[key.key]
    # Adam's first step is -lr * sign(decayed gradient).
    np.testing.assert_allclose(
        update, -config.train.learning_rate * np.sign(leaf), rtol=1e-3,
        err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize('config_name,tiny_arg', [('mumu_image', 'logistic-tiny'),
                                                 ('msdi_visual', 'tiny')])
def test_paper_scale_image_stage_needs_weights_or_from_scratch(
    config_name, tiny_arg, tmp_path):
  module = __import__(f'configs.{config_name}', fromlist=['get_config'])
  config = module.get_config()
  assert config.model.depth == 101 and config.model.pretrained == ''
  config.data.shard_dir = str(tmp_path / 'shards')
  workdir = tmp_path / 'workdir'
  with pytest.raises(errors.ConfigError) as info:
    train_loop.train_and_evaluate(config, workdir)
  message = str(info.value)
  for part in ('--config.model.pretrained=', 'resnet101.npz',
               '--config.model.from_scratch=True', 'torchvision',
               'mmgenre_jax/models/torchvision.py'):
    assert part in message, part
  assert '\n' not in message
  # Refused before anything was made (no workdir, the shards not read).
  assert not workdir.exists()
  # Explicitly from scratch, it starts: the next check is the shards'.
  config.model.from_scratch = True
  with pytest.raises(shard_reader.ManifestError,
                     match='manifest.json not found'):
    train_loop.train_and_evaluate(config, workdir)
  train_state.check_image_init(config)
  # Weights and from_scratch together contradict each other.
  config.model.pretrained = str(tmp_path / 'resnet101.npz')
  with pytest.raises(errors.ConfigError, match='contradict'):
    train_state.check_image_init(config)
  config.model.from_scratch = False
  train_state.check_image_init(config)
  # The tiny ResNet has no ImageNet weights: it never needs them.
  train_state.check_image_init(module.get_config(tiny_arg))


def test_pretrained_resnet_weights_are_loaded_after_init(tmp_path):
  config = _config('unused')
  config.model.name = 'resnet'
  config.model.depth = 'tiny'
  config.model.image_size = 32
  model = models.create_model(config.model)
  mesh = sharding.create_mesh()
  fresh = train_state.create_train_state(config, model, jax.random.key(2), mesh)
  # Weights that differ from the fresh ones everywhere (one ResNet compile).
  variables = jax.tree_util.tree_map(
      lambda x: np.asarray(x) + 1.0,
      jax.device_get({'params': fresh.params,
                      'batch_stats': fresh.batch_stats}))
  path = tmp_path / 'resnet_tiny.npz'
  torchvision.export_torchvision_npz(variables, path)
  config.model.pretrained = str(path)
  loaded = train_state.load_pretrained(config, fresh, mesh)
  loaded_params = jax.device_get(loaded.params)
  fresh_params = jax.device_get(fresh.params)
  for name in loaded_params:
    expected = fresh_params if name == image.HEAD_NAME else (
        variables['params'])
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           loaded_params[name], expected[name])
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         jax.device_get(loaded.batch_stats),
                         variables['batch_stats'])
  config.model.name = 'audio_cnn'
  with pytest.raises(ValueError, match='is for ResNet weights'):
    train_state.load_pretrained(config, fresh, mesh)


def test_a_stage_refuses_shards_prepared_again_with_another_front_end(
    tmp_path):
  # pylint: disable=g-import-not-at-top
  from input_pipeline.features import frontends
  from mmgenre_jax.data import facts as data_facts
  # pylint: enable=g-import-not-at-top
  # Trained on shards from before the record (librosa soxr_hq).
  data_facts.write(tmp_path, data_facts.DataFacts(3, 'multi_hot'))
  old = frontends.named('librosa_soxr_hq')
  data_facts.check_frontend(tmp_path, old, 'shards')
  new = frontends.named('jax_polyphase')
  data_facts.check_frontend(tmp_path / 'new', new, 'shards')  # Untrained.
  with pytest.raises(frontends.FrontEndMismatch, match='jax_polyphase'):
    data_facts.check_frontend(tmp_path, new, 'shards')

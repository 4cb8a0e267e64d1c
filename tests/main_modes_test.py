"""main.py's modes on a pipeline config, its user errors, the lock, divergence.

One tiny 2-stage pipeline (audio CNN -> fusion, the stages of
tests/mmgenre_jax/pipelines/runner_test.py on the tiny shards of tiny.py) is
written to a config file that `main.py --config=FILE` loads, and trained once
in-process (module fixture `trained`); every main.py mode then runs on it as a
subprocess. User errors must end with exit status 2 and one `error: ...` line on
stderr, without a traceback (two of them through main.py, the others through
main_modes.run in this process).
"""

import importlib.util
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from helpers import tiny
from mmgenre_jax.train import checkpoints
from mmgenre_jax.train import workdir_guard
from mmgenre_jax import errors
from mmgenre_jax import main_modes
from mmgenre_jax.train import loop as train_loop
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.pipelines import stage_modes
from mmgenre_jax.pipelines import runner

REPO = pathlib.Path(__file__).resolve().parent.parent
# Few labels in the tiny corpus: d must not exceed the number of labels.
TINY = {'data.factor_dim': 4, 'train.batch_size': 4, 'train.num_epochs': 1,
        'eval.batch_size': 4}
PIPELINE_FILE = '''"""A tiny 2-stage pipeline on the shards of helpers/tiny.py."""

from mmgenre_jax.pipelines import definition


def get_config():
  config = definition.pipeline_config(
      'tiny', 'tiny_pipeline.py', dataset='mumu', shard_dir={shard_dir!r})
  definition.add_stage(config, 'audio', config_file='configs/mumu_audio.py',
                       config_arg='low-4x70-cosine', overrides={tiny!r})
  definition.add_stage(config, 'fused', config_file='configs/mumu_fusion.py',
                       config_arg='audio-cosine', overrides={tiny!r},
                       inputs={{'audio': 'audio'}})
  definition.link_input_dims(config)
  return config
'''
# LOW-4x70 (Table 5): 288,640 in its convolutions, then a 4-d COSINE head on
# its 256-d representation (256 x 4 + 4); the fusion is that head alone.
FUSED_PARAMS = 256 * 4 + 4
AUDIO_PARAMS = 288_640 + FUSED_PARAMS
# Holds workdir_guard.workdir_lock on every directory of argv until killed.
_HOLDER = r'''
import contextlib, sys, time
from mmgenre_jax.train import workdir_guard
with contextlib.ExitStack() as stack:
  for path in sys.argv[1:]:
    stack.enter_context(workdir_guard.workdir_lock(path))
  print('LOCKED', flush=True)
  time.sleep(600)
'''


def _env():
  return dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
              PYTHONPATH=str(REPO))


def _main(*args, timeout=300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, str(REPO / 'main.py'), *args],
                        cwd=REPO, env=_env(), capture_output=True, text=True,
                        timeout=timeout, check=False)


def _json_lines(stdout: str):
  return [json.loads(line) for line in stdout.splitlines()
          if line.startswith('{')]


def _assert_user_error(result, *fragments) -> str:
  """Exit status 2, one `error:` line naming the fix, no traceback."""
  assert result.returncode == errors.EXIT_CODE, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines()
           if line.startswith('error: ')]
  assert len(lines) == 1, result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1] == lines[0]
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  return lines[0]


def _load(config_file, config_arg=None):
  module_spec = importlib.util.spec_from_file_location(
      pathlib.Path(config_file).stem, config_file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return (module.get_config(config_arg) if config_arg
          else module.get_config())


@pytest.fixture(scope='module')
def config_file(shard_dir, tmp_path_factory) -> pathlib.Path:
  path = tmp_path_factory.mktemp('configs') / 'tiny_pipeline.py'
  path.write_text(PIPELINE_FILE.format(shard_dir=str(shard_dir), tiny=TINY))
  return path


@pytest.fixture(scope='module')
def trained(config_file, tmp_path_factory) -> pathlib.Path:
  """The pipeline workdir W after one complete run."""
  workdir = tmp_path_factory.mktemp('pipeline')
  runner.run_pipeline(_load(config_file), workdir)
  return workdir


# ------------------------------------------------------------------ modes


def test_summary_prints_every_stage_and_the_total(config_file, tmp_path,
                                                  capsys):
  result = _main(f'--config={config_file}', f'--workdir={tmp_path}',
                 '--mode=summary')
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  assert out.index('== stage audio (network)') < out.index(
      '== stage fused (fusion)')
  per_stage = [int(line.split('=')[1]) for line in out.splitlines()
               if line.startswith('total_params=')]
  assert per_stage == [AUDIO_PARAMS, FUSED_PARAMS,
                       AUDIO_PARAMS + FUSED_PARAMS]
  assert 'conv_0/kernel' in out and 'head/dense/kernel' in out
  assert not list(tmp_path.iterdir())  # a summary writes nothing
  config = _load(config_file)
  assert stage_modes.print_summary(config, tmp_path,
                                   stage='fused') == FUSED_PARAMS
  assert capsys.readouterr().out.strip().splitlines()[-1] == (
      f'total_params={FUSED_PARAMS}')


def test_summary_of_a_trained_pipeline_counts_the_trained_networks(
    trained, config_file, capsys):
  """Sized by each stage's data_facts.json: the networks that were trained
  (the report's Params), not the config's default label count."""
  config = _load(config_file)
  for name in ('audio', 'fused'):
    metrics = json.loads(
        (trained / name / workdir_lib.TEST_METRICS_JSON).read_text())
    trained_params = metrics.get('params', metrics.get('num_params'))
    assert stage_modes.print_summary(config, trained,
                                     stage=name) == trained_params
    assert 'sized by the data it was trained on' in capsys.readouterr().out


def test_evaluate_mode_runs_every_stage_in_order(trained, config_file):
  result = _main(f'--config={config_file}', f'--workdir={trained}',
                 '--mode=evaluate', '--checkpoint=best')
  assert result.returncode == 0, result.stderr[-3000:]
  lines = _json_lines(result.stdout)
  assert [line['stage'] for line in lines] == ['audio', 'fused']
  assert result.stdout.strip().splitlines()[-1].startswith('{"')
  for line in lines:
    # The best checkpoint on the test split: the stage's test metrics.
    metrics = json.loads(
        (trained / line['stage'] / workdir_lib.TEST_METRICS_JSON).read_text())
    assert line['roc_auc'] == metrics['roc_auc']
    assert line['loss'] == metrics['loss']
    assert line['checkpoint'] == 'best' and line['step'] == metrics['step']


def test_extract_mode_on_one_stage(trained, config_file):
  path = workdir_lib.representation_path(trained / 'fused', 'fusion', 'test')
  with np.load(path) as data:
    before = {key: data[key] for key in data.files}
  result = _main(f'--config={config_file}', f'--workdir={trained}',
                 '--mode=extract', '--stage=fused', '--split=test')
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout.strip().splitlines()
  assert out[-2:] == [str(path), json.dumps(
      {'representations': {'test': {'fusion': str(path)}}, 'stage': 'fused'},
      sort_keys=True)]
  with np.load(path) as data:
    assert sorted(data.files) == sorted(before)
    for key, value in before.items():
      np.testing.assert_array_equal(data[key], value, err_msg=key)


def test_modes_refuse_untrained_stages_before_any_work(trained, config_file,
                                                       tmp_path):
  config = _load(config_file)
  with pytest.raises(errors.UnknownStageError,
                     match='no such stage; its stages are audio, fused'):
    stage_modes.select_stages(config, 'audio_text')
  # Only the audio stage trained: evaluating all says which to pick.
  (tmp_path / 'audio').symlink_to(trained / 'audio')
  with pytest.raises(errors.NoCheckpointError) as info:
    next(stage_modes.evaluate_stages(config, tmp_path))
  assert 'stage(s) fused have no checkpoint' in str(info.value)
  assert 'pick a trained stage with --stage (audio)' in str(info.value)
  assert not (tmp_path / 'fused').exists()


def _event_images(eval_dir: pathlib.Path):
  """Image tag -> (step, width, height) of the TensorBoard events there."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = {}
  for path in sorted(eval_dir.glob('events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == 'images':
          width, height = value.tensor.string_val[:2]
          images[value.tag] = (event.step, int(width), int(height))
  return images


def test_evaluate_mode_writes_label_images(full_run, shard_dir, tmp_path):
  # A copy of the tiny audio run of tiny.py (COSINE, multi-label), so
  # its events hold this evaluation only.
  workdir = tmp_path / 'run'
  shutil.copytree(full_run[0], workdir)
  report = full_run[1]
  overrides = (f'--config.data.shard_dir={shard_dir}',
               f'--config.train.batch_size={tiny.TINY_BATCH}',
               f'--config.eval.batch_size={tiny.TINY_BATCH}')
  result = _main(f'--config={REPO / "configs" / "test.py"}',
                 f'--workdir={workdir}', *overrides, '--mode=evaluate',
                 '--checkpoint=best')
  assert result.returncode == 0, result.stderr[-3000:]
  (line,) = _json_lines(result.stdout)
  assert line['roc_auc'] == report['roc_auc'] and '_extract' not in line
  eval_dir = workdir_lib.eval_dir(workdir, 'test')
  written = json.loads((eval_dir / workdir_lib.EVAL_METRICS_JSON).read_text())
  assert written == line
  images = _event_images(eval_dir)
  # Multi-label: the per-label AUC bars, no confusion matrix.
  assert sorted(images) == ['best/label_auc']
  step, width, _ = images['best/label_auc']
  assert step == report['step'] and width >= 1000
  # Follow mode (the pod's evaluation job) on the finished run: the latest
  # checkpoint's image.
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.evaluation import evaluate
  config = tiny.tiny_train_config(shard_dir)
  followed = evaluate.evaluate(config, workdir, follow=True,
                               poll_seconds=0.1, timeout_s=120)
  assert '_extract' not in followed
  assert 'latest/label_auc' in _event_images(eval_dir)


def test_label_images_of_a_single_label_split():
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.core import targets
  from mmgenre_jax.evaluation import images as images_lib
  # pylint: enable=g-import-not-at-top
  scores = np.eye(3)[[0, 1, 2, 2, 1]]
  images = images_lib.label_images(scores, np.array([0, 1, 2, 1, 0]),
                                   ['Pop', 'Rock', 'Jazz'], targets.SOFTMAX,
                                   'test')
  assert sorted(images) == ['confusion_matrix', 'label_auc']
  for image in images.values():
    assert image.dtype == np.uint8 and image.shape[0] == 1
    assert image.shape[2] >= 1000 and image.shape[3] == 3
  # Multi-hot labels, no names: no confusion matrix.
  multi = images_lib.label_images(scores, np.eye(3)[[0, 1, 2, 0, 1]], None,
                                  targets.COSINE, 'test')
  assert list(multi) == ['label_auc']


# ------------------------------------------------------------ user errors


def _incomplete_shards(root: pathlib.Path, shard_dir) -> pathlib.Path:
  out = root / 'incomplete'
  shutil.copytree(shard_dir, out)
  manifest = json.loads((out / 'manifest.json').read_text())
  manifest['complete'] = False
  (out / 'manifest.json').write_text(json.dumps(manifest))
  return out


# main.py itself prints these two; the others go through main_modes.run in
# this process (a subprocess costs seconds of JAX and TF imports), which is
# what main.py calls, and errors.one_line, which is what main.py prints.
THROUGH_MAIN_PY = ('no_shard_dir', 'other_config')


def _user_error_case(case, trained, config_file, shard_dir, tmp_path):
  """main.py's arguments for `case` and fragments of its one error line."""
  test_config = f'--config={REPO / "configs" / "test.py"}'
  return {
      'no_shard_dir': ((test_config, f'--workdir={tmp_path / "w"}'),
                       ('config.data.shard_dir is empty',
                        '--config.data.shard_dir')),
      'missing_shards': ((f'--config={config_file}',
                          f'--workdir={tmp_path / "w"}',
                          f'--config.data.shard_dir={tmp_path / "none"}'),
                         ('manifest.json not found', 'mmgenre prepare')),
      'incomplete_shards': (
          (f'--config={config_file}', f'--workdir={tmp_path / "w"}',
           '--config.data.shard_dir='
           f'{_incomplete_shards(tmp_path, shard_dir)}'),
          ('marks an incomplete run', 'mmgenre prepare')),
      'other_config': (
          (f'--config={REPO / "configs" / "mumu_text.py"}:cosine',
           f'--workdir={trained / "audio"}',
           f'--config.data.shard_dir={shard_dir}'),
          ('holds another experiment (name audio_cnn, target cosine, '
           'dataset mumu; this config: name text_mlp, target cosine, '
           'dataset mumu)', 'pick another --workdir')),
      'pipeline_workdir': (
          (test_config, f'--workdir={trained}',
           f'--config.data.shard_dir={shard_dir}', '--mode=evaluate'),
          ("is the workdir of pipeline 'tiny'", 'pick another --workdir')),
      'unknown_stage': (
          (f'--config={config_file}', f'--workdir={trained}',
           '--mode=evaluate', '--stage=text'),
          ('--stage=text', 'its stages are audio, fused')),
      'no_checkpoint': (
          (test_config, f'--workdir={tmp_path / "w"}',
           f'--config.data.shard_dir={shard_dir}', '--mode=evaluate'),
          ('has no checkpoint', 'train there first')),
  }[case]


def _run_in_process(args) -> str:
  """main_modes.run with main.py's `args`; the line main.py would print."""
  flags = dict(arg[2:].split('=', 1) for arg in args)
  path, _, config_arg = flags.pop('config').partition(':')
  config = _load(path, config_arg or None)
  config.unlock()
  for key in [k for k in flags if k.startswith('config.')]:
    *parents, field = key[len('config.'):].split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[field] = flags.pop(key)
  with pytest.raises(errors.UserError) as raised:
    main_modes.run(config, flags.pop('workdir'),
                   mode=flags.pop('mode', 'train'), stage=flags.pop(
                       'stage', None))
  assert not flags, flags
  return errors.one_line(raised.value)


@pytest.mark.parametrize('case', [
    'no_shard_dir', 'missing_shards', 'incomplete_shards', 'other_config',
    'pipeline_workdir', 'unknown_stage', 'no_checkpoint'])
def test_user_errors_print_one_line(case, trained, config_file, shard_dir,
                                    tmp_path):
  args, fragments = _user_error_case(case, trained, config_file, shard_dir,
                                     tmp_path)
  if case in THROUGH_MAIN_PY:
    line = _assert_user_error(_main(*args, timeout=120), *fragments)
  else:
    line = _run_in_process(args)
  assert line.startswith('error: ') and '\n' not in line
  for fragment in fragments:
    assert fragment in line, line
  # Nothing was created for a run that could not start.
  assert not (tmp_path / 'w').exists()


def test_a_complete_stage_refuses_shards_of_another_front_end(
    trained, config_file, shard_dir, tmp_path):
  workdir = shutil.copytree(trained, tmp_path / 'W')
  shards = shutil.copytree(shard_dir, tmp_path / 'shards')
  manifest = json.loads((shards / 'manifest.json').read_text())
  assert 'frontend' not in manifest  # Made before the record: librosa's.
  manifest['frontend'] = 'jax_polyphase'
  (shards / 'manifest.json').write_text(json.dumps(manifest))
  line = _run_in_process((f'--config={config_file}', f'--workdir={workdir}',
                          f'--config.data.shard_dir={shards}'))
  for fragment in (f'the stage in {workdir / "audio"}', "'librosa_soxr_hq'",
                   "'jax_polyphase'", 'a new --workdir'):
    assert fragment in line, line


def test_workdir_checks(trained, config_file):
  config = _load(config_file)
  other = _load(config_file)
  other.config_ref = 'tiny_pipeline.py:other'
  with pytest.raises(errors.WorkdirError, match='holds another pipeline'):
    runner.check_pipeline_workdir(other, trained)
  with pytest.raises(errors.WorkdirError,
                     match='workdir of one network .model audio_cnn'):
    runner.check_pipeline_workdir(config, trained / 'audio')
  runner.check_pipeline_workdir(config, trained)
  audio = runner.resolve_stage_config(config, 'audio', trained)
  with pytest.raises(errors.WorkdirError, match='holds another experiment'):
    train_loop.train_and_evaluate(
        runner.resolve_stage_config(config, 'fused', trained),
        trained / 'audio')
  # The same experiment with other training settings may resume there.
  audio.train.learning_rate = 0.5
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.train import workdir_guard
  workdir_guard.check_workdir(audio, trained / 'audio')


# ------------------------------------------------------------------- lock


def test_second_job_on_a_locked_workdir_stops(trained, config_file):
  holder = subprocess.Popen(
      [sys.executable, '-c', _HOLDER, str(trained), str(trained / 'audio')],
      cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    assert holder.stdout.readline().strip() == 'LOCKED', holder.stderr.read()
    line = _assert_user_error(
        _main(f'--config={config_file}', f'--workdir={trained}'),
        f'is in use: {trained / workdir_lib.LOCK_FILE} is held by pid '
        f'{holder.pid} on host', 'kill -9', 'delete')
    assert f'-c {trained} {trained / "audio"}' in line  # its command
    # A stage's training takes the stage workdir's own lock.
    config = _load(config_file)
    with pytest.raises(errors.WorkdirLockedError, match=f'pid {holder.pid}'):
      train_loop.train_and_evaluate(
          runner.resolve_stage_config(config, 'audio', trained),
          trained / 'audio')
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  # kill -9 released it: the same command runs (every stage is complete).
  result = _main(f'--config={config_file}', f'--workdir={trained}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.count('complete, skipped') == 2


def test_lock_is_reentrant_in_one_process(tmp_path):
  with workdir_guard.workdir_lock(tmp_path):
    with workdir_guard.workdir_lock(tmp_path):
      pass
    holder = json.loads((tmp_path / workdir_lib.LOCK_FILE).read_text())
    assert holder['pid'] == os.getpid()
  # Released: another process takes it at once.
  result = subprocess.run(
      [sys.executable, '-c', _HOLDER.replace('time.sleep(600)', 'pass'),
       str(tmp_path)], cwd=REPO, env=_env(), capture_output=True, text=True,
      timeout=120, check=False)
  assert result.stdout.strip() == 'LOCKED', result.stderr[-3000:]


# ------------------------------------------------------------- divergence


def _latest(workdir):
  """(step, params) of checkpoints/latest, restored without a target."""
  mngr = checkpoints.manager(workdir, workdir_lib.LATEST, read_only=True)
  try:
    step = mngr.latest_step()
    restored = mngr.restore(step, args=ocp.args.StandardRestore())
  finally:
    mngr.close()
  return step, jax.device_get(restored['state']['params'])


def test_divergence_stops_and_keeps_the_last_finite_checkpoint(
    trained, config_file, tmp_path):
  workdir = tmp_path / 'audio'
  shutil.copytree(trained / 'audio', workdir)
  good_step, good_params = _latest(workdir)
  config = runner.resolve_stage_config(_load(config_file), 'audio', trained)
  # A second epoch at a huge rate: Adam steps of 1e30 overflow float32.
  config.train.num_epochs = 2
  config.train.learning_rate = 1e30
  with pytest.raises(errors.DivergedError) as info:
    train_loop.train_and_evaluate(config, workdir)
  message = str(info.value)
  assert 'training diverged; lower --config.train.learning_rate' in message
  assert (f'{workdir_lib.checkpoint_dir(workdir, workdir_lib.LATEST)} keeps '
          f'the last finite state (step {good_step})') in message
  step, params = _latest(workdir)
  assert step == good_step == (tiny.TINY_ALBUMS['train'] *
                               tiny.TINY_TRACKS_PER_ALBUM // 4)
  assert sorted(p.name for p in workdir_lib.checkpoint_dir(
      workdir, workdir_lib.LATEST).iterdir()) == [str(good_step)]
  leaves = jax.tree.leaves(params)
  assert leaves and all(np.all(np.isfinite(x)) for x in leaves)
  jax.tree.map(np.testing.assert_array_equal, params, good_params)
  assert not (workdir / workdir_lib.TRAINING_DONE_JSON).exists()

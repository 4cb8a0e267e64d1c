"""Trains and evaluates ONE network (one pipeline stage) of the paper.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.data.shard_dir=runs/data/shards

A shard network's input modality follows config.model.name (the registry,
mmgenre_jax/models/registry.py); fusion and alignment train on the
representations extracted by earlier stages, named by config.data.inputs
(docs/workdirs.md §2; mmgenre_jax/data/representations.py joins them). Each
epoch trains on the training split, evaluates on the validation split and
saves workdir/checkpoints/latest; the epoch with the lowest validation loss is
kept in workdir/checkpoints/best, and training stops early after
config.train.patience epochs without improvement (docs/fidelity.md). At the
end the best checkpoint is evaluated on the test split (metrics: paper Sec
6.3, 7.2) and the metrics are written to workdir/test_metrics.json.

A run that is stopped and started again with the same command resumes from
workdir/checkpoints/latest and ends in the same state as an uninterrupted
run: the training order of every epoch is seeded by (seed, epoch), dropout by
(seed, step), and a mid-epoch checkpoint records how many batches of the
epoch were done.

This module is the loop. Its parts live beside it, one job each: setup.py
(the data, its facts, the network, the task's jitted steps), label_factors.py
(COSINE targets), train_state.py (parameters and optimizer), checkpoints.py
(orbax) and workdir_guard.py (one job, one experiment per workdir). What the
network trains for (its steps, whole-split metrics) is its task's
(mmgenre_jax/tasks/).

One job trains in a workdir at a time (workdir_guard.workdir_lock), and only
on a workdir that is empty or holds the same experiment
(workdir_guard.check_workdir). A NaN / Inf loss or state stops training
(errors.DivergedError) before that state is saved: checkpoints/latest keeps
the last finite one.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, Mapping, Optional

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmgenre_jax import errors
from mmgenre_jax import sharding
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import metrics
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.data import device_batch
from mmgenre_jax.data import sources
from mmgenre_jax.models import registry
from mmgenre_jax.tasks import base
from mmgenre_jax.train import checkpoints
from mmgenre_jax.train import setup as setup_lib
from mmgenre_jax.train import summaries
from mmgenre_jax.train import train_state
from mmgenre_jax.train import workdir_guard


def _check_finite(values: Mapping[str, Any], where: str,
                  kept: str = '') -> None:
  """Raises errors.DivergedError on the first NaN / Inf scalar of values.

  Args:
    values: metric name -> value; non-scalars and None are skipped.
    where: e.g. 'training step 12', for the message.
    kept: what checkpoints/latest holds now, for the message.
  """
  for key, value in values.items():
    if value is not None and np.ndim(value) == 0 and not np.isfinite(value):
      raise errors.DivergedError(
          f'{key} became {value} ({where}): training diverged; lower '
          '--config.train.learning_rate or check the input features.'
          + (f' {kept}' if kept else ''))


@jax.jit
def _all_finite(tree) -> jax.Array:
  """Whether every float leaf (params, batch stats, optimizer) is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _prefixed(values: Mapping[str, Any], prefix: str) -> Dict[str, float]:
  return {f'{prefix}/{k}': v for k, v in metrics.flatten_metrics(
      values).items()}


@dataclasses.dataclass
class _Run:
  """What the loop carries: the stage, the writer and the progress."""
  stage: setup_lib.Stage
  writer: Any
  dropout_rng: jax.Array
  batch_size: int
  steps_per_epoch: int
  latest: Any  # ocp.CheckpointManager of checkpoints/latest
  best: Any  # ocp.CheckpointManager of checkpoints/best
  progress: checkpoints.Progress
  step: int = 0
  workdir: str = ''
  # The step checkpoints/latest holds (None: nothing saved yet).
  saved_step: Optional[int] = None

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.stage.config

  @property
  def steps(self) -> base.Steps:
    return self.stage.steps

  @property
  def max_steps(self) -> Optional[int]:
    # 0 (configs/default.py): no limit but the epochs.
    value = int(self.config.train.max_steps)
    return value or None

  def evaluate(self, state, split: str) -> Dict[str, Any]:
    """The task's whole-split metrics of `state`."""
    return self.stage.task.evaluate_split(self.steps, state, self.config,
                                          split).metrics

  def kept(self) -> str:
    """What a divergence leaves behind, for its message."""
    latest = workdir_lib.checkpoint_dir(self.workdir, workdir_lib.LATEST)
    if self.saved_step is None:
      return f'No checkpoint was saved yet in {latest}.'
    return (f'{latest} keeps the last finite state (step {self.saved_step}); '
            'rerunning resumes from it.')

  def check_state(self, state) -> None:
    """Raises errors.DivergedError unless every float of state is finite."""
    if not bool(jax.device_get(_all_finite(
        (state.params, state.batch_stats, state.opt_state)))):
      raise errors.DivergedError(
          f'The parameters or optimizer state became NaN / Inf by step '
          f'{self.step}: training diverged; lower '
          f'--config.train.learning_rate or check the input features. '
          f'{self.kept()}')

  def save_latest(self, state) -> None:
    checkpoints.save(self.latest, self.step, state, self.progress)
    self.saved_step = self.step

  def finished(self) -> bool:
    return (self.progress.epoch >= int(self.config.train.num_epochs) or
            self.progress.bad_epochs >= int(self.config.train.patience) or
            (self.max_steps is not None and self.step >= self.max_steps))


def _init_or_resume(stage: setup_lib.Stage, workdir, steps_per_epoch):
  """(state, progress, latest, best): resumed from checkpoints/latest."""
  config = stage.config
  rng = jax.random.key(int(config.train.seed))
  init_rng, _ = jax.random.split(rng)
  state = train_state.create_train_state(config, stage.model, init_rng,
                                         stage.mesh, steps_per_epoch,
                                         facts=stage.facts)
  latest_mngr, best_mngr = checkpoints.managers(workdir)
  progress = checkpoints.Progress()
  if latest_mngr.latest_step() is not None:
    state, progress = checkpoints.restore(latest_mngr,
                                          latest_mngr.latest_step(), state)
    logging.info('Resumed from step %d (epoch %d, batch %d).',
                 int(state.step), progress.epoch, progress.batches_in_epoch)
  else:
    state = train_state.load_pretrained(config, state, stage.mesh)
  return state, progress, latest_mngr, best_mngr


def _train_epoch(run: _Run, state, report_progress):
  """Trains until the epoch ends (or max_steps); returns the new state."""
  config, progress, steps = run.config, run.progress, run.steps
  log_every = int(config.train.log_every_steps)
  epoch_start, start_batches = time.time(), progress.batches_in_epoch
  train_metrics = None
  for batch in steps.source.batches(
      'train', run.batch_size,
      seed=sources.epoch_seed(config.train.seed, progress.epoch),
      skip=progress.batches_in_epoch):
    with jax.profiler.StepTraceAnnotation('train', step_num=run.step):
      state, update = steps.train(
          state, device_batch.model_batch(batch, steps.keys, steps.mesh),
          run.dropout_rng)
    run.step += 1
    progress.batches_in_epoch += 1
    train_metrics = (update if train_metrics is None
                     else train_metrics.merge(update))
    report_progress(run.step)
    is_epoch_end = progress.batches_in_epoch >= run.steps_per_epoch
    is_last = run.max_steps is not None and run.step >= run.max_steps
    # Always before a checkpoint (epoch end, max_steps), so that a diverged
    # loss stops training before its state is saved.
    if run.step % log_every == 0 or is_epoch_end or is_last:
      values = jax.device_get(train_metrics.compute())
      values['l2_params'] = float(steps.param_norm(state.params))
      _check_finite(values, f'training step {run.step}', run.kept())
      run.writer.write_scalars(run.step, _prefixed(values, 'train'))
      train_metrics = None
    if is_last:
      break
  # Training time only (no evaluation), over resumed parts too.
  progress.train_seconds += time.time() - epoch_start
  progress.timed_batches += progress.batches_in_epoch - start_batches
  return state


def _validate(run: _Run, state, report_progress) -> None:
  """Validation loss -> early stopping and the best checkpoint.

  docs/fidelity.md: patience and the best checkpoint.
  """
  progress = run.progress
  epoch = progress.epoch
  with report_progress.timed('eval'):
    val = run.evaluate(state, 'val')
  _check_finite({'loss': val['loss']}, f'validation after epoch {epoch}',
                run.kept())
  run.writer.write_scalars(run.step, _prefixed(val, 'val'))
  progress.epoch = epoch + 1
  progress.batches_in_epoch = 0
  if val['loss'] < progress.best_val_loss:
    progress.best_val_loss = val['loss']
    progress.bad_epochs = 0
    progress.best_epoch = epoch
    checkpoints.save(run.best, run.step, state, progress)
  else:
    progress.bad_epochs += 1
  logging.info('epoch %d step %d: val loss %.5f (best %.5f at epoch %d) '
               '%s', epoch, run.step, val['loss'], progress.best_val_loss,
               progress.best_epoch, metrics.format_report(val))


def _test_best(run: _Run, state, params_count: int) -> Dict[str, Any]:
  """Test metrics of the best checkpoint (Sec 6.3, 7.2), plus run statistics."""
  progress = run.progress
  if run.best.latest_step() is not None:
    best_state, best_progress = checkpoints.restore(
        run.best, run.best.latest_step(), state)
  else:
    # No epoch finished (max_steps inside the first epoch): test the
    # current parameters.
    logging.warning('No validated checkpoint yet; testing the parameters '
                    'of step %d.', run.step)
    best_state, best_progress = state, progress
  report = run.evaluate(best_state, 'test')
  epoch_s = (progress.train_seconds * run.steps_per_epoch /
             progress.timed_batches if progress.timed_batches else None)
  report.update(
      epoch_s=epoch_s, params=params_count, num_params=params_count,
      step=int(best_state.step), best_epoch=int(best_progress.best_epoch),
      train_steps=run.step)
  run.writer.write_scalars(run.step, _prefixed(report, 'test'))
  return report


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Trains one network, keeps the best checkpoint, evaluates it on test.

  Args:
    config: an experiment config (configs/*.py): a shard network with
      config.data.shard_dir pointing to prepared shards, or a fusion /
      alignment stage with config.data.inputs naming the workdirs whose
      representations it reads (docs/workdirs.md §2).
    workdir: where checkpoints, TensorBoard events, label factors and
      test_metrics.json go: a local directory or a gs://bucket/... URL
      (docs/tpu_pod.md §4). An existing run there is resumed.

  Returns:
    The test metrics (also in workdir/test_metrics.json): roc_auc, pr_auc,
    adiv@1/3/5, precision, recall, macro_f1, ..., loss, params (and
    num_params, the same, which readers of older workdirs look for),
    epoch_s (mean seconds per training epoch), step, best_epoch,
    train_steps.

  Raises:
    errors.WorkdirLockedError: another job trains in workdir.
    errors.WorkdirError: workdir holds another experiment.
    errors.ConfigError: the config does not fit the data.
    errors.DivergedError: a loss or the state became NaN / Inf;
      checkpoints/latest keeps the last finite state.
  """
  workdir = epath.Path(workdir)
  # A ResNet without ImageNet weights or from_scratch, likewise.
  train_state.check_image_init(config)
  if not registry.network(config.model).reads_representations:
    # Missing shards fail before the workdir (and its lock file) is made.
    sources.open_data(config)
  # The lock before the check, which reads the config.json a live job may
  # write.
  with workdir_guard.workdir_lock(workdir):
    workdir_guard.check_workdir(config, workdir)
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict,
                        workdir: epath.Path) -> Dict[str, Any]:
  """train_and_evaluate's work, under the workdir lock."""
  stage = setup_lib.setup(config, workdir, compute_label_factors=True)
  is_chief = jax.process_index() == 0
  done_path = workdir / workdir_lib.TRAINING_DONE_JSON
  if is_chief:
    done_path.unlink(missing_ok=True)
    workdir_lib.write_json(workdir / workdir_lib.CONFIG_JSON,
                           json.loads(config.to_json()), sort_keys=True)
    data_facts.write(workdir, stage.facts)
  writer = summaries.create_writer(workdir, just_logging=not is_chief)
  batch_size = sharding.per_process_batch_size(int(config.train.batch_size),
                                               stage.mesh)
  steps_per_epoch = stage.steps.source.num_batches('train', batch_size)
  state, progress, latest_mngr, best_mngr = _init_or_resume(
      stage, workdir, steps_per_epoch)
  params_count = train_state.num_params(state.params)
  logging.info('%s: %d parameters', config.model.name, params_count)
  run = _Run(stage=stage, writer=writer,
             dropout_rng=jax.random.split(
                 jax.random.key(int(config.train.seed)))[1],
             batch_size=batch_size, steps_per_epoch=steps_per_epoch,
             latest=latest_mngr, best=best_mngr, progress=progress,
             step=int(state.step), workdir=os.fspath(workdir),
             saved_step=latest_mngr.latest_step())
  total_steps = int(config.train.num_epochs) * steps_per_epoch
  if run.max_steps is not None:
    total_steps = min(total_steps, run.max_steps)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=total_steps, writer=writer)
  if run.step == 0:
    writer.write_hparams(_flat_config(config, stage.facts))

  try:
    with metric_writers.ensure_flushes(writer):
      while not run.finished():
        state = _train_epoch(run, state, report_progress)
        # Before either series saves: nothing non-finite is ever saved.
        run.check_state(state)
        if progress.batches_in_epoch < steps_per_epoch:
          # Stopped inside the epoch (max_steps): a restart continues here.
          run.save_latest(state)
          break
        _validate(run, state, report_progress)
        run.save_latest(state)
      latest_mngr.wait_until_finished()
      best_mngr.wait_until_finished()
      report = _test_best(run, state, params_count)
  finally:
    # Also on an error (divergence): the saves in flight, the last finite
    # states, are finished rather than left half written.
    latest_mngr.close()
    best_mngr.close()
  logging.info('test: %s', metrics.format_report(report))
  if is_chief:
    workdir_lib.write_json(workdir / workdir_lib.TEST_METRICS_JSON, report,
                           sort_keys=True)
    workdir_lib.write_json(done_path, {'step': run.step,
                                       'params': params_count,
                                       'epoch_s': report['epoch_s']},
                           sort_keys=True)
  return report


def _flat_config(config: ml_collections.ConfigDict,
                 facts: data_facts.DataFacts) -> Dict[str, Any]:
  """Scalar config fields as 'section.field' -> value, and the data facts as
  'facts.field', for write_hparams."""
  flat = {}
  for section, sub in config.items():
    if isinstance(sub, ml_collections.ConfigDict):
      for key, value in sub.items():
        if isinstance(value, (int, float, str, bool)):
          flat[f'{section}.{key}'] = value
  for key, value in facts.to_json().items():
    if isinstance(value, (int, float, str, bool)):
      flat[f'facts.{key}'] = value
  return flat

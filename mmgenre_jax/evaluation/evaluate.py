"""Checkpoint-based evaluation: one checkpoint, or follow a training run.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --mode=evaluate --checkpoint=best --split=test

The same set-up and task as training (restore.py), so evaluating the best
checkpoint of a finished run on the same devices reproduces its
test_metrics.json. With follow=True (`--follow`) this is the separate
evaluation job of a pod launch: it polls workdir/checkpoints/latest,
evaluates every new checkpoint it sees and returns once training has written
its done marker (workdir.TRAINING_DONE_JSON) and the last checkpoint is
evaluated.
Results go to workdir/eval_<split>/: one JSON per evaluated checkpoint,
metrics.json (the last one) and TensorBoard events: the scalars and, for a
network with label scores, the images of images.py.

A workdir is a local directory or a gs://bucket/... URL (docs/tpu_pod.md §4).
Evaluation checks first that the workdir holds this config's experiment
(workdir_guard.check_workdir) and, outside follow mode, the checkpoint asked
for (errors.NoCheckpointError), before any data is read or compiled.
"""

import json
import time
from typing import Any, Dict, Optional

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import metrics
from mmgenre_jax.evaluation import images as images_lib
from mmgenre_jax.evaluation import restore
from mmgenre_jax.models import registry
from mmgenre_jax.train import checkpoints
from mmgenre_jax.train import summaries
from mmgenre_jax.train import workdir_guard

# Seconds between two looks at workdir/checkpoints/latest in follow mode.
POLL_SECONDS = 10.0


def _images(evaluator: restore.Evaluator, result, split: str, kind: str,
            step: int) -> Dict[str, np.ndarray]:
  """The images of a result's rows; process 0 draws them."""
  if result.rows is None or jax.process_index() != 0:
    return {}
  config = evaluator.stage.config
  return images_lib.label_images(
      result.rows.scores, result.rows.labels, result.rows.label_names,
      registry.target(config.model),
      f'{config.model.name} {split}, {kind} step {step}')


def _write_result(eval_dir: epath.Path, writer, report: Dict[str, Any],
                  kind: str, step: int,
                  images: Optional[Dict[str, np.ndarray]] = None) -> None:
  scalars = {k: v for k, v in report.items() if not isinstance(v, str)}
  writer.write_scalars(step, {f'{kind}/{k}': v for k, v in
                              metrics.flatten_metrics(scalars).items()})
  if images:
    writer.write_images(step, {f'{kind}/{k}': v for k, v in images.items()})
  writer.flush()
  if jax.process_index() == 0:
    eval_dir.mkdir(parents=True, exist_ok=True)
    workdir_lib.write_json(eval_dir / f'{kind}_{step}.json', report,
                           sort_keys=True)
    workdir_lib.write_json(eval_dir / workdir_lib.EVAL_METRICS_JSON, report,
                           sort_keys=True)


def _evaluate_once(config, workdir: epath.Path, eval_dir: epath.Path,
                   checkpoint: restore.CheckpointSpec,
                   split: str) -> Dict[str, Any]:
  found = restore.checkpoint(config, workdir, checkpoint)
  evaluator = found.evaluator
  result = evaluator.evaluate(found.state, split,
                              collect=evaluator.collects_scores(split))
  report = dict(result.metrics)
  report.update(step=found.step, checkpoint=found.kind,
                epoch=int(found.progress.epoch),
                best_epoch=int(found.progress.best_epoch))
  writer = summaries.create_writer(eval_dir,
                                   just_logging=jax.process_index() > 0)
  _write_result(eval_dir, writer, report, found.kind, found.step,
                _images(evaluator, result, split, found.kind, found.step))
  return report


def _follow(config, workdir: epath.Path, eval_dir: epath.Path, split: str,
            poll_seconds: float, timeout_s: Optional[float]) -> Dict[str, Any]:
  """Evaluates each new latest checkpoint until training is done."""
  evaluator = restore.Evaluator(config, workdir)
  collect = evaluator.collects_scores(split)
  writer = summaries.create_writer(eval_dir,
                                   just_logging=jax.process_index() > 0)
  start = time.time()
  done_path = workdir / workdir_lib.TRAINING_DONE_JSON
  latest_dir = workdir_lib.checkpoint_dir(workdir, workdir_lib.LATEST)
  evaluated = set()
  report = None
  managers = None
  while True:
    # Read the marker BEFORE the checkpoint list: training writes its last
    # checkpoint before the marker, so a marker seen here means the list
    # read next is final.
    done = done_path.exists()
    if managers is None and latest_dir.is_dir():
      managers = checkpoints.managers(workdir, read_only=True)
    step = None
    if managers is not None:
      managers[0].reload()
      step = managers[0].latest_step()
    if step is not None and step not in evaluated:
      try:
        state, progress = evaluator.restore(managers[0], step)
      except (FileNotFoundError, ValueError) as e:
        # Training replaced this checkpoint while we read it; the next poll
        # finds the newer one.
        logging.warning('Checkpoint %d vanished while restoring (%s).', step,
                        e)
        continue
      result = evaluator.evaluate(state, split, collect=collect)
      report = dict(result.metrics)
      report.update(step=int(step), checkpoint='latest',
                    epoch=int(progress.epoch))
      _write_result(eval_dir, writer, report, 'latest', step,
                    _images(evaluator, result, split, 'latest', int(step)))
      logging.info('step %d %s: %s', step, split,
                   metrics.format_report(report))
      evaluated.add(step)
      continue
    if done:
      break
    if timeout_s is not None and time.time() - start > timeout_s:
      raise TimeoutError(
          f'No done marker {done_path} after {timeout_s:.0f} s; is training '
          'running with this workdir?')
    time.sleep(poll_seconds)
  if managers is not None:
    for manager in managers:
      manager.close()
  if report is None:
    raise FileNotFoundError(
        f'Training in {workdir} finished without a checkpoint in '
        f'{latest_dir}.')
  return report


def evaluate(config: ml_collections.ConfigDict,
             workdir,
             *,
             checkpoint: restore.CheckpointSpec = None,
             split: str = 'test',
             follow: bool = False,
             poll_seconds: float = POLL_SECONDS,
             timeout_s: Optional[float] = None) -> Dict[str, Any]:
  """Evaluates a checkpoint of a training workdir on one split.

  Args:
    config: the run's config (config.data.shard_dir as in training).
    workdir: the training workdir.
    checkpoint: 'best', 'latest', a step number, or None ('best' when it
      exists, else 'latest'). Ignored with follow=True (every new latest
      checkpoint).
    split: 'train', 'val' or 'test'.
    follow: poll workdir/checkpoints/latest until training is done.
    poll_seconds: follow mode: seconds between polls.
    timeout_s: follow mode: give up (TimeoutError) after this long.

  Returns:
    The task's metrics (Target.split_metrics keys, loss, ...), step and
    checkpoint (its kind); in follow mode those of the last checkpoint.
  """
  workdir = epath.Path(workdir)
  workdir_guard.check_workdir(config, workdir)
  eval_dir = workdir_lib.eval_dir(workdir, split)
  if follow:
    return _follow(config, workdir, eval_dir, split, poll_seconds, timeout_s)
  return _evaluate_once(config, workdir, eval_dir, checkpoint, split)


def to_json_line(report: Dict[str, Any]) -> str:
  """One JSON line of a report (the last stdout line of --mode=evaluate)."""
  return json.dumps({k: v for k, v in report.items()
                     if not k.startswith('_')}, sort_keys=True)

"""Checkpoint-based evaluation: one checkpoint, or follow a training run.

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --mode=evaluate --checkpoint=best --split=test

The same evaluation code as training (evaluators.evaluate_split), so evaluating
the best checkpoint of a finished run on the same devices reproduces its
test_metrics.json. With follow=True (`--follow`) this is the separate
evaluation job of a pod launch: it polls workdir/checkpoints/latest,
evaluates every new checkpoint it sees and returns once training has written
its done marker (workdir.TRAINING_DONE_JSON) and the last checkpoint is
evaluated.
Results go to workdir/eval_<split>/: one JSON per evaluated checkpoint,
metrics.json (the last one) and TensorBoard events: the scalars and, for a
network with label scores, the images '<kind>/label_auc' (per-label ROC-AUC)
and, single-label (softmax), '<kind>/confusion_matrix'.

extract / extract_all (`--mode=extract --split=all`) write the stage's
representations, workdir/representations/<name>/<split>.npz
(docs/workdirs.md §1), which fusion and alignment stages read.

A workdir is a local directory or a gs://bucket/... URL (docs/tpu_pod.md §4).
Both check first that the workdir holds this config's experiment
(stage_config.check_workdir) and, outside follow mode, the checkpoint asked
for (errors.NoCheckpointError), before any data is read or compiled.
"""

import json
import time
from typing import Any, Dict, Optional, Sequence, Union

from absl import logging
from clu import metric_writers
from etils import epath
import jax
import ml_collections
import numpy as np

from mmgenre_jax.train import checkpoints
from mmgenre_jax.data import sources as data_sources
from mmgenre_jax import errors
from mmgenre_jax.evaluation import evaluators
from mmgenre_jax.core import metrics
from mmgenre_jax.core import plots
from mmgenre_jax.data import representations
from mmgenre_jax import sharding
from mmgenre_jax.train import stage_config
from mmgenre_jax.train import loop as train_loop
from mmgenre_jax.train import train_state
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import registry

CheckpointSpec = Optional[Union[str, int]]
# Seconds between two looks at workdir/checkpoints/latest in follow mode.
POLL_SECONDS = 10.0


def _find_checkpoint(managers, checkpoint: CheckpointSpec, workdir):
  """(manager, step, kind) of 'best', 'latest' or a step number."""
  latest, best = managers
  if latest.latest_step() is None and best.latest_step() is None:
    raise errors.NoCheckpointError(
        f'{workdir} has no checkpoint (checkpoints/best and '
        'checkpoints/latest are empty or absent); train there first '
        f'(python main.py --config=... --workdir={workdir}) or pass the '
        '--workdir of a trained run.')
  if checkpoint is None:
    checkpoint = 'best' if best.latest_step() is not None else 'latest'
  if isinstance(checkpoint, str) and checkpoint.isdigit():
    checkpoint = int(checkpoint)
  if checkpoint in ('best', 'latest'):
    manager = best if checkpoint == 'best' else latest
    step = manager.latest_step()
    if step is None:
      raise errors.NoCheckpointError(
          f'{workdir} has no {checkpoint} checkpoint (looked in '
          f'{manager.directory}); train first, or pass --checkpoint=latest.')
    return manager, step, checkpoint
  if isinstance(checkpoint, int):
    for kind, manager in (('latest', latest), ('best', best)):
      if checkpoint in manager.all_steps():
        return manager, checkpoint, kind
    raise errors.NoCheckpointError(
        f'No checkpoint of step {checkpoint} in {workdir}; it has latest '
        f'{latest.all_steps()} and best {best.all_steps()}.')
  raise errors.UserError(f'--checkpoint={checkpoint}: use best, latest or '
                         'a step number.')


class _Evaluator:
  """Restores checkpoints of one workdir and evaluates them."""

  def __init__(self, config: ml_collections.ConfigDict, workdir):
    self.workdir = epath.Path(workdir)
    self.config, self.mesh, self.model, self.steps = train_loop.setup(config,
                                                                  workdir)
    self.abstract_state = train_state.abstract_train_state(self.config, self.model,
                                                     self.mesh)
    self._label_factors = None

  def label_factors(self):
    if self.config.model.target != 'cosine':
      return None
    if self._label_factors is None:
      self._label_factors = jax.device_put(
          stage_config.load_label_factors(self.config, self.workdir),
          sharding.replicated_sharding(self.mesh))
    return self._label_factors

  def restore(self, manager, step: int):
    state, meta = checkpoints.restore(manager, step, self.abstract_state)
    return state, meta

  def run(self, state, split: str, **kwargs) -> Dict[str, Any]:
    return evaluators.evaluate_split(self.steps, state, self.config, split,
                                     self.label_factors(), **kwargs)


def _restore(config, workdir, checkpoint: CheckpointSpec):
  """(evaluator, state, meta, step, kind) of one checkpoint of `workdir`.

  The checkpoint is looked up before the data are read, so a workdir without
  it fails fast with NoCheckpointError.
  """
  managers = checkpoints.managers(workdir, read_only=True)
  try:
    manager, step, kind = _find_checkpoint(managers, checkpoint, workdir)
    evaluator = _Evaluator(config, workdir)
    state, meta = evaluator.restore(manager, step)
  finally:
    for manager in managers:
      manager.close()
  return evaluator, state, meta, step, kind


def _collects_scores(evaluator: '_Evaluator', split: str) -> bool:
  """Whether the split's scores can be kept for the images.

  Only where collecting them (collect_representations) evaluates the same
  rows as without: an audio network's train and val splits are evaluated on
  single patches but extracted on whole-track windows, which would change
  the report.
  """
  if evaluator.config.model.name == 'alignment':
    return False  # No label scores.
  source = evaluator.steps.source
  return source.eval_kind(split, True) == source.eval_kind(split, False)


def label_images(scores: np.ndarray, labels: np.ndarray,
                 label_names: Optional[Sequence[str]], target: str,
                 title: str) -> Dict[str, np.ndarray]:
  """The TensorBoard images of a split's label scores.

  Args:
    scores: float [N, L].
    labels: [N, L] multi-hot, or class ids [N] (softmax).
    label_names: L names, or None (then '0' .. 'L-1').
    target: config.model.target; 'softmax' adds the confusion matrix.
    title: figure title.

  Returns:
    'label_auc' and (softmax) 'confusion_matrix' -> uint8 [1, H, W, 3].
  """
  scores = np.asarray(scores, np.float64)
  names = (list(label_names) if label_names is not None
           else [str(j) for j in range(scores.shape[1])])
  figures = {'label_auc': plots.label_auc_bars(
      names, *plots.per_label_auc(scores, labels), title=title)}
  if target == 'softmax':
    figures['confusion_matrix'] = plots.confusion_matrices(
        [(title, scores, labels)], names)
  return {name: plots.to_rgb(fig)[None] for name, fig in figures.items()}


def _pop_images(evaluator: '_Evaluator', report: Dict[str, Any], split: str,
                kind: str, step: int) -> Dict[str, np.ndarray]:
  """Takes the collected rows out of `report`; process 0 draws them."""
  rows = report.pop('_extract', None)
  if rows is None or jax.process_index() != 0:
    return {}
  return label_images(
      rows['scores'], rows['labels'],
      data_sources.label_names(evaluator.steps.source),
      evaluator.config.model.target,
      f'{evaluator.config.model.name} {split}, {kind} step {step}')


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


def evaluate(config: ml_collections.ConfigDict,
             workdir,
             *,
             checkpoint: CheckpointSpec = None,
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
    metrics.multilabel_report / singlelabel_report keys, loss, step and
    checkpoint (its kind); in follow mode those of the last checkpoint.
  """
  workdir = epath.Path(workdir)
  stage_config.check_workdir(config, workdir)
  eval_dir = workdir_lib.eval_dir(workdir, split)
  if not follow:
    evaluator, state, meta, step, kind = _restore(config, workdir, checkpoint)
    report = evaluator.run(
        state, split,
        collect_representations=_collects_scores(evaluator, split))
    images = _pop_images(evaluator, report, split, kind, int(step))
    report.update(step=int(step), checkpoint=kind,
                  epoch=int(meta['epoch']), best_epoch=int(meta['best_epoch']))
    writer = metric_writers.create_default_writer(
        str(eval_dir), just_logging=jax.process_index() > 0)
    _write_result(eval_dir, writer, report, kind, step, images)
    return report

  evaluator = _Evaluator(config, workdir)
  collect = _collects_scores(evaluator, split)
  writer = metric_writers.create_default_writer(
      str(eval_dir), just_logging=jax.process_index() > 0)

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
        state, meta = evaluator.restore(managers[0], step)
      except (FileNotFoundError, ValueError) as e:
        # Training replaced this checkpoint while we read it; the next poll
        # finds the newer one.
        logging.warning('Checkpoint %d vanished while restoring (%s).', step,
                        e)
        continue
      report = evaluator.run(state, split, collect_representations=collect)
      images = _pop_images(evaluator, report, split, 'latest', int(step))
      report.update(step=int(step), checkpoint='latest',
                    epoch=int(meta['epoch']))
      _write_result(eval_dir, writer, report, 'latest', step, images)
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


def _write_extracted(evaluator: '_Evaluator', name: str, split: str,
                     rows: Dict[str, np.ndarray], step: int,
                     label_names) -> epath.Path:
  path = workdir_lib.representation_path(evaluator.workdir, name, split)
  if jax.process_index() == 0:
    representations.write_representations(
        evaluator.workdir, name, split, ids=rows['ids'],
        album_ids=rows['album_ids'], representation=rows['representation'],
        scores=rows['scores'], labels=rows['labels'],
        label_names=label_names, step=step)
    logging.info('Wrote %d %s %s representations to %s', len(rows['ids']),
                 split, name, path)
  return path


def _embed(evaluator: '_Evaluator', state, method: str,
           inputs: np.ndarray) -> np.ndarray:
  """One alignment tower on every row of `inputs` [N, D] -> [N, E]."""
  mesh = evaluator.mesh
  model = evaluator.model

  def embed(params, x):
    return model.apply({'params': params}, x, method=method)

  fn = jax.jit(embed, out_shardings=sharding.replicated_sharding(mesh))
  batch_size = sharding.per_process_batch_size(
      int(evaluator.config.eval.batch_size), mesh)
  arrays = {'x': np.asarray(inputs, np.float32),
            # Row numbers travel with the rows (-1 on padding), so the
            # replicated outputs can be put back in input order.
            'row': np.arange(len(inputs), dtype=np.int32) + 1}
  rows, outputs = [], []
  for batch in data_sources.array_batches(arrays, batch_size):
    glob = sharding.to_global_batch(batch, mesh)
    out, row = jax.device_get((fn(state.params, glob['x']), glob['row']))
    outputs.append(np.asarray(out))
    rows.append(np.asarray(row) - 1)
  rows, outputs = np.concatenate(rows), np.concatenate(outputs)
  real = rows >= 0
  result = np.zeros((len(inputs), outputs.shape[1]), np.float32)
  result[rows[real]] = outputs[real]
  return result


def _extract_alignment(evaluator: '_Evaluator', state, split: str,
                       step: int) -> Dict[str, epath.Path]:
  """MM_AUDIO and MM_VISUAL: each tower on every row of its own input.

  At test time MM_AUDIO needs only the audio (Sec 6.2), so the rows are
  those of each input file, not the join used for training.
  """
  config = evaluator.config
  paths = {}
  names = registry.alignment_input_names(config)
  for (tower, output_name), input_name in zip(
      registry.ALIGNMENT_OUTPUTS.items(), names):
    data = representations.load_representations(
        config.data.inputs[input_name], input_name, split)
    embedded = _embed(evaluator, state, f'embed_{tower}',
                      data['representation'])
    rows = dict(ids=data['ids'], album_ids=data['album_ids'],
                representation=embedded,
                # No label scores: the alignment space is not a classifier.
                scores=np.zeros((len(embedded), 0), np.float32),
                labels=data['labels'])
    paths[output_name] = _write_extracted(
        evaluator, output_name, split, rows, step,
        data.get(representations.LABEL_NAMES))
  return paths


def _extract_with(evaluator: '_Evaluator', state, split: str,
                  step: int) -> Dict[str, epath.Path]:
  config = evaluator.config
  if config.model.name == 'alignment':
    return _extract_alignment(evaluator, state, split, step)
  report = evaluator.run(state, split, collect_representations=True)
  (name,) = registry.network(config.model).representations(config.model)
  return {name: _write_extracted(
      evaluator, name, split, report['_extract'], step,
      data_sources.label_names(evaluator.steps.source))}


def extract_all(config: ml_collections.ConfigDict,
                workdir,
                *,
                splits: Sequence[str] = representations.SPLITS,
                checkpoint: CheckpointSpec = None
                ) -> Dict[str, Dict[str, epath.Path]]:
  """Writes the representations of several splits (default all three).

  Args:
    config: the run's config.
    workdir: the stage workdir.
    splits: which splits.
    checkpoint: as in evaluate().

  Returns:
    split -> representation name -> path written
    (workdir/representations/<name>/<split>.npz, docs/workdirs.md §1).
  """
  workdir = epath.Path(workdir)
  stage_config.check_workdir(config, workdir)
  evaluator, state, _, step, _ = _restore(config, workdir, checkpoint)
  return {split: _extract_with(evaluator, state, split, int(step))
          for split in splits}


def extract(config: ml_collections.ConfigDict,
            workdir,
            *,
            split: str = 'test',
            checkpoint: CheckpointSpec = None) -> Dict[str, epath.Path]:
  """Writes the per-item representations of a split.

  workdir/representations/<name>/<split>.npz (docs/workdirs.md §1) holds
  ids, album_ids, representation float32 [N, R] (the activations feeding
  the output layer), scores float32 [N, L], labels ([N, L] or [N]),
  label_names and step. Audio networks average their whole-track windows per
  track and, on MuMu, per album; an alignment stage writes mm_audio and
  mm_visual. Only process 0 writes; every process computes all rows.

  Args:
    config: the run's config.
    workdir: the training workdir.
    split: 'train', 'val', 'test' or 'all'.
    checkpoint: as in evaluate().

  Returns:
    representation name -> path written (with split='all', the paths of
    the test split; every split is written).
  """
  if split == 'all':
    return extract_all(config, workdir, checkpoint=checkpoint)['test']
  return extract_all(config, workdir, splits=(split,),
                     checkpoint=checkpoint)[split]


def to_json_line(report: Dict[str, Any]) -> str:
  """One JSON line of a report (the last stdout line of --mode=evaluate)."""
  return json.dumps({k: v for k, v in report.items()
                     if not k.startswith('_')}, sort_keys=True)

"""Running a pipeline config: every stage, then the report.

  runner.run_pipeline(config, 'runs/mumu_cosine')

Stage <s> runs in W/<s>/ (docs/workdirs.md §1): train, then extract its
train/val/test representations. A stage starts once the stages it reads
from are done; independent ones (a MuMu pipeline's audio, text and image
networks, MSD-I's seeds) run at the same time, config.concurrent_stages of
them (scheduler.py; 0: one per core, up to 4), each in a stage process
(stage_processes.py). A complete stage is skipped and an interrupted one
resumes from its latest checkpoint; a stage that another pipeline workdir
of config.reuse_stages_from has completed with the same config string is
copied from there; W/pipeline.json (docs/workdirs.md §3) is rewritten as
each stage starts and ends. Building the config is
mmgenre_jax/pipelines/definition.py; training and evaluation are imported only
when a stage runs.

One pipeline job runs in W at a time: it holds W/training.lock
(workdir_guard.workdir_lock) while it runs, and each stage's training holds
its own W/<stage>/training.lock. A W written by another pipeline config
is refused (check_pipeline_workdir). main.py's other modes on a pipeline
(summary, evaluate, extract) are mmgenre_jax/pipelines/stage_modes.py.
"""

import copy
import datetime
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence

from absl import logging
from etils import epath
import ml_collections

from input_pipeline import layout
from input_pipeline.features import frontends
from mmgenre_jax import errors
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.data import representations
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import registry
from mmgenre_jax.pipelines import definition
from mmgenre_jax.pipelines import scheduler
from mmgenre_jax.pipelines import stage_processes

_rep_path = workdir_lib.representation_path


# -------------------------------------------------------------- workdirs


def missing_representations(stage_dir, outputs: Sequence[str]) -> List[str]:
  """'<name>/<split>' of every representation not extracted yet."""
  return [f'{name}/{split}' for name in outputs
          for split in representations.SPLITS
          if not _rep_path(stage_dir, name, split).exists()]


def _is_trained(stage_dir) -> bool:
  return (workdir_lib.is_training_done(stage_dir) and
          (epath.Path(stage_dir) / workdir_lib.TEST_METRICS_JSON).exists())


def is_complete(stage_dir, outputs: Sequence[str]) -> bool:
  """Training done and every representation of every split extracted."""
  return (_is_trained(stage_dir) and
          not missing_representations(stage_dir, outputs))


def _check_frontend(stage_config: ml_collections.ConfigDict,
                    stage_dir) -> None:
  """A complete stage that reads audio shards was trained on their front
  end: shards prepared again with another one (`mmgenre prepare
  --frontend`; shards from before the record are librosa's) would otherwise
  leave it skipped and reported, and unable to be evaluated on them.

  Raises:
    frontends.FrontEndMismatch: naming the stage, both front ends and the
      fix (a user error).
  """
  if registry.network(stage_config.model).reads_representations:
    return
  if registry.shard_input(stage_config)[0] != 'audio':
    return
  shard_dir = stage_config.data.shard_dir
  manifest = layout.read_manifest(shard_dir)
  if manifest is not None:  # Missing shards are reported where read.
    data_facts.check_frontend(
        stage_dir, frontends.recorded(manifest),
        f'the shards in {shard_dir} (prepared again since it was trained; '
        'a new --workdir trains the pipeline on them)')


def reusable_stage(config: ml_collections.ConfigDict, name: str,
                   config_string: str) -> Optional[epath.Path]:
  """A complete stage `name` of a config.reuse_stages_from workdir, or None.

  It must have been run with the same config string (config file, argument
  and every override, shards and label factors included, as pipeline.json
  records it), so that training it again would repeat the same run.
  """
  for other in filter(None, config.get('reuse_stages_from', '').split(',')):
    record = workdir_lib.read_pipeline(other.strip()) or {}
    for stage in record.get('stages', ()):
      stage_dir = workdir_lib.stage_dir(other.strip(), stage)
      if (stage['name'] == name and stage['config'] == config_string and
          is_complete(stage_dir, config.stages[name].outputs)):
        return stage_dir
  return None


def copy_stage(source: epath.Path, stage_dir: epath.Path) -> None:
  """Copies a complete stage workdir into place (local paths).

  Into a temporary sibling first, renamed at the end: an interrupted copy
  leaves no half stage that would look complete.
  """
  partial = stage_dir.parent / f'.{stage_dir.name}.copying'
  shutil.rmtree(partial, ignore_errors=True)
  shutil.copytree(source, partial,
                  ignore=shutil.ignore_patterns(workdir_lib.LOCK_FILE))
  if stage_dir.exists():  # an unfinished run of this stage
    shutil.rmtree(stage_dir)
  partial.rename(stage_dir)


def label_factors_dir(config: ml_collections.ConfigDict,
                      workdir) -> epath.Path:
  """The label factors of the pipeline's COSINE stages.

  config.data.label_factors when given (`mmgenre factorize` output), else
  W/label_factors, which ensure_label_factors writes before the first stage.
  """
  given = config.data.get('label_factors')
  return epath.Path(given if given else
                    epath.Path(workdir) / workdir_lib.PIPELINE_FACTORS_DIR)


def ensure_label_factors(config: ml_collections.ConfigDict, workdir) -> None:
  """Factorises the shards' train + val albums once into W/label_factors.

  One set of PPMI-SVD factors (paper Sec 5.1, 7.3) per pipeline: the union of
  the albums of every network stage's shards, as `mmgenre factorize` does from
  the release files, so that no COSINE stage regresses targets of its own.
  Skipped without COSINE stages, with config.data.label_factors given, or
  when W/label_factors is complete already (a resumed pipeline).
  """
  if not definition.cosine_stages(config) or config.data.get('label_factors'):
    return
  out_dir = label_factors_dir(config, workdir)
  if workdir_lib.factors_complete(out_dir):
    return
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.train import label_factors
  modalities = []
  for name in config.stage_order:
    stage = config.stages[name]
    if not definition.reads_representations(stage):
      modality, _ = registry.shard_input(stage.config)
      if modality not in modalities:
        modalities.append(modality)
  dims = {int(config.stages[n].config.data.factor_dim)
          for n in definition.cosine_stages(config)}
  shard_dir = (config.data.get('shard_dir') or
               config.stages[config.stage_order[0]].config.data.shard_dir)
  label_factors.factorize_shards(shard_dir, modalities, dims.pop(), out_dir)
  print(f'[{config.name}] label factors of the train + val albums of '
        f'{shard_dir} ({"+".join(modalities)}) -> {out_dir}', flush=True)


def resolve_stage_config(config: ml_collections.ConfigDict, name: str,
                         workdir) -> ml_collections.ConfigDict:
  """A stage's config as it runs: shards and input workdirs filled in.

  The pipeline's wiring only: what the stage's data says (its label count,
  the sizes of the representations it reads) is found when the stage
  starts (data/facts.py), not written into its config.

  Args:
    config: the pipeline config.
    name: the stage.
    workdir: the pipeline workdir W.

  Returns:
    An unlocked copy of config.stages[name].config with data.shard_dir =
    config.data.shard_dir (when set), COSINE stages' data.label_factors =
    label_factors_dir() and data.inputs = {representation:
    W/<input stage>}.
  """
  stage = config.stages[name]
  stage_config = copy.deepcopy(stage.config)
  stage_config.unlock()
  if config.data.get('shard_dir'):
    stage_config.data.shard_dir = config.data.shard_dir
  if name in definition.cosine_stages(config):
    stage_config.data.label_factors = str(label_factors_dir(config, workdir))
  if not definition.reads_representations(stage):
    return stage_config
  workdir = epath.Path(workdir)
  inputs = {rep: str(workdir / source) for rep, source in
            stage.inputs.items()}
  if 'inputs' in stage_config.data:
    del stage_config.data['inputs']
  stage_config.data.inputs = ml_collections.ConfigDict(inputs)
  return stage_config


def check_pipeline_workdir(config: ml_collections.ConfigDict,
                           workdir) -> None:
  """Checks that W is empty or a workdir of this pipeline config.

  Args:
    config: the pipeline config.
    workdir: the pipeline workdir W.

  Raises:
    errors.WorkdirError: W/pipeline.json names another pipeline (name,
      dataset or --config value), or W is a single network's workdir.
  """
  workdir = epath.Path(workdir)
  this = {'name': config.name, 'dataset': config.data.dataset,
          'config': config.config_ref}
  record = workdir_lib.read_pipeline(workdir)
  if record is None:
    saved = workdir_lib.read_json(workdir / workdir_lib.CONFIG_JSON)
    if isinstance(saved, dict):
      model = saved.get('model') or {}
      raise errors.WorkdirError(
          f'{workdir} is the workdir of one network (model '
          f'{model.get("name")}, target {model.get("target")}), not of '
          f'pipeline {config.name} ({config.config_ref}); pick another '
          '--workdir.')
    return
  old = {key: record.get(key) for key in this}
  if old != this:
    raise errors.WorkdirError(
        f'{workdir} holds another pipeline ({old["name"]}, dataset '
        f'{old["dataset"]}, --config={old["config"]}; this config: '
        f'{this["name"]}, dataset {this["dataset"]}, '
        f'--config={this["config"]}); pick another --workdir (or delete '
        f'{workdir} to start over).')


# ------------------------------------------------------ pipeline.json


def _stage_record(config, name: str, stage_config, status: str,
                  seconds: Optional[float], workdir) -> Dict[str, Any]:
  stage = config.stages[name]
  row = definition.describe_stage(stage_config)
  row.update(stage.row.to_dict())
  return {'name': name, 'workdir': str(epath.Path(workdir) / name),
          'config': definition.config_string(stage, stage_config),
          'kind': stage.kind, 'inputs': stage.inputs.to_dict(),
          'outputs': list(stage.outputs), 'status': status,
          'seconds': None if seconds is None else round(seconds, 1),
          'row': row}


def _pipeline_record(config, records: Sequence[Mapping[str, Any]]
                     ) -> Dict[str, Any]:
  record = {'name': config.name, 'config': config.config_ref,
            'dataset': config.data.dataset,
            'final': config.get('final') or config.stage_order[-1],
            'stages': list(records)}
  if config.get('dropped_stages'):
    # Stages of the config the shards cannot feed (definition.for_shards).
    record['dropped_stages'] = dict(config.dropped_stages)
  return record


# ------------------------------------------------------------- running


def _is_local(path: epath.Path) -> bool:
  """A local path on one process (copy_stage's shutil; one writer)."""
  import jax  # pylint: disable=g-import-not-at-top
  return '://' not in str(path) and jax.process_count() == 1


def _is_chief() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() == 0


def run_stage(stage_config: ml_collections.ConfigDict, stage_dir,
              outputs: Sequence[str]) -> None:
  """Trains (or resumes) one stage, then extracts its representations."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.evaluation import extract
  from mmgenre_jax.train import loop as train_loop
  # pylint: enable=g-import-not-at-top
  stage_dir = epath.Path(stage_dir)
  if not _is_trained(stage_dir):
    train_loop.train_and_evaluate(stage_config, stage_dir)
  splits = [split for split in representations.SPLITS
            if any(not _rep_path(stage_dir, name, split).exists()
                   for name in outputs)]
  if splits:
    extract.extract_all(stage_config, stage_dir, splits=splits)
  missing = missing_representations(stage_dir, outputs)
  if missing and _is_chief():
    raise FileNotFoundError(
        f'{stage_dir}: extraction did not write representations {missing} '
        f'(expected {_rep_path(stage_dir, "<name>", "<split>")}).')


def run_pipeline(config: ml_collections.ConfigDict, workdir,
                 *, report: bool = True) -> Dict[str, Any]:
  """Runs the stages of a pipeline config in order (module docstring).

  Args:
    config: a pipeline config (configs/mumu_cosine.py, ...).
    workdir: the pipeline workdir W; stage <s> runs in W/<s>.
    report: write W/report.md and W/results.json at the end.

  Returns:
    The content of W/pipeline.json.

  Raises:
    errors.WorkdirLockedError: another pipeline job runs in W.
    errors.WorkdirError: W holds another pipeline or a single network.
  """
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.data import sources
  from mmgenre_jax.train import workdir_guard
  # pylint: enable=g-import-not-at-top
  definition.validate(config)
  workdir = epath.Path(workdir)
  for name in config.stage_order:
    if not definition.reads_representations(config.stages[name]):
      # Missing shards fail before any stage starts (or W is made).
      sources.open_data(resolve_stage_config(config, name, workdir))
  with workdir_guard.workdir_lock(workdir):
    check_pipeline_workdir(config, workdir)
    return _run_stages(config, workdir, report=report)


def stage_concurrency(config: ml_collections.ConfigDict) -> int:
  """How many stages of the pipeline run at once.

  config.concurrent_stages when set (>= 1), else one per core up to
  scheduler.MAX_CONCURRENCY. Always 1 over several processes: every
  process must run the same stage's collectives at the same time.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    return 1
  asked = int(config.get('concurrent_stages') or 0)
  if asked < 0:
    raise ValueError(f'config.concurrent_stages={asked}: give the stages to '
                     'run at once (>= 1), or 0 for one per core.')
  return asked or scheduler.default_concurrency()


def _run_stages(config: ml_collections.ConfigDict, workdir: epath.Path,
                *, report: bool) -> Dict[str, Any]:
  """run_pipeline's work, under the lock of W.

  Stages whose inputs are done run at once, up to stage_concurrency(), each
  in a process of its own then (scheduler.py, stage_processes.py);
  pipeline.json and the progress lines are written from this thread as
  stages start and end.
  """
  chief = _is_chief()
  if chief:
    workdir.mkdir(parents=True, exist_ok=True)
  ensure_label_factors(config, workdir)
  order = list(config.stage_order)
  stage_configs = {name: resolve_stage_config(config, name, workdir)
                   for name in order}
  prefixes = {name: f'[{config.name} {index + 1}/{len(order)}] {name}'
              for index, name in enumerate(order)}
  records = {}
  running = set()

  def save():
    if not chief:
      return
    listed = [
        records.get(name) or _stage_record(
            config, name, stage_configs[name],
            'running' if name in running else 'pending', None, workdir)
        for name in order]
    workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON,
                           _pipeline_record(config, listed))

  for name in order:
    if is_complete(workdir / name, config.stages[name].outputs):
      _check_frontend(stage_configs[name], workdir / name)
      logging.info('%s: complete in %s, skipped.', prefixes[name],
                   workdir / name)
      print(f'{prefixes[name]}: complete, skipped', flush=True)
      records[name] = _stage_record(config, name, stage_configs[name],
                                    'skipped', None, workdir)
  todo = [name for name in order if name not in records]
  config_strings = {
      name: definition.config_string(config.stages[name], stage_configs[name])
      for name in todo}
  copies = {}
  for name in todo:
    source = reusable_stage(config, name, config_strings[name])
    if source is not None and chief and _is_local(workdir / name):
      copies[name] = source
  started = {}

  def on_start(name: str) -> None:
    running.add(name)
    started[name] = datetime.datetime.now(datetime.timezone.utc)
    save()
    if name in copies:
      print(f'{prefixes[name]}: the same run is complete in {copies[name]}, '
            'copied', flush=True)
    else:
      print(f'{prefixes[name]}: {config.stages[name].kind} '
            f'{config_strings[name]}', flush=True)

  needs = {name: set(config.stages[name].inputs.values()) & set(todo)
           for name in todo}
  # No more stage processes than stages that can run side by side.
  concurrency = min(stage_concurrency(config),
                    scheduler.widest(todo, needs))

  def run_one(name: str) -> None:
    if name in copies:
      copy_stage(copies[name], workdir / name)
    else:
      call(f'{config.name} {name}', run_stage, stage_configs[name],
           str(workdir / name), tuple(config.stages[name].outputs))

  def on_done(name: str, _, seconds: float) -> None:
    running.discard(name)
    records[name] = _stage_record(config, name, stage_configs[name], 'done',
                                  seconds, workdir)
    records[name]['started'] = started[name].isoformat(timespec='seconds')
    if name in copies:
      records[name]['copied_from'] = str(copies[name])
    save()
    metrics = workdir_lib.read_json(
        workdir / name / workdir_lib.TEST_METRICS_JSON) or {}
    shown = {k: round(v, 4) for k, v in metrics.items()
             if k in ('roc_auc', 'macro_f1', 'adiv@1') and
             isinstance(v, (int, float))}
    print(f'{prefixes[name]}: done in {seconds:.0f} s {shown}', flush=True)

  with stage_processes.caller(concurrency) as call:
    scheduler.run(todo, needs, run_one, concurrency=concurrency,
                  on_start=on_start, on_done=on_done)
  save()
  result = workdir_lib.read_pipeline(workdir)
  if report and chief:
    # pylint: disable-next=g-import-not-at-top
    from mmgenre_jax.reporting import report as report_lib
    report_lib.write_report(workdir)
  return result

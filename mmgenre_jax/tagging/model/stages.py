"""One trained network as tagging sees it: a `Stage`, read from disk.

A stage comes from a stage workdir (docs/workdirs.md §1: config.json and
Orbax checkpoints), a pipeline workdir's stage list (pipeline.json, §3) or a
bundle's stage directory (config.json and params.msgpack, `mmgenre export`).
What the network is (its kind, the representations it gives) is asked of the
model registry, the sizes its data gave of its data_facts.json (a workdir
from before that file: its config.json, data/facts.py); nothing here is
written to disk.

  stage = stages.load_stage('runs/mumu_cosine/audio')
  stage.kind, stage.representations          # 'audio', ('audio',)
  found, final = stages.load_pipeline('runs/mumu_cosine')
"""

import dataclasses
import json
import pathlib
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import flax
import ml_collections
import numpy as np

from input_pipeline import layout
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import targets
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.models import registry

# The kinds of stage fed raw inputs: audio files, reviews ('text'), a cover.
INPUT_MODALITIES = registry.INPUT_MODALITIES
# Alignment towers (Sec 3.4): the representation a tower gives -> the tower
# ('audio' or 'visual'), whose method is AlignmentNet.embed_<tower>.
ALIGNMENT_TOWERS = {rep: tower for tower, rep in
                    registry.ALIGNMENT_OUTPUTS.items()}




def read_json(path) -> Any:
  """A JSON file's value; a TaggingError naming the file when unreadable."""
  try:
    return json.loads(pathlib.Path(path).read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise errors.TaggingError(f'{path}: cannot read JSON ({e}).') from e


@dataclasses.dataclass
class Stage:
  """One trained network and what it needs at prediction time.

  Attributes:
    name: the stage name (pipeline.json) or the workdir's name.
    kind: 'audio', 'text', 'image', 'alignment' or 'fusion'
      (registry.Network.kind).
    config: the run's config (config.json).
    facts: what its data gave (data_facts.json): the sizes its network is
      built with.
    variables: {'params': ..., ['batch_stats': ...]} as numpy arrays.
    source: directory the stage was read from (workdir or bundle stage).
    data_dir: directory with manifest.json and the feature files
      (audio_stats.npz, text_vectorizer.json) for modality stages.
    inputs: input name (config.data.inputs) -> stage name (alignment,
      fusion).
    label_factors: C_d float32 [L, d] (COSINE) or None.
    labels: the L label names, or None (alignment).
    thresholds: float64 [L] (NaN: never decided) or None (uncalibrated).
    thresholds_source: where they came from.
  """
  name: str
  kind: str
  config: ml_collections.ConfigDict
  facts: data_facts.DataFacts
  variables: Dict[str, Any]
  source: pathlib.Path
  data_dir: Optional[pathlib.Path] = None
  inputs: Dict[str, str] = dataclasses.field(default_factory=dict)
  label_factors: Optional[np.ndarray] = None
  labels: Optional[List[str]] = None
  thresholds: Optional[np.ndarray] = None
  thresholds_source: Optional[str] = None

  @property
  def network(self) -> registry.Network:
    return registry.network(self.config.model)

  @property
  def target(self) -> Optional[targets.Target]:
    """The output configuration; None for the alignment space (no scores)."""
    return registry.target(self.config.model)

  @property
  def model_config(self) -> ml_collections.ConfigDict:
    """config.model with the sizes its data gave (registry.sized)."""
    return registry.sized(self.config.model, self.facts)

  @property
  def reads_files(self) -> bool:
    """Whether the stage is fed raw inputs (a modality network)."""
    return self.kind in INPUT_MODALITIES

  @property
  def representations(self) -> Tuple[str, ...]:
    """The representations it gives: ('audio',), ('mm_audio', 'mm_visual')..."""
    return tuple(registry.network(self.config.model).representations(
        self.config.model))


def _variables(source: pathlib.Path) -> Dict[str, Any]:
  """params (+ batch_stats): a bundle's params.msgpack, else the checkpoint."""
  params = source / workdir_lib.PARAMS_MSGPACK
  if params.is_file():
    return flax.serialization.msgpack_restore(params.read_bytes())
  # Imported here: a bundle is read without Orbax.
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.train import checkpoints
  try:
    return checkpoints.restore_variables(source)
  except checkpoints.CheckpointError as e:
    raise errors.TaggingError(str(e)) from e


def _stage_data_dir(source: pathlib.Path, config) -> Optional[pathlib.Path]:
  bundled = source / workdir_lib.BUNDLE_DATA_DIR
  if (bundled / layout.MANIFEST_JSON).is_file():
    return bundled
  shard_dir = config.data.get('shard_dir')
  return pathlib.Path(shard_dir) if shard_dir else None


def _labels_of(source: pathlib.Path, data_dir) -> Optional[List[str]]:
  if (source / workdir_lib.LABELS_TSV).is_file():
    return workdir_lib.read_lines(source / workdir_lib.LABELS_TSV)
  if data_dir is not None and (data_dir / layout.MANIFEST_JSON).is_file():
    return list(read_json(data_dir / layout.MANIFEST_JSON)['labels'])
  return None


def _kind(source: pathlib.Path, config) -> str:
  """registry.Network.kind of a taggable network; TaggingError otherwise."""
  name = config.model.get('name')
  taggable = sorted(n for n, net in registry.NETWORKS.items() if net.taggable)
  if name not in taggable:
    raise errors.TaggingError(
        f'{source}: config.model.name={name!r} cannot tag '
        f'files (supported: {taggable}).')
  return registry.network(name).kind


def load_stage(source, name: Optional[str] = None) -> Stage:
  """Reads one stage from a stage workdir or a bundle's stage directory.

  Reads only: a workdir's checkpoint is restored read-only, and thresholds
  are left to the caller (tagging.thresholds.for_stage).

  Args:
    source: the directory holding config.json.
    name: the stage name; default the directory's name.

  Raises:
    errors.TaggingError: naming what is missing.
  """
  source = pathlib.Path(source)
  config_path = source / workdir_lib.CONFIG_JSON
  if not config_path.is_file():
    raise errors.TaggingError(
        f'{source} has no {workdir_lib.CONFIG_JSON}: not a '
        'trained stage workdir (docs/workdirs.md §1) nor a '
        'bundle stage.')
  config = ml_collections.ConfigDict(read_json(config_path))
  kind = _kind(source, config)
  variables = _variables(source)
  data_dir = (_stage_data_dir(source, config) if kind in INPUT_MODALITIES
              else None)
  factors = None
  target = registry.target(config.model)
  if (target is not None and target.uses_label_factors and
      (source / workdir_lib.LABEL_FACTORS_NPY).is_file()):
    factors = workdir_lib.load_label_factors(source).astype(np.float32)
  inputs = {}
  if registry.network(config.model).reads_representations:
    inputs = dict(config.data.get('inputs') or {})
  try:
    facts = data_facts.read(source, config)
  except ValueError as e:
    raise errors.TaggingError(str(e)) from e
  return Stage(name=name or source.name, kind=kind, config=config, facts=facts,
               variables=variables, source=source, data_dir=data_dir,
               inputs=inputs, label_factors=factors,
               labels=_labels_of(source, data_dir))


def load_pipeline(workdir) -> Tuple[List[Stage], str]:
  """The trained stages of a pipeline workdir W, and the final stage's name.

  Stages not trained yet (no config.json) or that cannot be read are skipped
  with a warning.

  Raises:
    errors.TaggingError: no stage could be read.
  """
  workdir = pathlib.Path(workdir)
  spec = read_json(workdir / workdir_lib.PIPELINE_JSON)
  found = []
  for entry in spec.get('stages', []):
    name = entry['name']
    path = pathlib.Path(entry.get('workdir') or name)
    if not path.is_absolute():
      path = workdir / path if (workdir / path).is_dir() else workdir / name
    if not (path / workdir_lib.CONFIG_JSON).is_file():
      logging.warning('Pipeline stage %r (%s) has no %s; skipped (not '
                      'trained yet?).', name, path, workdir_lib.CONFIG_JSON)
      continue
    try:
      stage = load_stage(path, name)
    except errors.TaggingError as e:
      logging.warning('Pipeline stage %r skipped: %s', name, e)
      continue
    if not stage.inputs and isinstance(entry.get('inputs'), dict):
      stage.inputs = dict(entry['inputs'])
    found.append(stage)
  if not found:
    raise errors.TaggingError(f'{workdir}/{workdir_lib.PIPELINE_JSON} lists no '
                       'trained stage; run the pipeline first.')
  return found, spec.get('final') or found[-1].name

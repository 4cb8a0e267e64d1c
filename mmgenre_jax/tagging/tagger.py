"""Genre prediction and embeddings from a trained workdir or an export bundle.

  tagger = Tagger.from_workdir('runs/mumu_cosine')   # pipeline, stage, bundle
  result = tagger.predict(audio=['a.flac', 'b.mp3'], cover='cover.jpg',
                          reviews='A moody record ...', top_k=5)
  result['labels']      # [{'label': 'Jazz', 'score': 0.83}, ...] best first
  result['decisions']   # labels whose score passes its validation threshold
  result['model']       # which network answered
  vectors = tagger.embed(audio=['a.flac'])  # {'audio': [R], 'mm_audio': ...}

The model is a graph of stages (docs/workdirs.md): modality networks (audio
CNN, text MLP, ResNet) read files; an alignment stage maps the audio and
visual representations into the shared space (MM_AUDIO, MM_VISUAL); fusion
stages combine representations. Every stage output that can score labels (a
modality network or a fusion) is a candidate answer; for the inputs given,
`predict` picks (see `_answer`):

  1. the final stage of the pipeline when it needs exactly the modalities
     given;
  2. else a scoring stage needing exactly the modalities given (fusion
     stages first, the one with the most inputs: audio alone with an
     alignment stage is answered by a fusion of audio + MM_AUDIO when the
     pipeline trained one);
  3. else the mean of the per-modality answers (each by rules 1-2 on that
     modality alone), with the decision thresholds averaged likewise.

A modality is never replaced by zeros: a fusion stage runs only on inputs
that were all computed from the given files. A given modality the model has
no network for is ignored and named in the result's `notes`.

Audio (SPEC §2): every whole-track window (input_pipeline.streaming, memory
bounded whatever the length) goes through the network; representations and
scores are averaged per track, then over the tracks of an album (paper
Sec 7.3.1). Inference is deterministic: no dropout, no random crops, jitted
applies on padded batches.
"""

import dataclasses
import functools
import json
import os
import pathlib
import shutil
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import features
from input_pipeline import normalisation
from input_pipeline import streaming
from mmgenre_jax import models
from mmgenre_jax import targets
from mmgenre_jax.models import fusion as fusion_lib
from mmgenre_jax.models import heads
from mmgenre_jax.tagging import thresholds as thresholds_lib

# Files of a workdir (docs/workdirs.md) and of a bundle (`mmgenre export`).
PIPELINE_FILE = 'pipeline.json'
CONFIG_FILE = 'config.json'
BUNDLE_FILE = 'bundle.json'
BUNDLE_FORMAT = 'mmgenre_jax.bundle'
BUNDLE_VERSION = 1
PARAMS_FILE = 'params.msgpack'
# A modality stage's feature metadata inside a bundle: the manifest of the
# prepared shards (labels, image normalisation) and the files it names.
DATA_SUBDIR = 'data'
MANIFEST_FILE = 'manifest.json'
ENRICHMENT_FILE = 'enrichment.tsv'
CHECKPOINT_KINDS = ('best', 'latest')
REPRESENTATIONS_DIR = 'representations'

# config.model.name -> what the stage is. Raw inputs: audio files, reviews
# ('text'), a cover ('image').
STAGE_KINDS = {'audio_cnn': 'audio', 'msdi_audio_cnn': 'audio',
               'text_mlp': 'text', 'resnet': 'image',
               'alignment': 'alignment', 'fusion': 'fusion'}
INPUT_MODALITIES = ('audio', 'text', 'image')
# Alignment towers: the representation each takes (config.data.inputs key)
# and the one it gives (Sec 3.4).
ALIGNMENT_TOWERS = {'mm_audio': ('audio', 'embed_audio'),
                    'mm_visual': ('image', 'embed_visual')}
VISUAL_INPUT_ALIASES = ('image', 'visual')
# Largest batch of audio windows per apply. Batches are padded to one of
# PAD_SIZES, so that only two shapes get compiled per stage (a short track
# has 1-3 windows; a long one fills batches of APPLY_BATCH).
APPLY_BATCH = 32
PAD_SIZES = (8, APPLY_BATCH)

Node = Tuple[str, str]  # (stage name, representation name)


class TaggingError(ValueError):
  """A model or an input cannot be used; the message says why and what to do."""


def _read_json(path) -> Any:
  try:
    return json.loads(pathlib.Path(path).read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise TaggingError(f'{path}: cannot read JSON ({e}).') from e


# ------------------------------------------------------------------ stages


@dataclasses.dataclass
class Stage:
  """One trained network and what it needs at prediction time.

  Attributes:
    name: the stage name (pipeline.json) or the workdir's name.
    kind: 'audio', 'text', 'image', 'alignment' or 'fusion'.
    config: the run's config (config.json).
    variables: {'params': ..., ['batch_stats': ...]} as numpy arrays.
    source: directory the stage was read from (workdir or bundle stage).
    data_dir: directory with manifest.json and the feature files
      (audio_stats.npz, text_vectorizer.json) for modality stages.
    inputs: representation name -> stage name (alignment, fusion).
    label_factors: C_d [L, d] (COSINE) or None.
    labels: the label names, or None (alignment).
    thresholds: float64 [L] (NaN: never decided) or None (uncalibrated).
    thresholds_source: where they came from.
  """
  name: str
  kind: str
  config: ml_collections.ConfigDict
  variables: Dict[str, Any]
  source: pathlib.Path
  data_dir: Optional[pathlib.Path] = None
  inputs: Dict[str, str] = dataclasses.field(default_factory=dict)
  label_factors: Optional[np.ndarray] = None
  labels: Optional[List[str]] = None
  thresholds: Optional[np.ndarray] = None
  thresholds_source: Optional[str] = None

  @property
  def target(self) -> Optional[str]:
    return None if self.kind == 'alignment' else self.config.model.target

  @property
  def representations(self) -> Tuple[str, ...]:
    if self.kind == 'alignment':
      return tuple(ALIGNMENT_TOWERS)
    return (self.kind,)


def _checkpoint_variables(workdir: pathlib.Path) -> Dict[str, Any]:
  """params (+ batch_stats) of the best checkpoint, else the latest."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  for kind in CHECKPOINT_KINDS:
    directory = (workdir / 'checkpoints' / kind).absolute()
    steps = sorted(int(p.name) for p in directory.glob('*')
                   if p.name.isdigit() and (p / 'default').is_dir())
    if not steps:
      continue
    # The item train.py saved with ocp.args.StandardSave: {'state': the
    # TrainState's state dict, 'meta': progress}; restored without a target,
    # so the optimizer needs not be rebuilt.
    restored = ocp.StandardCheckpointer().restore(
        directory / str(steps[-1]) / 'default')
    state = restored['state']
    variables = {'params': jax.device_get(state['params'])}
    if state.get('batch_stats'):
      variables['batch_stats'] = jax.device_get(state['batch_stats'])
    if kind != 'best':
      logging.warning('%s has no best checkpoint; using the latest (step %d).',
                      workdir, steps[-1])
    return variables
  raise TaggingError(f'{workdir}: no checkpoint in checkpoints/best or '
                     'checkpoints/latest; train the stage first '
                     '(python main.py --config=... --workdir=...).')


def _stage_data_dir(source: pathlib.Path, config) -> Optional[pathlib.Path]:
  bundled = source / DATA_SUBDIR
  if (bundled / MANIFEST_FILE).is_file():
    return bundled
  shard_dir = config.data.get('shard_dir')
  return pathlib.Path(shard_dir) if shard_dir else None


def _labels_of(source: pathlib.Path, data_dir) -> Optional[List[str]]:
  if (source / targets.LABELS_FILE).is_file():
    return targets.read_lines(source / targets.LABELS_FILE)
  if data_dir is not None and (data_dir / MANIFEST_FILE).is_file():
    return list(_read_json(data_dir / MANIFEST_FILE)['labels'])
  return None


def load_stage(source, name: Optional[str] = None) -> Stage:
  """Reads one stage from a stage workdir or a bundle's stage directory."""
  source = pathlib.Path(source)
  if not (source / CONFIG_FILE).is_file():
    raise TaggingError(f'{source} has no {CONFIG_FILE}: not a trained stage '
                       'workdir (docs/workdirs.md §1) nor a bundle stage.')
  config = ml_collections.ConfigDict(_read_json(source / CONFIG_FILE))
  model_name = config.model.get('name')
  if model_name not in STAGE_KINDS:
    raise TaggingError(f'{source}: config.model.name={model_name!r} cannot '
                       f'tag files (supported: {sorted(STAGE_KINDS)}).')
  if (source / PARAMS_FILE).is_file():
    variables = flax.serialization.msgpack_restore(
        (source / PARAMS_FILE).read_bytes())
  else:
    variables = _checkpoint_variables(source)
  kind = STAGE_KINDS[model_name]
  data_dir = _stage_data_dir(source, config) if kind in INPUT_MODALITIES else (
      None)
  factors = None
  if kind != 'alignment' and config.model.target == 'cosine' and (
      source / targets.LABEL_FACTORS_FILE).is_file():
    factors = targets.load_label_factors(source).astype(np.float32)
  inputs = {}
  if kind in ('alignment', 'fusion'):
    inputs = dict(config.data.get('inputs') or {})
  return Stage(name=name or source.name, kind=kind, config=config,
               variables=variables, source=source, data_dir=data_dir,
               inputs=inputs, label_factors=factors,
               labels=_labels_of(source, data_dir))


# ------------------------------------------------------------- the model


def _same_dir(a, b) -> bool:
  try:
    return pathlib.Path(a).resolve() == pathlib.Path(b).resolve()
  except OSError:
    return False


@functools.lru_cache(maxsize=None)
def _jitted(model_json: str):
  """Jitted applies of one network definition, shared by every Tagger.

  Keyed by the model config, so loading the same model again (a second
  Tagger, each `mmgenre` call of a test) reuses the compiled code; the
  variables and label factors are arguments, not constants.
  """
  model_config = ml_collections.ConfigDict(json.loads(model_json))
  model = models.create_model(model_config)
  if model_config.name == 'alignment':
    return {rep: jax.jit(functools.partial(model.apply, method=method))
            for rep, (_, method) in ALIGNMENT_TOWERS.items()}
  target = model_config.target

  def scored(variables, factors, *inputs):
    out = model.apply(variables, *inputs, train=False)
    output = out['output'].astype(jnp.float32)
    scores = targets.scores_from_output(output, target, factors)
    return out['representation'].astype(jnp.float32), output, scores

  return jax.jit(scored)


class _Runner:
  """Deterministic jitted applies of one stage (train=False)."""

  def __init__(self, stage: Stage):
    self.stage = stage
    self.variables = jax.tree_util.tree_map(jnp.asarray, stage.variables)
    self.factors = (None if stage.label_factors is None
                    else jnp.asarray(stage.label_factors))
    compiled = _jitted(stage.config.model.to_json())
    if stage.kind == 'alignment':
      self.towers = compiled
    else:
      self._scored = compiled

  def scored(self, *inputs):
    """(representation [B, R], output [B, K], scores [B, L]) of a batch."""
    return self._scored(self.variables, self.factors, *inputs)

  def tower(self, rep: str, x) -> jax.Array:
    """MM_AUDIO or MM_VISUAL embeddings [B, E] of representations x."""
    return self.towers[rep](self.variables, x)

  def head_scores(self, representation: np.ndarray) -> np.ndarray:
    """Scores of representations through the stage's output layer."""
    head = heads.OutputHead(int(self.stage.config.model.num_outputs),
                            self.stage.target)
    output = head.apply({'params': self.stage.variables['params']['head']},
                        jnp.asarray(representation, jnp.float32))
    factors = self.stage.label_factors
    return np.asarray(targets.scores_from_output(output, self.stage.target,
                                                 factors))


@dataclasses.dataclass
class _Value:
  """A computed node: representation [R], and for scoring nodes the output
  [K] and scores [L] (means over windows and tracks for audio)."""
  representation: np.ndarray
  output: Optional[np.ndarray] = None
  scores: Optional[np.ndarray] = None


class Tagger:
  """Predicts genres and embeddings from files; see the module docstring."""

  def __init__(self, stages: Sequence[Stage], final: str, source,
               kind: str):
    self.stages = {s.name: s for s in stages}
    self.order = [s.name for s in stages]
    if final not in self.stages:
      raise TaggingError(f'{source}: the final stage {final!r} was not loaded '
                         f'(stages: {self.order}).')
    self.final = final
    self.source = pathlib.Path(source)
    self.kind = kind  # 'pipeline', 'stage' or 'bundle'
    self._resolve_inputs()
    self._inherit_label_data()
    self.labels = self.stages[final].labels
    if self.labels is None:
      raise TaggingError(f'{source}: no label names for the final stage '
                         f'{final!r} (labels.tsv or its shards manifest).')
    self._runners: Dict[str, _Runner] = {}
    self._features: Dict[str, Dict[str, Any]] = {}
    for stage in stages:
      if stage.kind != 'alignment' and stage.thresholds is None:
        self._load_thresholds(stage)

  # ----------------------------------------------------------- loading

  @classmethod
  def from_workdir(cls, workdir) -> 'Tagger':
    """Loads a pipeline workdir, a single stage workdir or an export bundle.

    Args:
      workdir: a directory with pipeline.json (docs/workdirs.md §3),
        config.json + checkpoints (a stage, §1) or bundle.json (`mmgenre
        export`).

    Raises:
      TaggingError: naming what is missing.
    """
    workdir = pathlib.Path(workdir)
    if not workdir.is_dir():
      raise TaggingError(f'--workdir {workdir} is not a directory.')
    if (workdir / BUNDLE_FILE).is_file():
      return cls._from_bundle(workdir)
    if (workdir / PIPELINE_FILE).is_file():
      return cls._from_pipeline(workdir)
    if (workdir / CONFIG_FILE).is_file():
      stage = load_stage(workdir)
      return cls([stage], stage.name, workdir, 'stage')
    raise TaggingError(
        f'{workdir} has neither {PIPELINE_FILE} (a pipeline workdir), '
        f'{CONFIG_FILE} (a stage workdir) nor {BUNDLE_FILE} (an export); '
        'pass the --workdir of a finished training run.')

  @classmethod
  def _from_pipeline(cls, workdir: pathlib.Path) -> 'Tagger':
    spec = _read_json(workdir / PIPELINE_FILE)
    stages = []
    for entry in spec.get('stages', []):
      name = entry['name']
      path = pathlib.Path(entry.get('workdir') or name)
      if not path.is_absolute():
        path = workdir / path if (workdir / path).is_dir() else workdir / name
      if not (path / CONFIG_FILE).is_file():
        logging.warning('Pipeline stage %r (%s) has no %s; skipped (not '
                        'trained yet?).', name, path, CONFIG_FILE)
        continue
      try:
        stage = load_stage(path, name)
      except TaggingError as e:
        logging.warning('Pipeline stage %r skipped: %s', name, e)
        continue
      if not stage.inputs and isinstance(entry.get('inputs'), dict):
        stage.inputs = dict(entry['inputs'])
      stages.append(stage)
    if not stages:
      raise TaggingError(f'{workdir}/{PIPELINE_FILE} lists no trained stage; '
                         'run the pipeline first.')
    final = spec.get('final') or stages[-1].name
    return cls(stages, final, workdir, 'pipeline')

  @classmethod
  def _from_bundle(cls, bundle: pathlib.Path) -> 'Tagger':
    spec = _read_json(bundle / BUNDLE_FILE)
    if spec.get('format') != BUNDLE_FORMAT:
      raise TaggingError(f'{bundle}/{BUNDLE_FILE} is not a model bundle (no '
                         f'"format": "{BUNDLE_FORMAT}"); re-export it.')
    stages = []
    for entry in spec['stages']:
      stage = load_stage(bundle / entry['dir'], entry['name'])
      stage.inputs = dict(entry.get('inputs') or {})
      stages.append(stage)
    return cls(stages, spec['final'], bundle, 'bundle')

  def _resolve_inputs(self) -> None:
    """Maps config.data.inputs paths to loaded stage names."""
    for stage in self.stages.values():
      resolved = {}
      for rep, ref in stage.inputs.items():
        ref = str(ref)
        match = ref if ref in self.stages else None
        for other in self.stages.values():
          if match is None and (_same_dir(ref, other.source) or _same_dir(
              self.source / ref, other.source)):
            match = other.name
        if match is None:
          base = pathlib.PurePath(ref).name
          match = base if base in self.stages else None
        if match is None:
          logging.warning('Stage %r: input %r (%s) is not a loaded stage; '
                          'the stage cannot run.', stage.name, rep, ref)
          continue
        resolved[rep] = match
      stage.inputs = resolved

  def _inherit_label_data(self) -> None:
    """Label names / factors of fusion stages from their inputs if absent."""
    for name in self.order:
      stage = self.stages[name]
      for parent in stage.inputs.values():
        src = self.stages[parent]
        if stage.labels is None:
          stage.labels = src.labels
        if (stage.label_factors is None and stage.target == 'cosine' and
            src.label_factors is not None):
          stage.label_factors = src.label_factors

  def runner(self, name: str) -> _Runner:
    if name not in self._runners:
      self._runners[name] = _Runner(self.stages[name])
    return self._runners[name]

  # -------------------------------------------------------- thresholds

  def _load_thresholds(self, stage: Stage) -> None:
    """thresholds.json of the stage, else calibrated from val.npz."""
    path = stage.source / thresholds_lib.THRESHOLDS_FILE
    if path.is_file():
      stage.thresholds = thresholds_lib.read(path, stage.labels)
      stage.thresholds_source = os.fspath(path)
      return
    rep_dir = stage.source / REPRESENTATIONS_DIR
    for candidate in (rep_dir / stage.representations[0] / 'val.npz',
                      rep_dir / 'val.npz'):
      if candidate.is_file():
        break
    else:
      logging.info('%s: no thresholds.json and no validation representations '
                   '(%s); decisions are not available (run main.py '
                   '--mode=extract --split=val).', stage.source, rep_dir)
      return
    with np.load(candidate, allow_pickle=False) as data:
      labels = data['labels']
      if 'scores' in data:
        scores = data['scores']
      else:
        # An extract without scores: the stage's output layer gives them.
        scores = self.runner(stage.name).head_scores(data['representation'])
    values, f1 = thresholds_lib.f1_optimal(scores, labels)
    stage.thresholds = values
    stage.thresholds_source = os.fspath(candidate)
    try:
      thresholds_lib.write(path, values, stage.labels or [],
                           source=os.fspath(candidate), val_f1=f1)
    except OSError as e:
      logging.warning('Cannot cache the thresholds in %s (%s).', path, e)

  # -------------------------------------------------------------- graph

  def _input_node(self, stage: Stage, rep: str) -> Optional[Node]:
    """The node feeding representation `rep` into `stage`."""
    keys = (rep,) if rep != 'image' else VISUAL_INPUT_ALIASES
    for key in keys:
      if key in stage.inputs:
        parent = self.stages[stage.inputs[key]]
        produced = rep if rep in parent.representations else (
            parent.representations[0])
        return (parent.name, produced)
    return None

  def _parents(self, node: Node) -> Optional[List[Node]]:
    """The nodes a node is computed from; None when it cannot run."""
    stage = self.stages[node[0]]
    if stage.kind in INPUT_MODALITIES:
      return []
    if stage.kind == 'alignment':
      wanted = [ALIGNMENT_TOWERS[node[1]][0]]
    else:
      wanted = list(_fusion_names(stage))
    parents = [self._input_node(stage, rep) for rep in wanted]
    return None if any(p is None for p in parents) else parents

  def needs(self, node: Node) -> Optional[frozenset]:
    """The raw modalities a node is computed from (None: cannot run)."""
    stage = self.stages[node[0]]
    if stage.kind in INPUT_MODALITIES:
      return frozenset([stage.kind])
    parents = self._parents(node)
    if parents is None:
      return None
    needed = [self.needs(p) for p in parents]
    return None if any(n is None for n in needed) else frozenset().union(
        *needed)

  def nodes(self) -> List[Node]:
    return [(name, rep) for name in self.order
            for rep in self.stages[name].representations]

  def _scoring_nodes(self, available: frozenset) -> List[Node]:
    return [n for n in self.nodes()
            if self.stages[n[0]].kind != 'alignment' and
            self.needs(n) is not None and self.needs(n) == available]

  def _answer(self, available: frozenset) -> List[Node]:
    """The node(s) whose scores answer for the given modalities."""
    final_nodes = [(self.final, r) for r in
                   self.stages[self.final].representations]
    exact = self._scoring_nodes(available)
    for node in final_nodes:
      if node in exact:
        return [node]
    if exact:
      def rank(node):
        stage = self.stages[node[0]]
        inputs = len(self._parents(node) or [])
        return (stage.kind == 'fusion', inputs, self.order.index(node[0]))
      return [max(exact, key=rank)]
    if len(available) > 1:
      answers = []
      for modality in sorted(available):
        answers.extend(self._answer(frozenset([modality])))
      return answers
    return []

  def modalities(self) -> List[str]:
    """The raw modalities this model can read (audio, text, image)."""
    return [m for m in INPUT_MODALITIES
            if any(s.kind == m for s in self.stages.values())]

  # ----------------------------------------------------------- features

  def _data(self, stage: Stage) -> Dict[str, Any]:
    """Feature metadata of a modality stage (cached)."""
    if stage.name in self._features:
      return self._features[stage.name]
    if stage.data_dir is None or not (stage.data_dir / MANIFEST_FILE).is_file():
      raise TaggingError(
          f'Stage {stage.name!r} ({stage.source}): its prepared shards '
          f'({stage.data_dir}) are gone and it is not a bundle; export the '
          'model while the shards exist (mmgenre export).')
    manifest = _read_json(stage.data_dir / MANIFEST_FILE)
    data: Dict[str, Any] = {'manifest': manifest}
    if stage.kind == 'audio':
      data['mean'], data['std'] = normalisation.read_audio_stats(
          stage.data_dir / manifest['audio_stats'],
          (features.PATCH_FRAMES, features.N_BINS), error=TaggingError)
    elif stage.kind == 'text':
      name = manifest.get('text_vectorizer')
      if not name:
        raise TaggingError(f'{stage.data_dir}/{MANIFEST_FILE} names no tf-idf '
                           'vectorizer; prepare the shards with texts.')
      data['vectorizer'] = features.load_vectorizer(stage.data_dir / name)
      enrichment = _enrichment_path(stage.data_dir, manifest)
      data['enrichment'] = (features.read_enrichment(enrichment)
                            if enrichment else None)
    else:
      data['image_mean'], data['image_std'] = normalisation.image_normalisation(manifest)
      data['image_size'] = int(stage.config.model.get('image_size') or
                               manifest['image_size'])
    self._features[stage.name] = data
    return data

  def _apply_batches(self, stage: Stage, batches: Iterable[Tuple[int,
                                                                 np.ndarray]],
                     count: int) -> List[_Value]:
    """Runs `stage` on (item index, inputs [k, ...]) chunks; per-item means.

    Chunks are packed into batches of at most APPLY_BATCH rows, padded to a
    size of PAD_SIZES; the means are over every row of an item, in float64.
    """
    runner = self.runner(stage.name)
    sums: List[Optional[List[np.ndarray]]] = [None] * count
    rows = [0] * count
    pending: List[Tuple[int, np.ndarray]] = []
    pending_rows = 0

    def flush():
      nonlocal pending, pending_rows
      if not pending:
        return
      x = np.concatenate([p[1] for p in pending])
      size = next(s for s in PAD_SIZES if s >= len(x))
      padded = np.zeros((size,) + x.shape[1:], np.float32)
      padded[:len(x)] = x
      outs = [np.asarray(o, np.float64)[:len(x)] for o in jax.device_get(
          runner.scored(padded))]
      start = 0
      for index, chunk in pending:
        part = [o[start:start + len(chunk)].sum(0) for o in outs]
        sums[index] = part if sums[index] is None else [
            a + b for a, b in zip(sums[index], part)]
        rows[index] += len(chunk)
        start += len(chunk)
      pending, pending_rows = [], 0

    for index, chunk in batches:
      for lo in range(0, len(chunk), APPLY_BATCH):
        piece = chunk[lo:lo + APPLY_BATCH]
        if pending_rows + len(piece) > APPLY_BATCH:
          flush()
        pending.append((index, piece))
        pending_rows += len(piece)
    flush()
    return [_Value(*[(s / n).astype(np.float32) for s in total])
            for total, n in zip(sums, rows)]

  def _audio_value(self, stage: Stage, paths: Sequence[str]) -> _Value:
    """Album value: window means per track, then the mean over tracks."""
    data = self._data(stage)
    mean, std = data['mean'], data['std']
    drop = float(stage.config.eval.get('track_trim', features.WINDOW_DROP))
    overlap = float(stage.config.eval.get('window_overlap',
                                          features.WINDOW_OVERLAP))

    def chunks():
      for index, path in enumerate(paths):
        for windows in streaming.stream_windows(path, drop=drop,
                                                overlap=overlap):
          yield index, ((windows - mean) / std)[..., None]

    tracks = self._apply_batches(stage, chunks(), len(paths))
    return _Value(*[np.mean([getattr(t, f) for t in tracks], axis=0)
                    for f in ('representation', 'output', 'scores')])

  def _text_value(self, stage: Stage, reviews: str) -> _Value:
    data = self._data(stage)
    text = features.aggregate_reviews([reviews])
    if not text.strip():
      raise TaggingError('the review text is empty.')
    if data['enrichment']:
      text = features.enrich(text, data['enrichment'])
    x = data['vectorizer'].transform([text]).toarray().astype(np.float32)
    return self._apply_batches(stage, [(0, x)], 1)[0]

  def _image_value(self, stage: Stage, cover) -> _Value:
    data = self._data(stage)
    image = features.load_image(cover, size=data['image_size'])
    x = ((image.astype(np.float32) / 255.0 - data['image_mean']) /
         data['image_std'])[None].astype(np.float32)
    return self._apply_batches(stage, [(0, x)], 1)[0]

  def _compute(self, node: Node, raw: Mapping[str, Any],
               cache: Dict[Node, _Value]) -> _Value:
    if node in cache:
      return cache[node]
    stage = self.stages[node[0]]
    if stage.kind == 'audio':
      value = self._audio_value(stage, raw['audio'])
    elif stage.kind == 'text':
      value = self._text_value(stage, raw['text'])
    elif stage.kind == 'image':
      value = self._image_value(stage, raw['image'])
    elif stage.kind == 'alignment':
      (parent,) = self._parents(node)
      x = self._compute(parent, raw, cache).representation[None]
      runner = self.runner(stage.name)
      value = _Value(np.asarray(runner.tower(node[1], x))[0])
    else:
      parents = self._parents(node)
      names = _fusion_names(stage)
      inputs = {name: self._compute(p, raw, cache).representation[None]
                for name, p in zip(names, parents)}
      runner = self.runner(stage.name)
      rep, out, scores = jax.device_get(runner.scored(inputs))
      value = _Value(np.asarray(rep[0]), np.asarray(out[0]),
                     np.asarray(scores[0]))
    cache[node] = value
    return value

  # ---------------------------------------------------------------- API

  def _raw(self, audio, cover, reviews):
    """Given inputs -> ({modality: input}, notes about ignored ones)."""
    if isinstance(audio, (str, os.PathLike)):
      audio = [audio]
    raw = {}
    if audio:
      raw['audio'] = [os.fspath(a) for a in audio]
    if cover is not None:
      raw['image'] = os.fspath(cover)
    if reviews is not None:
      raw['text'] = reviews
    if not raw:
      raise TaggingError('nothing to tag: give audio, a cover or reviews.')
    known = self.modalities()
    notes = [f'{_INPUT_NAMES[m]} ignored: the model has no {m} network'
             for m in raw if m not in known]
    raw = {m: v for m, v in raw.items() if m in known}
    if not raw:
      raise TaggingError(f'this model reads only {known}; '
                         f'{"; ".join(notes)}.')
    return raw, notes

  def _describe(self, nodes: Sequence[Node]) -> str:
    parts = []
    for name, rep in nodes:
      stage = self.stages[name]
      if stage.kind == 'fusion':
        parts.append(f'fusion of {"+".join(_fusion_names(stage))} '
                     f'(stage {name})')
      else:
        parts.append(f'{rep} network (stage {name})')
    return parts[0] if len(parts) == 1 else (
        'mean of ' + ', '.join(parts) + ' (no fusion stage for this subset)')

  def scores(self, audio=None, cover=None, reviews=None):
    """Raw per-label scores and how they were obtained.

    Returns:
      (scores float32 [L], thresholds float64 [L] or None, model description,
      notes).
    """
    raw, notes = self._raw(audio, cover, reviews)
    answer = self._answer(frozenset(raw))
    if not answer:
      raise TaggingError(f'no stage of this model can score '
                         f'{sorted(raw)} (stages: {self.order}).')
    cache: Dict[Node, _Value] = {}
    values = [self._compute(n, raw, cache).scores for n in answer]
    scores = np.mean(values, axis=0).astype(np.float32)
    limits = [self.stages[n[0]].thresholds for n in answer]
    thresholds = (None if any(t is None for t in limits)
                  else np.mean(limits, axis=0))
    return scores, thresholds, self._describe(answer), notes

  def predict(self, audio=None, cover=None, reviews: Optional[str] = None, *,
              top_k: Optional[int] = None) -> Dict[str, Any]:
    """Genres of one item (a track, or an album with cover and reviews).

    Args:
      audio: an audio file or a list of them (the tracks of one album, whose
        outputs are averaged).
      cover: an image file.
      reviews: the review text itself (not a path).
      top_k: labels returned; None for all.

    Returns:
      {'labels': [{'label', 'score'}] best first, 'decisions': [label, ...]
       (score >= its F1-optimal validation threshold, best first; None when
       the model has no thresholds), 'model': which network answered,
       'notes': [...], 'scores': float32 [L] (all labels, label order)}.

    Raises:
      TaggingError, features.FeatureError: naming the input that failed.
    """
    scores, limits, model, notes = self.scores(audio, cover, reviews)
    order = np.argsort(-scores, kind='stable')
    if top_k is not None:
      order = order[:max(0, int(top_k))]
    decisions = None
    if limits is not None:
      chosen = thresholds_lib.decide(scores, limits)
      decisions = [self.labels[j] for j in np.argsort(-scores, kind='stable')
                   if chosen[j]]
    return {'labels': [{'label': self.labels[j], 'score': float(scores[j])}
                       for j in order],
            'decisions': decisions, 'model': model, 'notes': notes,
            'scores': scores}

  def embed(self, audio=None, cover=None, reviews: Optional[str] = None
            ) -> Dict[str, np.ndarray]:
    """Every representation computable from the given inputs.

    Returns:
      {name: float32 [D]}: 'audio', 'text', 'image' (the modality networks'
      representations), 'mm_audio', 'mm_visual' (alignment space),
      'fusion' (the answering fusion's input), and for COSINE networks
      '<name>_output', the unit vector in the label-factor space shared by
      all modalities. With several stages of one kind, the first in pipeline
      order that feeds the final stage wins.
    """
    raw, _ = self._raw(audio, cover, reviews)
    available = frozenset(raw)
    cache: Dict[Node, _Value] = {}
    result: Dict[str, np.ndarray] = {}
    for node in self._preferred_nodes():
      needed = self.needs(node)
      if needed is None or not needed <= available:
        continue
      rep = node[1]
      if rep == 'fusion' and node[0] != self.final:
        # Fusions of other subsets have their own sizes and names.
        rep = f'fusion_{node[0]}'
      if rep in result:
        continue
      value = self._compute(node, raw, cache)
      result[rep] = value.representation.astype(np.float32)
      if value.output is not None and self.stages[node[0]].target == 'cosine':
        result[f'{rep}_output'] = value.output.astype(np.float32)
    return result

  def _preferred_nodes(self) -> List[Node]:
    """Nodes, those the final stage depends on first."""
    feeding, stack = [], [(self.final, r) for r in
                          self.stages[self.final].representations]
    while stack:
      node = stack.pop()
      if node not in feeding:
        feeding.append(node)
        stack.extend(self._parents(node) or [])
    return feeding + [n for n in self.nodes() if n not in feeding]

  # ------------------------------------------------------------- export

  def export(self, out) -> pathlib.Path:
    """Writes a self-contained bundle directory (see export.py)."""
    out = pathlib.Path(out)
    if out.exists() and any(out.iterdir()):
      if not (out / BUNDLE_FILE).is_file():
        raise TaggingError(f'--out {out} exists and is not a bundle; give a '
                           'new or empty directory.')
      shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in self.order:
      stage = self.stages[name]
      directory = out / 'stages' / name
      directory.mkdir(parents=True)
      (directory / CONFIG_FILE).write_text(stage.config.to_json(indent=2),
                                           encoding='utf-8')
      (directory / PARAMS_FILE).write_bytes(
          flax.serialization.msgpack_serialize(
              jax.tree_util.tree_map(np.asarray, stage.variables)))
      if stage.labels is not None:
        (directory / targets.LABELS_FILE).write_text(
            ''.join(f'{label}\n' for label in stage.labels), encoding='utf-8')
      if stage.label_factors is not None:
        np.save(directory / targets.LABEL_FACTORS_FILE,
                stage.label_factors.astype(np.float32))
      if stage.thresholds is not None:
        thresholds_lib.write(directory / thresholds_lib.THRESHOLDS_FILE,
                             stage.thresholds, stage.labels,
                             source=stage.thresholds_source or '')
      if stage.kind in INPUT_MODALITIES:
        self._export_data(stage, directory / DATA_SUBDIR)
      entries.append({'name': name, 'dir': f'stages/{name}',
                      'kind': stage.kind, 'inputs': stage.inputs})
    payload = {'format': BUNDLE_FORMAT, 'version': BUNDLE_VERSION,
               'final': self.final, 'source': os.fspath(self.source),
               'labels': self.labels, 'stages': entries}
    (out / BUNDLE_FILE).write_text(json.dumps(payload, indent=2) + '\n',
                                   encoding='utf-8')
    return out

  def _export_data(self, stage: Stage, out: pathlib.Path) -> None:
    """Copies the manifest and the feature files one modality stage needs."""
    data = self._data(stage)
    manifest = dict(data['manifest'])
    out.mkdir(parents=True)
    if stage.kind == 'audio':
      shutil.copyfile(stage.data_dir / manifest['audio_stats'],
                      out / manifest['audio_stats'])
    if stage.kind == 'text':
      shutil.copyfile(stage.data_dir / manifest['text_vectorizer'],
                      out / manifest['text_vectorizer'])
      enrichment = _enrichment_path(stage.data_dir, manifest)
      if enrichment:
        shutil.copyfile(enrichment, out / ENRICHMENT_FILE)
        manifest['bundled_enrichment'] = ENRICHMENT_FILE
    # The shard lists point at files that are not copied; readers of a
    # bundle use only the feature metadata.
    manifest['bundle'] = True
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + '\n',
                                     encoding='utf-8')


_INPUT_NAMES = {'audio': 'audio', 'text': 'reviews', 'image': 'cover'}


def _fusion_names(stage: Stage) -> Tuple[str, ...]:
  """The fused representations, in concatenation order."""
  return fusion_lib.ordered_modalities(stage.config.model.modalities)


def _enrichment_path(data_dir: pathlib.Path, manifest) -> Optional[str]:
  """The entity dictionary prepare enriched texts with, if any."""
  if manifest.get('bundled_enrichment'):
    return os.fspath(data_dir / manifest['bundled_enrichment'])
  path = (manifest.get('args') or {}).get('enrichment')
  if not path:
    return None
  if not os.path.isfile(path):
    raise TaggingError(
        f'{data_dir}/{MANIFEST_FILE}: the texts were enriched with {path}, '
        'which is gone; restore it (predictions need the same enrichment).')
  return path

"""Genre prediction and embeddings from a trained workdir or an export bundle.

  tagger = Tagger.from_workdir('runs/mumu_cosine')   # pipeline, stage, bundle
  result = tagger.predict(audio=['a.flac', 'b.mp3'], cover='cover.jpg',
                          reviews='A moody record ...', top_k=5)
  result['labels']      # [{'label': 'Jazz', 'score': 0.83}, ...] best first
  result['decisions']   # labels whose score passes its validation threshold
  result['model']       # which network answered
  result['duration_s'], result['warnings']   # what decoding the files saw
  vectors = tagger.embed(audio=['a.flac'])  # {'audio': [R], 'mm_audio': ...}
  tagger.explain('cover.jpg', top_k=3)
  # [{'label', 'score', 'heatmap': float32 [C, C] in [0, 1]}] best first
  tuned = Tagger.from_workdir('runs/mumu_cosine', head='moods_head')
  tuned.predict(audio=['a.flac'])   # the head's labels (mmgenre finetune)
  tagger.predict_many([{'audio': ['a.flac']}, {'cover': 'c.jpg'}])
  # [result or the input's error, ...]: the audio of all batched together

The model is a graph of stages (docs/workdirs.md): modality networks (audio
CNN, text MLP, ResNet) read files; an alignment stage maps the audio and
visual representations into the shared space (MM_AUDIO, MM_VISUAL); fusion
stages combine representations. Which stage answers for the inputs given is
decided in graph.py; a modality is never replaced by zeros. A given modality
the model has no network for is ignored and named in the result's `notes`,
with how the audio was brought to the network's format (mono-mixed,
resampled: normal processing, not a warning; inputs.audio_notes).

Audio (docs/fidelity.md): every whole-track window (inputs.py, memory bounded
whatever the length; tracks decoded whole, predict_many's `decoded`: on the
JAX device in batches) goes through the network; representations and scores
are averaged per track, then over the tracks of an album (paper Sec 7.3.1).
What reading the files observed (inputs.InputReport: each track's decoded
length, channels, rate, clipping, NaN, silence; a small cover; reviews
without a known word) comes back as `duration_s`, `warnings` and `notes`;
an empty review text given with other inputs is ignored with a warning.
Inference is deterministic: no dropout, no random crops, jitted applies on
padded batches (runners.py). `explain`: class activation maps of the cover
network's top labels (explain.py). Loading reads only: the decision
thresholds are computed in memory (thresholds.for_stage); `export` writes
them into a bundle. The package's modules: mmgenre_jax/tagging/__init__.py.
"""

import dataclasses
import os
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import numpy as np

from mmgenre_jax import errors
from mmgenre_jax.core import hierarchy
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging.model import bundle as bundle_lib
from mmgenre_jax.tagging import explain as explain_lib
from mmgenre_jax.tagging.model import graph as graph_lib
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging.model import runners
from mmgenre_jax.tagging.model import stages as stages_lib
from mmgenre_jax.tagging.model import taxonomy as taxonomy_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

# The public names of the tagging API, whose homes are the modules above.
TaggingError = errors.TaggingError
Stage = stages_lib.Stage
load_stage = stages_lib.load_stage
INPUT_MODALITIES = stages_lib.INPUT_MODALITIES
Node = graph_lib.Node
# What a bad input raises (inputs.py); anything else is a bug.
INPUT_ERRORS = inputs_lib.INPUT_ERRORS
# predict(level=...): every label, or the taxonomy's top-level genres only.
LEVELS = ('all', 'top')


@dataclasses.dataclass
class _Prepared:
  """One input on its way through the graph (Tagger._prepare)."""
  raw: Dict[str, Any]  # modality -> its input (inputs.given_inputs)
  notes: List[str]  # about the inputs ignored
  report: inputs_lib.InputReport  # filled as the inputs are read
  # Node -> its Value, or the error reading its input raised.
  cache: Dict[Node, Any] = dataclasses.field(default_factory=dict)


def _one(result):
  """A *_many result: the value, or its input error raised."""
  if isinstance(result, Exception):
    raise result
  return result


class Tagger:
  """Predicts genres and embeddings from files; see the module docstring.

  Attributes:
    stages: stage name -> Stage.
    order: the stage names in pipeline order.
    final: the final stage's name.
    source: the directory the model was read from.
    kind: 'pipeline', 'stage' or 'bundle'.
    labels: the labels `predict` answers with: the head's when one is
      attached, else the final stage's.
    graph: the stages' links and answering rules (graph.StageGraph).
    taxonomy: label -> parent (None at the top) over `labels`, or None
      when unknown; taxonomy_source: the file it was read from
      (taxonomy.py; the head's own with a head).
    parents: int [L], each label's nearest ancestor among `labels` (-1: a
      top-level genre), or None without a taxonomy.
    head: the finetuned head (head.py) predictions come from, or None.
  """

  def __init__(self, stages: Sequence[Stage], final: str, source,
               kind: str, taxonomy: Optional[Mapping[str, Optional[str]]] = None,
               taxonomy_source: Optional[str] = None,
               head: Optional[head_lib.Head] = None):
    self.graph = graph_lib.StageGraph(stages, final, source)
    self.stages = self.graph.stages
    self.order = self.graph.order
    self.final = self.graph.final
    self.source = self.graph.source
    self.kind = kind
    self.labels = self.stages[final].labels
    if self.labels is None:
      raise errors.TaggingError(f'{source}: no label names for the final stage '
                         f'{final!r} ({workdir_lib.LABELS_TSV} or its shards '
                         'manifest).')
    self._runners: Dict[str, runners.Runner] = {}
    self._features: Dict[str, inputs_lib.FeatureData] = {}
    # The model's own taxonomy, which an export keeps beside its stages.
    self._model_taxonomy = taxonomy
    self.head = head
    if head is not None:
      head_lib.check_model(head, head_lib.model_identity(self), source)
      self.labels = list(head.labels)
      taxonomy, taxonomy_source = head.taxonomy, head.taxonomy_source
    self.taxonomy = None if taxonomy is None else dict(taxonomy)
    self.taxonomy_source = taxonomy_source
    self.parents = (None if taxonomy is None else
                    hierarchy.parent_indices(self.labels, taxonomy))
    for stage in stages:
      if stage.target is not None and stage.thresholds is None:
        stage.thresholds, stage.thresholds_source = thresholds_lib.for_stage(
            stage, self._head_scores(stage.name))

  @classmethod
  def from_workdir(cls, workdir, taxonomy=None, head=None) -> 'Tagger':
    """Loads a pipeline workdir, a single stage workdir or an export bundle.

    Reads only: nothing is written into `workdir`.

    Args:
      workdir: a directory with pipeline.json (docs/workdirs.md §3),
        config.json + checkpoints (a stage, §1) or bundle.json (`mmgenre
        export`).
      taxonomy: a label<TAB>parent TSV that decisions follow; default: the
        bundle's, else the one beside the shards' corpus (taxonomy.py).
        With a head it is the taxonomy of the head's labels (default: the
        head's own).
      head: a `mmgenre finetune` --out directory to answer with (head.py);
        default: the bundle's head, if it has one; False: none.

    Raises:
      errors.TaggingError: naming what is missing.
    """
    # A URL (gs://...) is read from a local copy made once per process.
    workdir = pathlib.Path(remote.local_model(os.fspath(workdir)))
    taxonomy, head = remote.local_model(taxonomy), (
        remote.local_model(head) if isinstance(head, str) else head)
    if not workdir.is_dir():
      raise errors.TaggingError(f'--workdir {workdir} is not a directory.')
    if bundle_lib.is_bundle(workdir):
      found, final = bundle_lib.read(workdir)
      kind = 'bundle'
    elif (workdir / workdir_lib.PIPELINE_JSON).is_file():
      found, final = stages_lib.load_pipeline(workdir)
      kind = 'pipeline'
    elif (workdir / workdir_lib.CONFIG_JSON).is_file():
      found = [load_stage(workdir)]
      final, kind = found[0].name, 'stage'
    else:
      raise errors.TaggingError(
        f'{workdir} has neither {workdir_lib.PIPELINE_JSON} (a pipeline '
        f'workdir), {workdir_lib.CONFIG_JSON} (a stage workdir) nor '
        f'{workdir_lib.BUNDLE_JSON} (an export); pass the --workdir of a '
        'finished training run.')
    if head is None and kind == 'bundle':
      head = bundle_lib.head_dir(workdir)
    tuned = head_lib.load(head) if head else None
    if tuned is not None and taxonomy is not None:
      tuned.taxonomy = taxonomy_lib.read(taxonomy)
      tuned.taxonomy_source = os.fspath(taxonomy)
    tree, tree_source = taxonomy_lib.find(
        workdir, found, None if tuned is not None else taxonomy)
    return cls(found, final, workdir, kind, tree, tree_source, head=tuned)

  # ---------------------------------------------------------- the graph

  def needs(self, node: Node) -> Optional[frozenset]:
    """The raw modalities a node is computed from (None: cannot run)."""
    return self.graph.needs(node)

  def nodes(self) -> List[Node]:
    """Every (stage, representation), in pipeline order."""
    return self.graph.nodes()

  def modalities(self) -> List[str]:
    """The raw modalities this model can read (audio, text, image)."""
    return self.graph.modalities()

  def runner(self, name: str) -> runners.Runner:
    """The jitted applies of a stage (built once)."""
    if name not in self._runners:
      self._runners[name] = runners.Runner(self.stages[name])
    return self._runners[name]

  def _head_scores(self, name: str):
    # The runner is built only if a val.npz lacks scores.
    return lambda representation: self.runner(name).head_scores(
        representation)

  def feature_data(self, name: str) -> inputs_lib.FeatureData:
    """Feature metadata of a modality stage (read once)."""
    if name not in self._features:
      self._features[name] = inputs_lib.load_feature_data(self.stages[name])
    return self._features[name]

  def whole_track_windows(self) -> Optional[Tuple[float, float]]:
    """The (drop, overlap) of whole-track windows that every audio network
    of the model computes on the JAX device from tracks decoded whole
    (predict_many's `decoded`); None when the model reads no audio, or a
    front end (or a window setting) of its audio stages does not allow it.
    """
    names = [n for n in self.order if self.stages[n].kind == 'audio']
    if not names or not all(self.feature_data(n).frontend.on_device
                            for n in names):
      return None
    settings = {inputs_lib.window_settings(self.stages[n]) for n in names}
    return settings.pop() if len(settings) == 1 else None

  # ------------------------------------------------------- computation

  def _modality_value(self, stage: Stage, raw,
                      report: inputs_lib.InputReport) -> runners.Value:
    """A modality network's value: audio averaged over windows, then tracks."""
    data = self.feature_data(stage.name)
    runner = self.runner(stage.name)
    if stage.kind == 'audio':
      return _one(runners.album_audio_values(stage, data, runner,
                                [(raw['audio'], report)])[0])
    if stage.kind == 'text':
      x = inputs_lib.text_input(data, raw['text'], report)
    else:
      x = inputs_lib.image_input(data, raw['image'], report)
    return runners.apply_batches(runner, [(0, x)], 1)[0]

  def _compute(self, node: Node, raw: Mapping[str, Any],
               cache: Dict[Node, runners.Value],
               report: inputs_lib.InputReport) -> runners.Value:
    if node in cache:
      if isinstance(cache[node], Exception):
        # Reading it failed in a batch (_read_audio): fail where reading
        # it alone would have.
        raise cache[node]
      return cache[node]
    stage = self.stages[node[0]]
    if stage.reads_files:
      value = self._modality_value(stage, raw, report)
    elif stage.target is None:
      # An alignment tower: one parent, no label scores.
      (parent,) = self.graph.parents(node)
      x = self._compute(parent, raw, cache, report).representation[None]
      value = runners.Value(
          np.asarray(self.runner(stage.name).tower(node[1], x))[0])
    else:
      parents = self.graph.parents(node)
      names = graph_lib.fusion_names(stage)
      fused = {name: self._compute(p, raw, cache, report).representation[None]
               for name, p in zip(names, parents)}
      rep, out, scores = jax.device_get(self.runner(stage.name).scored(fused))
      value = runners.Value(np.asarray(rep[0]), np.asarray(out[0]),
                            np.asarray(scores[0]))
    cache[node] = value
    return value

  # ---------------------------------------------------------------- API

  def _prepare(self, inputs: Sequence[Any], every_node: bool,
               decoded: Optional[Mapping[str, Any]] = None) -> List[Any]:
    """_Prepared inputs (or their errors), the audio already through its
    networks in shared batches (_read_audio).

    Args:
      inputs: {'audio', 'cover', 'reviews'} each (predict's arguments), or
        an exception, passed through.
      every_node: embedding (or answering with the head): every node the
        inputs can feed is computed, not only the answer's.
      decoded: tracks decoded whole (predict_many).
    """
    prepared: List[Any] = []
    for entry in inputs:
      if isinstance(entry, Exception):
        prepared.append(entry)
        continue
      try:
        prepared.append(_Prepared(*inputs_lib.given_inputs(
            known=self.modalities(), **entry)))
      except INPUT_ERRORS as e:
        prepared.append(e)
    self._read_audio([p for p in prepared if isinstance(p, _Prepared)],
                     every_node or self.head is not None, decoded)
    return prepared

  def _audio_stages(self, available: frozenset, every_node: bool
                    ) -> List[str]:
    """The audio stages computed for these modalities, in pipeline order."""
    if every_node:
      nodes = [n for n in self.nodes()
               if self.needs(n) is not None and self.needs(n) <= available]
    else:
      nodes = self.graph.closure(self.graph.answer(available))
    names = {n[0] for n in nodes}
    return [n for n in self.order
            if n in names and self.stages[n].kind == 'audio']

  def _read_audio(self, prepared: List['_Prepared'], every_node: bool,
                  decoded: Optional[Mapping[str, Any]] = None) -> None:
    """Puts each input's audio Values (or its reading error) in its cache.

    The windows of all the inputs go through each audio network together,
    in shared padded batches (runners.apply_batches): the same numbers as
    one input at a time, since each row of a batch is computed alone.
    Tracks in `decoded` are computed on the device from their samples
    (runners.album_audio_values).
    """
    for name in self.order:
      users = [p for p in prepared
               if name in self._audio_stages(frozenset(p.raw), every_node)
               and not any(isinstance(v, Exception)
                           for v in p.cache.values())]
      if not users:
        continue
      stage = self.stages[name]
      values = runners.album_audio_values(stage, self.feature_data(name),
                             self.runner(name),
                             [(p.raw['audio'], p.report) for p in users],
                             decoded)
      for p, value in zip(users, values):
        p.cache.update({(name, rep): value
                        for rep in stage.representations})

  def _scores(self, prepared: '_Prepared'):
    """`scores`, and the InputReport of the inputs read."""
    raw, notes, report, cache = (prepared.raw, prepared.notes,
                                 prepared.report, prepared.cache)
    if self.head is not None:
      vectors = self._vectors(prepared)
      return (self.head.scores(self.head.vector(vectors)),
              self.head.thresholds, self.head.describe(), notes, report)
    answer = self.graph.answer(frozenset(raw))
    if not answer:
      raise errors.TaggingError(f'no stage of this model can score '
                         f'{sorted(raw)} (stages: {self.order}).')
    values = [self._compute(n, raw, cache, report).scores for n in answer]
    scores = np.mean(values, axis=0).astype(np.float32)
    limits = [self.stages[n[0]].thresholds for n in answer]
    thresholds = (None if any(t is None for t in limits)
                  else np.mean(limits, axis=0))
    return scores, thresholds, self.graph.describe(answer), notes, report

  def scores(self, audio=None, cover=None, reviews=None):
    """Raw per-label scores and how they were obtained.

    Returns:
      (scores float32 [L], thresholds float64 [L] or None, model description,
      notes).
    """
    inputs = {'audio': audio, 'cover': cover, 'reviews': reviews}
    return self._scores(_one(self._prepare([inputs], False)[0]))[:4]

  def predict(self, audio=None, cover=None, reviews: Optional[str] = None, *,
              top_k: Optional[int] = None, level: str = 'all'
              ) -> Dict[str, Any]:
    """Genres of one item (a track, or an album with cover and reviews).

    Args:
      audio: an audio file or a list of them (the tracks of one album, whose
        outputs are averaged).
      cover: an image file.
      reviews: the review text itself (not a path).
      top_k: labels returned; None for all.
      level: 'all' labels, or 'top': the taxonomy's top-level genres only
        (in `labels` and `decisions`; `scores` keeps every label).

    Returns:
      {'labels': [{'label', 'score'}] best first, 'decisions': [label, ...]
       (score >= its F1-optimal validation threshold, plus every ancestor
       of a decided label when the taxonomy is known, best first; None when
       the model has no thresholds), 'model': which network answered,
       'duration_s': seconds of audio decoded (all tracks; None without
       audio), 'warnings': [str] about input that may make the scores
       wrong, 'notes': [str]: inputs ignored, mono-mixing, resampling
       (docs/tagging.md), 'scores': float32 [L] (all labels, label order)}.
      With a head, the labels are its own, the scores its probabilities
      and the thresholds its held-out ones.

    Raises:
      errors.TaggingError, features.FeatureError: naming the input that failed.
    """
    inputs = {'audio': audio, 'cover': cover, 'reviews': reviews}
    return _one(self.predict_many([inputs], top_k=top_k, level=level)[0])

  def predict_many(self, inputs: Sequence[Any], *,
                   top_k: Optional[int] = None, level: str = 'all',
                   decoded: Optional[Mapping[str, Any]] = None
                   ) -> List[Any]:
    """`predict` of many inputs, their audio windows batched together.

    The same results as `predict` one input at a time (each row of a
    network batch is computed alone), faster: short tracks no longer fill
    a padded batch each.

    Args:
      inputs: predict's arguments {'audio', 'cover', 'reviews'} per item,
        or an exception (an input already known to be unreadable).
      top_k, level: as in `predict`.
      decoded: path -> streaming.DecodedTrack of audio files already
        decoded whole for `whole_track_windows()` (mmgenre predict's
        decoding workers, tagging/decoding.py): their windows are computed
        on the device in batches, the same to float32 precision.

    Returns:
      Per input, predict's result or the input error (one of INPUT_ERRORS)
      that `predict` would raise; other exceptions propagate.

    Raises:
      errors.TaggingError: a `level` this model cannot give.
    """
    shown = self.level_mask(level)
    results = []
    for prepared in self._prepare(inputs, every_node=False,
                                  decoded=decoded):
      try:
        results.append(prepared if isinstance(prepared, Exception) else
                       self._ranked(shown, top_k, *self._scores(prepared)))
      except INPUT_ERRORS as e:
        results.append(e)
    return results

  def _ranked(self, shown: np.ndarray, top_k: Optional[int], scores,
              limits, model, notes, report) -> Dict[str, Any]:
    """predict's result of _scores' answer."""
    ranked = [j for j in np.argsort(-scores, kind='stable') if shown[j]]
    order = ranked if top_k is None else ranked[:max(0, int(top_k))]
    decisions = None
    if limits is not None:
      chosen = thresholds_lib.decide(scores, limits)
      if self.parents is not None:
        chosen = hierarchy.with_ancestors(chosen, self.parents)
      decisions = [self.labels[j] for j in ranked if chosen[j]]
    return {'labels': [{'label': self.labels[j], 'score': float(scores[j])}
                       for j in order],
            'decisions': decisions, 'model': model,
            'duration_s': report.duration_s(), 'warnings': report.warnings(),
            'notes': notes + report.notes(), 'scores': scores}

  def level_mask(self, level: str) -> np.ndarray:
    """bool [L]: the labels `predict(level=...)` lists."""
    if level not in LEVELS:
      raise errors.TaggingError(f'level {level!r}: use one of {LEVELS}.')
    if level == 'all':
      return np.ones(len(self.labels), bool)
    if self.parents is None:
      raise errors.TaggingError(
          f'{self.source}: --level top needs a genre taxonomy and none was '
          'found (bundle, or beside the shards\' corpus); pass --taxonomy '
          'FILE (label<TAB>parent).')
    return hierarchy.roots(self.parents)

  def representation_name(self, node: Node) -> str:
    """A node's name among the `embed` vectors."""
    if self.stages[node[0]].network.fuses and node[0] != self.final:
      # Fusions of other subsets have their own sizes and names.
      return f'fusion_{node[0]}'
    return node[1]

  def embed(self, audio=None, cover=None, reviews: Optional[str] = None
            ) -> Dict[str, np.ndarray]:
    """Every representation computable from the given inputs (see
    `embed_and_report`)."""
    return self.embed_and_report(audio, cover, reviews)[0]

  def embed_and_report(self, audio=None, cover=None,
                       reviews: Optional[str] = None
                       ) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Every representation computable from the given inputs, and what
    reading them observed.

    Returns:
      {name: float32 [D]}: 'audio', 'text', 'image' (the modality networks'
      representations), 'mm_audio', 'mm_visual' (alignment space),
      'fusion' (the answering fusion's input), and for COSINE networks
      '<name>_output', the unit vector in the label-factor space shared by
      all modalities; '<name>_scores', the label scores of each network
      that scores labels (predict's `scores` when it answers). With
      several stages of one kind, the first in pipeline order that feeds
      the final stage wins. Then {'duration_s', 'warnings', 'notes'}, as in
      `predict`.
    """
    inputs = {'audio': audio, 'cover': cover, 'reviews': reviews}
    return _one(self.embed_many([inputs])[0])

  def embed_many(self, inputs: Sequence[Any],
                 decoded: Optional[Mapping[str, Any]] = None) -> List[Any]:
    """`embed_and_report` of many inputs, their audio windows batched
    together (the same vectors; see predict_many).

    Args:
      inputs, decoded: as in predict_many.

    Returns:
      Per input, embed_and_report's (vectors, report) or its input error.
    """
    results = []
    for prepared in self._prepare(inputs, every_node=True, decoded=decoded):
      try:
        results.append(prepared if isinstance(prepared, Exception) else (
            self._vectors(prepared),
            {'duration_s': prepared.report.duration_s(),
             'warnings': prepared.report.warnings(),
             'notes': prepared.notes + prepared.report.notes()}))
      except INPUT_ERRORS as e:
        results.append(e)
    return results

  def _vectors(self, prepared: '_Prepared') -> Dict[str, np.ndarray]:
    """`embed_and_report`'s vectors of prepared inputs."""
    raw, report, cache = prepared.raw, prepared.report, prepared.cache
    available = frozenset(raw)
    result: Dict[str, np.ndarray] = {}
    for node in self.graph.preferred_nodes():
      needed = self.needs(node)
      rep = self.representation_name(node)
      if needed is None or not needed <= available or rep in result:
        continue
      value = self._compute(node, raw, cache, report)
      result[rep] = value.representation.astype(np.float32)
      target = self.stages[node[0]].target
      if value.output is not None and target.uses_label_factors:
        result[f'{rep}_output'] = value.output.astype(np.float32)
      if value.scores is not None:
        # A finetuned head may answer with them (finetune/selection.py).
        result[f'{rep}_scores'] = value.scores.astype(np.float32)
    return result

  def explain(self, cover, *, top_k: int = 3) -> List[Dict[str, Any]]:
    """Class activation maps of the cover network's top labels.

    Args:
      cover: an image file, or a uint8 [H, W, 3] array; preprocessed as
        `predict` does (resize, centre crop, standardisation).
      top_k: labels returned.

    Returns:
      [{'label': str, 'score': float (the image network's own score),
        'heatmap': float32 [C, C] in [0, 1] (min-max; zeros when constant)}],
      best first; C the network's input size.

    Raises:
      errors.TaggingError: the model has no image network; a bad cover.
    """
    stage = next((self.stages[n] for n in self.order
                  if self.stages[n].kind == 'image'), None)
    if stage is None:
      raise errors.TaggingError(f'{self.source} has no image network (stages: '
                         f'{self.order}); explain needs a cover ResNet.')
    return explain_lib.explain_cover(stage, self.feature_data(stage.name),
                                     cover,
                                     stage.labels or self.stages[
                                         self.final].labels,
                                     top_k)

  def export(self, out) -> pathlib.Path:
    """Writes a self-contained bundle directory (bundle.py), thresholds and
    the head (when one is attached) too.

    Every modality stage's feature files are read first, so that a missing
    one fails before anything is written.
    """
    data = {name: self.feature_data(name) for name in self.order
            if self.stages[name].reads_files}
    return bundle_lib.write(out, [self.stages[n] for n in self.order],
                            self.final, self.source,
                            self.stages[self.final].labels, data,
                            taxonomy=self._model_taxonomy, head=self.head)

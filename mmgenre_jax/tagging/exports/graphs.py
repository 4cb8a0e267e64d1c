"""A loaded model as pure JAX functions of arrays: what an export traces.

One entry point per set of inputs a user can give (`ENTRY_POINTS`):
'audio', 'cover', 'text' (each modality alone) and 'fused' (every modality
the final stage reads). Each is the whole path from the network inputs to
the label scores `Tagger.predict` answers with: the answering stages of
graph.StageGraph.answer (an audio query in the paper's pipeline is the
audio + MM_AUDIO fusion), the alignment towers and fusions they need, the
mean of their scores, or the finetuned head's probabilities.

Inputs (B: items, N: audio windows per item, both dynamic):

  windows  float32 [B, N, 322, 96]  log-CQT windows in dB ([-80, 0], the
                                    track's maximum 0 dB), not standardised
  weights  float32 [B, N]           each window's share of its item: 1/k
                                    for a track of k windows, 1/(k_t T) for
                                    the T tracks of an album; 0 = padding
  cover    uint8   [B, C, C, 3]     RGB, already resized and centre-cropped
  tfidf    float32 [B, V]           the review text's tf-idf vector

Output: scores float32 [B, L], in the order of the export's labels.

  points = graphs.entry_points(tagger)
  points['audio'].fn(windows, weights)      # jnp [B, L]
"""

import dataclasses
import functools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.features import audio as audio_features
from input_pipeline.features import frontends
from mmgenre_jax import errors
from mmgenre_jax import frontend
from mmgenre_jax.models import registry
from mmgenre_jax.tagging.model import graph as graph_lib
from mmgenre_jax.tagging.model import stages as stages_lib

# The entry points, and the raw modalities each reads ('fused': the final
# stage's, see entry_points).
ENTRY_POINTS = ('audio', 'cover', 'text', 'fused')
_SINGLE = {'audio': 'audio', 'cover': 'image', 'text': 'text'}
# Dynamic dimensions, as the exports name them.
BATCH = 'B'
WINDOWS = 'N'
# A head's vector norm floor (fitted_head.l2_normalise).
_EPSILON = 1e-12
# The audio front end `frontend_fn` computes (the PCM graphs'): only a
# model trained on its features may be fed by it.
FRONTEND = frontends.JAX_POLYPHASE


@dataclasses.dataclass(frozen=True)
class Input:
  """One array an entry point takes: its name, shape (str: dynamic) and
  dtype."""
  name: str
  shape: Tuple
  dtype: str


@dataclasses.dataclass
class EntryPoint:
  """A traceable function and what it reads.

  Attributes:
    name: one of ENTRY_POINTS.
    modalities: the raw modalities it reads (sorted).
    inputs: its Inputs, in argument order.
    fn: (*arrays in `inputs` order) -> scores float32 [B, L].
    model: which network answers (Tagger.predict's `model`).
    thresholds: float64 [L] (NaN: never decided) or None.
  """
  name: str
  modalities: Tuple[str, ...]
  inputs: Tuple[Input, ...]
  fn: Callable
  model: str
  thresholds: Optional[np.ndarray]


def modality_inputs(tagger, modality: str) -> Tuple[Input, ...]:
  """The Inputs of one raw modality (module docstring)."""
  stage = next(tagger.stages[n] for n in tagger.order
               if tagger.stages[n].kind == modality)
  if modality == 'audio':
    return (Input('windows', (BATCH, WINDOWS, audio_features.PATCH_FRAMES,
                              audio_features.N_BINS), 'float32'),
            Input('weights', (BATCH, WINDOWS), 'float32'))
  data = tagger.feature_data(stage.name)
  if modality == 'image':
    side = int(data.image_size)
    return (Input('cover', (BATCH, side, side, 3), 'uint8'),)
  return (Input('tfidf', (BATCH, len(data.vectorizer.vocabulary_)),
                'float32'),)


class _Graph:
  """The model's stages as jnp computations on one set of inputs."""

  def __init__(self, tagger):
    self.tagger = tagger
    self.models = {}
    self.variables = {}
    for name in tagger.order:
      stage = tagger.stages[name]
      self.models[name] = registry.create_model(stage.model_config)
      self.variables[name] = jax.tree_util.tree_map(jnp.asarray,
                                                    stage.variables)

  def _scored(self, stage: stages_lib.Stage, *inputs):
    out = self.models[stage.name].apply(self.variables[stage.name], *inputs,
                                        train=False)
    output = out['output'].astype(jnp.float32)
    factors = (None if stage.label_factors is None
               else jnp.asarray(stage.label_factors))
    return (out['representation'].astype(jnp.float32), output,
            stage.target.scores(output, factors))

  def _modality(self, stage: stages_lib.Stage, arrays):
    """(representation, output, scores) [B, ...] of a modality network."""
    data = self.tagger.feature_data(stage.name)
    if stage.kind == 'audio':
      windows, weights = arrays['windows'], arrays['weights']
      x = (windows - jnp.asarray(data.mean)) / jnp.asarray(data.std)
      x = x.reshape((-1,) + windows.shape[2:] + (1,))
      outs = self._scored(stage, x)
      # Each window's rows, weighted: the mean over windows and tracks.
      return tuple(jnp.einsum('bn,bnk->bk', weights,
                              o.reshape(windows.shape[:2] + o.shape[1:]))
                   for o in outs)
    if stage.kind == 'image':
      x = arrays['cover'].astype(jnp.float32) / 255.0
      x = (x - jnp.asarray(data.image_mean)) / jnp.asarray(data.image_std)
      return self._scored(stage, x)
    return self._scored(stage, arrays['tfidf'])

  def value(self, node, arrays, cache):
    """A node's (representation, output, scores); output and scores None
    for an alignment tower."""
    if node in cache:
      return cache[node]
    stage = self.tagger.stages[node[0]]
    if stage.reads_files:
      value = self._modality(stage, arrays)
    elif stage.target is None:
      (parent,) = self.tagger.graph.parents(node)
      x = self.value(parent, arrays, cache)[0]
      tower = stages_lib.ALIGNMENT_TOWERS[node[1]]
      value = (self.models[stage.name].apply(
          self.variables[stage.name], x, method=f'embed_{tower}'), None, None)
    else:
      parents = self.tagger.graph.parents(node)
      fused = {name: self.value(p, arrays, cache)[0] for name, p in
               zip(graph_lib.fusion_names(stage), parents)}
      value = self._scored(stage, fused)
    cache[node] = value
    return value


def _head_nodes(tagger, available) -> Optional[List[Tuple]]:
  """(node, field: 0 representation, 1 output, 2 scores) of each part of
  the head's input (Tagger._vectors' names), or None when these
  modalities do not give it."""
  head = tagger.head
  names = [head.representation] + [head.base_scores] * bool(head.base_scores)
  parts = []
  for name in names:
    found = None
    for node in tagger.graph.preferred_nodes():
      needed = tagger.needs(node)
      if needed is None or not needed <= available:
        continue
      rep = tagger.representation_name(node)
      field = {rep: 0, f'{rep}_output': 1, f'{rep}_scores': 2}.get(name)
      if field is not None:
        found = (node, field)
        break
    if found is None:
      return None
    parts.append(found)
  return parts


def _head_scores(head, x):
  """fitted_head.Head.scores in jnp float32: [B, D (+ K)] -> [B, L]."""
  width = head.coef.shape[1] - len(head.base_labels or ())
  rep = x[:, :width]
  rep = rep / jnp.maximum(jnp.linalg.norm(rep, axis=-1, keepdims=True),
                          _EPSILON)
  x = jnp.concatenate([rep, x[:, width:]], axis=-1)
  logits = ((x - jnp.asarray(head.mean, jnp.float32)) /
            jnp.asarray(head.scale, jnp.float32)) @ jnp.asarray(
                head.coef.T, jnp.float32) + jnp.asarray(head.intercept,
                                                        jnp.float32)
  return jax.nn.sigmoid(logits)


def _answer_fn(tagger, graph: _Graph, modalities: Sequence[str],
               names: List[str]) -> Optional[Tuple[Callable, str, object]]:
  """(fn, model description, thresholds) for these modalities, or None."""
  available = frozenset(modalities)
  if tagger.head is not None:
    parts = _head_nodes(tagger, available)
    if parts is None:
      return None

    def head_fn(*arrays):
      values, cache = dict(zip(names, arrays)), {}
      x = jnp.concatenate([graph.value(node, values, cache)[field]
                           for node, field in parts], axis=-1)
      return _head_scores(tagger.head, x)
    return head_fn, tagger.head.describe(), tagger.head.thresholds
  answer = tagger.graph.answer(available)
  if not answer:
    return None
  limits = [tagger.stages[n[0]].thresholds for n in answer]
  thresholds = (None if any(t is None for t in limits)
                else np.mean(limits, axis=0))

  def fn(*arrays):
    values, cache = dict(zip(names, arrays)), {}
    scores = [graph.value(n, values, cache)[2] for n in answer]
    return functools.reduce(jnp.add, scores) / len(scores)
  return fn, tagger.graph.describe(answer), thresholds


def entry_points(tagger) -> Dict[str, EntryPoint]:
  """The model's entry points that it can answer (ENTRY_POINTS order).

  'fused' is there when the final stage reads more than one modality.

  Raises:
    errors.TaggingError: the model answers none of them.
  """
  graph = _Graph(tagger)
  known = tagger.modalities()
  final = tagger.needs((tagger.final, tagger.stages[tagger.final]
                        .representations[0]))
  wanted = {point: (_SINGLE[point],) for point in ENTRY_POINTS[:3]
            if _SINGLE[point] in known}
  if final is not None and len(final) > 1:
    wanted['fused'] = tuple(m for m in stages_lib.INPUT_MODALITIES
                            if m in final)
  found = {}
  for point, modalities in wanted.items():
    inputs = sum((modality_inputs(tagger, m) for m in modalities), ())
    made = _answer_fn(tagger, graph, modalities, [i.name for i in inputs])
    if made is not None:
      found[point] = EntryPoint(point, modalities, inputs, *made)
  if not found:
    raise errors.TaggingError(
        f'{tagger.source}: no entry point ({", ".join(ENTRY_POINTS)}) can '
        'be answered by this model' + (
            f' with the head {tagger.head.name!r}' if tagger.head else '')
        + '.')
  return found


def frontend_fn(samples: jax.Array) -> jax.Array:
  """The log-CQT front end of the PCM graphs (mmgenre_jax.frontend): the
  features of `FRONTEND`.

  Args:
    samples: float32 [1, T], mono PCM at 22,050 Hz (zero-padded).

  Returns:
    log_power: float32 [1, 1 + T // 1024, 96], log10(max(|CQT|^2, AMIN)):
      the dB windows are cut from it on the host (writer.audio_contract),
      relative to the maximum over the track's own frames.
  """
  magnitude = frontend.cqt(samples, frontend.SAMPLE_RATE)
  return jnp.log10(jnp.maximum(magnitude * magnitude,
                               np.float32(audio_features.AMIN)))

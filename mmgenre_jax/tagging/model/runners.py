"""Deterministic jitted applies of a stage's network (train=False).

Inference has no dropout and no random crops; inputs go through in padded
batches of fixed sizes, so that the same inputs give the same outputs and
only a few shapes are compiled per stage.

  runner = runners.Runner(stage)
  rep, output, scores = runner.scored(x)      # [B, R], [B, K], [B, L]
  values = runners.apply_batches(runner, chunks, count)   # per-item means
"""

import dataclasses
import functools
import json
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmgenre_jax.models import heads
from mmgenre_jax.models import registry
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging.model import stages as stages_lib

# Largest batch of audio windows per apply. Batches are padded to one of
# PAD_SIZES, so that only two shapes get compiled per stage (a short track
# has 1-3 windows; a long one fills batches of APPLY_BATCH).
APPLY_BATCH = 32
PAD_SIZES = (8, APPLY_BATCH)


@functools.lru_cache(maxsize=None)
def _jitted(model_json: str):
  """Jitted applies of one network definition, shared by every Tagger.

  Keyed by the model config with its data's sizes (Stage.model_config), so
  loading the same model again (a second Tagger, each `mmgenre` call of a
  test) reuses the compiled code; the variables and label factors are
  arguments, not constants.
  """
  model_config = ml_collections.ConfigDict(json.loads(model_json))
  model = registry.create_model(model_config)
  target = registry.target(model_config)
  if target is None:
    # The alignment space: its two towers, no label scores.
    return {rep: jax.jit(functools.partial(model.apply,
                                           method=f'embed_{tower}'))
            for rep, tower in stages_lib.ALIGNMENT_TOWERS.items()}

  def scored(variables, factors, *inputs):
    out = model.apply(variables, *inputs, train=False)
    output = out['output'].astype(jnp.float32)
    scores = target.scores(output, factors)
    return out['representation'].astype(jnp.float32), output, scores

  return jax.jit(scored)


class Runner:
  """Deterministic jitted applies of one stage (train=False)."""

  def __init__(self, stage: stages_lib.Stage):
    self.stage = stage
    self.variables = jax.tree_util.tree_map(jnp.asarray, stage.variables)
    self.factors = (None if stage.label_factors is None
                    else jnp.asarray(stage.label_factors))
    compiled = _jitted(stage.model_config.to_json())
    if stage.target is None:
      self.towers = compiled
    else:
      self._scored = compiled

  def scored(self, *inputs):
    """(representation [B, R], output [B, K], scores [B, L]) of a batch."""
    return self._scored(self.variables, self.factors, *inputs)

  def tower(self, rep: str, x) -> jax.Array:
    """MM_AUDIO or MM_VISUAL embeddings [B, E] of representations x [B, D]."""
    return self.towers[rep](self.variables, x)

  def head_scores(self, representation: np.ndarray) -> np.ndarray:
    """Scores [N, L] of representations [N, R] through the output layer."""
    head = heads.OutputHead(int(self.stage.model_config.num_outputs),
                            self.stage.target.name)
    output = head.apply({'params': self.stage.variables['params']['head']},
                        jnp.asarray(representation, jnp.float32))
    return np.asarray(self.stage.target.scores(output,
                                               self.stage.label_factors))


@dataclasses.dataclass
class Value:
  """A computed node: representation [R], and for scoring nodes the output
  [K] and scores [L] (means over windows and tracks for audio)."""
  representation: np.ndarray
  output: Optional[np.ndarray] = None
  scores: Optional[np.ndarray] = None


def mean_value(values: List[Value]) -> Value:
  """The field-wise mean of scoring values (the tracks of an album)."""
  return Value(*[np.mean([getattr(v, f) for v in values], axis=0)
                 for f in ('representation', 'output', 'scores')])


def apply_batches(runner: Runner, batches: Iterable[Tuple[int, np.ndarray]],
                  count: int) -> List[Value]:
  """Runs a scoring stage on (item index, inputs [k, ...]) chunks.

  Chunks are packed into batches of at most APPLY_BATCH rows, padded to a
  size of PAD_SIZES; the means are over every row of an item, in float64.

  Args:
    runner: the stage's runner.
    batches: (index in [0, count), float32 [k, ...] network inputs), an
      item's chunks in any number and order.
    count: the number of items.

  Returns:
    One Value per item, float32 means over its rows; None for an item
    without rows (its input failed before any chunk, Tagger.predict_many).
  """
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
  return [None if total is None else
          Value(*[(s / n).astype(np.float32) for s in total])
          for total, n in zip(sums, rows)]


def padded_rows(rows: int) -> int:
  """Rows of whole APPLY_BATCH batches holding `rows`, the last batch
  padded to the smallest of PAD_SIZES that holds what is left."""
  full, rest = divmod(rows, APPLY_BATCH)
  return full * APPLY_BATCH + (
      next(s for s in PAD_SIZES if s >= rest) if rest else 0)


def device_values(runner: Runner,
                  calls: Iterable[Tuple[np.ndarray, jax.Array]],
                  count: int) -> List[Optional[Value]]:
  """Runs a scoring stage on windows already on the device.

  Args:
    runner: the stage's runner.
    calls: (owners int [W] in [0, count), nondecreasing, x [padded_rows(W),
      ...] network inputs on the device, rows past W ignored) each
      (device_windows.standardised_windows).
    count: the number of items.

  Returns:
    apply_batches' Values: per item the float32 mean over its rows in
    float64, None for an item without rows.
  """
  sums: List[Optional[List[np.ndarray]]] = [None] * count
  rows = np.zeros(count, np.int64)
  for owners, x in calls:
    # Every batch is dispatched before any result is read.
    outs = [runner.scored(x[lo:lo + APPLY_BATCH])
            for lo in range(0, x.shape[0], APPLY_BATCH)]
    outs = [np.concatenate([np.asarray(o[f], np.float64) for o in
                            jax.device_get(outs)])[:len(owners)]
            for f in range(3)]
    items, first = np.unique(owners, return_index=True)
    for item, part in zip(items, zip(*[np.add.reduceat(o, first)
                                       for o in outs])):
      sums[item] = list(part) if sums[item] is None else [
          a + b for a, b in zip(sums[item], part)]
    rows += np.bincount(owners, minlength=count)
  return [None if total is None else
          Value(*[(s / n).astype(np.float32) for s in total])
          for total, n in zip(sums, rows)]


def _decoded_tracks(stage: stages_lib.Stage, data: inputs_lib.FeatureData,
                    albums, decoded: Mapping[str, Any]) -> Dict[int, Any]:
  """Track index (over all albums) -> its DecodedTrack, for the tracks
  whose windows this stage computes on the device."""
  if not decoded or not data.frontend.on_device:
    return {}
  settings = inputs_lib.window_settings(stage)
  found, index = {}, 0
  for paths, _ in albums:
    for path in paths:
      track = decoded.get(path)
      if track is not None and (track.drop, track.overlap) == settings:
        found[index] = track
      index += 1
  return found


def album_audio_values(stage: stages_lib.Stage,
                       data: inputs_lib.FeatureData, runner: Runner,
                       albums: Sequence[Tuple[Sequence[str],
                                              inputs_lib.InputReport]],
                       decoded: Optional[Mapping[str, Any]] = None
                       ) -> List[Any]:
  """An audio network's Values of albums, their windows batched together.

  Args:
    stage, data, runner: the audio stage, its FeatureData and Runner.
    albums: (track paths, the InputReport their AudioInfo goes to) each.
    decoded: path -> streaming.DecodedTrack of tracks already decoded
      whole (predict's decoding workers): with a front end that runs on
      the device, their windows are computed there, in batches
      (device_windows); the other tracks are streamed. The same Values to
      float32 precision.

  Returns:
    Per album, the mean over its tracks of the mean over each track's
    windows, or the input error reading it raised (its other windows are
    dropped; the other albums go on).
  """
  starts = np.cumsum([0] + [len(paths) for paths, _ in albums])
  on_device = _decoded_tracks(stage, data, albums, decoded)
  failed: Dict[int, Exception] = {}

  def chunks():
    for a, (paths, report) in enumerate(albums):
      first = int(starts[a])
      skip = {i - first for i in on_device if first <= i < starts[a + 1]}
      try:
        for track, windows in inputs_lib.audio_windows(stage, data, paths,
                                                       report, skip):
          yield first + track, windows
      except inputs_lib.INPUT_ERRORS as e:
        failed[a] = e

  tracks = apply_batches(runner, chunks(), int(starts[-1]))
  if on_device:
    # Imported here: the JAX CQT's module imports librosa's constant-Q
    # code (~1 s), which a model on the librosa front end never needs.
    # pylint: disable-next=g-import-not-at-top
    from input_pipeline.features import device_windows
    indices = sorted(on_device)
    computed = device_values(runner, device_windows.standardised_windows(
        [on_device[i] for i in indices], data.mean, data.std,
        padded_rows=padded_rows), len(indices))
    album_of = np.searchsorted(starts, indices, side='right') - 1
    for i, a, value in zip(indices, album_of, computed):
      tracks[i] = value
      albums[a][1].audio.setdefault(i - int(starts[a]), on_device[i].info)
  return [failed[a] if a in failed else
          mean_value(tracks[starts[a]:starts[a + 1]])
          for a in range(len(albums))]

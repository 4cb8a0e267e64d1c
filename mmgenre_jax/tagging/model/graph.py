"""The stages of a model as a graph, and which node answers for given inputs.

A node is (stage name, representation name): ('audio', 'audio'), ('align',
'mm_audio'), ('fused', 'fusion'). Modality nodes read raw inputs; an
alignment node reads the representation feeding its tower; a fusion node
reads the representations of config.model.modalities. Every node that can
score labels (a modality network or a fusion) is a candidate answer; for the
raw modalities given, `StageGraph.answer` picks:

  1. the final stage of the pipeline when it needs exactly the modalities
     given;
  2. else a scoring stage needing exactly the modalities given (fusion
     stages first, the one with the most inputs: audio alone with an
     alignment stage is answered by a fusion of audio + MM_AUDIO when the
     pipeline trained one);
  3. else the mean of the per-modality answers (each by rules 1-2 on that
     modality alone), with the decision thresholds averaged likewise.

A modality is never replaced by zeros: a fusion node runs only on inputs that
were all computed from the given files.
"""

import pathlib
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from absl import logging

from mmgenre_jax import errors
from mmgenre_jax.models import specs
from mmgenre_jax.tagging.model import stages as stages_lib

Node = Tuple[str, str]  # (stage name, representation name)


def fusion_names(stage: stages_lib.Stage) -> Tuple[str, ...]:
  """The fused representations, in concatenation order."""
  return specs.ordered_modalities(stage.config.model.modalities)


def _same_dir(a, b) -> bool:
  try:
    return pathlib.Path(a).resolve() == pathlib.Path(b).resolve()
  except OSError:
    return False


class StageGraph:
  """Loaded stages, their links and the answering rules (module docstring).

  Attributes:
    stages: stage name -> Stage.
    order: the stage names in pipeline (or bundle) order.
    final: the final stage's name.
    source: the directory the model was read from.
  """

  def __init__(self, stages: Sequence[stages_lib.Stage], final: str, source):
    self.stages: Dict[str, stages_lib.Stage] = {s.name: s for s in stages}
    self.order = [s.name for s in stages]
    self.source = pathlib.Path(source)
    if final not in self.stages:
      raise errors.TaggingError(
          f'{source}: the final stage {final!r} was not loaded (stages: '
          f'{self.order}).')
    self.final = final
    self._resolve_inputs()
    self._inherit_label_data()

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
        if (stage.label_factors is None and stage.target is not None and
            stage.target.uses_label_factors and
            src.label_factors is not None):
          stage.label_factors = src.label_factors

  # ------------------------------------------------------------- links

  def _input_node(self, stage: stages_lib.Stage,
                  key: Optional[str]) -> Optional[Node]:
    """The node feeding input `key` (a config.data.inputs name) of `stage`."""
    if key not in stage.inputs:
      return None
    parent = self.stages[stage.inputs[key]]
    produced = key if key in parent.representations else (
        parent.representations[0])
    return (parent.name, produced)

  def parents(self, node: Node) -> Optional[List[Node]]:
    """The nodes a node is computed from; None when it cannot run."""
    stage = self.stages[node[0]]
    if stage.reads_files:
      return []
    # The config.data.inputs names the node reads (registry node_inputs: a
    # fusion all of them, an alignment tower its own).
    keys = stage.network.node_inputs(stage.config.model, list(stage.inputs),
                                     node[1])
    found = [self._input_node(stage, key) for key in keys]
    return None if not found or any(p is None for p in found) else found

  def needs(self, node: Node) -> Optional[FrozenSet[str]]:
    """The raw modalities a node is computed from (None: cannot run)."""
    stage = self.stages[node[0]]
    if stage.reads_files:
      return frozenset([stage.kind])
    found = self.parents(node)
    if found is None:
      return None
    needed = [self.needs(p) for p in found]
    return None if any(n is None for n in needed) else frozenset().union(
        *needed)

  def nodes(self) -> List[Node]:
    return [(name, rep) for name in self.order
            for rep in self.stages[name].representations]

  def modalities(self) -> List[str]:
    """The raw modalities this model can read (audio, text, image)."""
    return [m for m in stages_lib.INPUT_MODALITIES
            if any(s.kind == m for s in self.stages.values())]

  # ----------------------------------------------------------- answers

  def _scoring_nodes(self, available: FrozenSet[str]) -> List[Node]:
    return [n for n in self.nodes()
            if self.stages[n[0]].target is not None and
            self.needs(n) is not None and self.needs(n) == available]

  def answer(self, available: FrozenSet[str]) -> List[Node]:
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
        inputs = len(self.parents(node) or [])
        return (stage.network.fuses, inputs, self.order.index(node[0]))
      return [max(exact, key=rank)]
    if len(available) > 1:
      answers = []
      for modality in sorted(available):
        answers.extend(self.answer(frozenset([modality])))
      return answers
    return []

  def describe(self, nodes: Sequence[Node]) -> str:
    """Which network answered, for a result's 'model'."""
    parts = []
    for name, rep in nodes:
      stage = self.stages[name]
      if stage.network.fuses:
        parts.append(f'fusion of {"+".join(fusion_names(stage))} '
                     f'(stage {name})')
      else:
        parts.append(f'{rep} network (stage {name})')
    return parts[0] if len(parts) == 1 else (
        'mean of ' + ', '.join(parts) + ' (no fusion stage for this subset)')

  def closure(self, nodes: Sequence[Node]) -> List[Node]:
    """The nodes and every node they are computed from (depth first)."""
    found, stack = [], list(nodes)
    while stack:
      node = stack.pop()
      if node not in found:
        found.append(node)
        stack.extend(self.parents(node) or [])
    return found

  def preferred_nodes(self) -> List[Node]:
    """Nodes, those the final stage depends on first."""
    feeding = self.closure([(self.final, r) for r in
                            self.stages[self.final].representations])
    return feeding + [n for n in self.nodes() if n not in feeding]

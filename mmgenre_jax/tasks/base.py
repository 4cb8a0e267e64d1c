"""What every task shares: the state a step updates, the steps, typed results.

A task is what a kind of network trains for (label prediction, alignment):
it supplies the jitted train and eval steps of a stage, evaluates a whole
split and extracts the stage's representations. Training
(mmgenre_jax/train/), evaluation (mmgenre_jax/evaluation/) and the pipelines
call those four through the `Task` interface and never ask which network they
run.

  task = tasks.of(config.model)
  steps = task.build_steps(config, facts, mesh, source, label_factors)
  state, metrics = steps.train(state, batch, rng)
  result = task.evaluate_split(steps, state, config, 'val')
  result.metrics['loss'], result.rows        # SplitResult
"""

import abc
import dataclasses
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence
from typing import Tuple

from clu import metrics as clu_metrics
import flax
from flax.training import train_state
import jax
import ml_collections
import numpy as np

from mmgenre_jax import sharding
from mmgenre_jax.data import representations

# Metric keys of results.json (README, "Results"); None in an alignment
# report, which has no label scores.
REPORT_KEYS = ('roc_auc', 'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5',
               'precision', 'recall', 'macro_f1')


class TrainState(train_state.TrainState):
  """Flax TrainState plus the BatchNorm statistics of ResNet ({} otherwise)."""
  batch_stats: Any = None


@flax.struct.dataclass
class TrainMetrics(clu_metrics.Collection):
  """Training loss over real rows.

  The parameter norm is logged beside it (l2_params) but computed at log
  steps only, outside the train step: global norms inside the step cost as
  much as the step itself for the 25M-parameter text MLP on CPU
  (BENCHMARKS.md), and a norm of the update would keep the old parameters
  alive beside the donated state.
  """
  loss: clu_metrics.Average.from_output('loss')


def jit_steps(train_step: Callable[..., Any], eval_step: Callable[..., Any],
              mesh) -> Tuple[Callable[..., Any], Callable[..., Any]]:
  """A task's train and eval steps, jitted over the mesh.

  The train step's state (its first argument) is donated: its buffers are
  reused for the new state. Outputs are replicated: every process can read
  the whole batch's scores (multi-host) and collect whole-split metrics.
  """
  repl = sharding.replicated_sharding(mesh)
  return (jax.jit(train_step, out_shardings=(repl, repl),
                  donate_argnums=(0,)),
          jax.jit(eval_step, out_shardings=repl))


def step_metrics(per_row: jax.Array, mask: jax.Array) -> TrainMetrics:
  return TrainMetrics.single_from_model_output(loss=per_row, mask=mask)


def apply_model(state: TrainState, params, args, *, train: bool, rngs=None):
  """Runs the network on positional `args`; returns (outputs, batch_stats)."""
  variables = {'params': params}
  if state.batch_stats:
    variables['batch_stats'] = state.batch_stats
    if train:
      outputs, updates = state.apply_fn(variables, *args, train=True,
                                        rngs=rngs, mutable=['batch_stats'])
      return outputs, updates['batch_stats']
  outputs = state.apply_fn(variables, *args, train=train, rngs=rngs)
  return outputs, state.batch_stats


@dataclasses.dataclass
class Steps:
  """The jitted steps of one stage on one mesh, and the data they run on.

  Attributes:
    mesh: the device mesh (mmgenre_jax/sharding.py).
    source: the stage's data (data/sources.py ShardSource or
      RepresentationSource).
    keys: the batch keys fed to the network (registry.input_keys).
    train: (state, batch, rng) -> (new state, TrainMetrics); the state is
      donated.
    eval: (state, batch, index) -> per-row outputs [B, ...], replicated;
      `index` is the batch's position in the split.
    param_norm: params -> their global L2 norm (logged at log steps).
  """
  mesh: Any
  source: Any
  keys: Tuple[str, ...]
  train: Callable[..., Any]
  eval: Callable[..., Dict[str, jax.Array]]
  param_norm: Callable[[Any], jax.Array]


@dataclasses.dataclass(frozen=True)
class SplitResult:
  """A whole split evaluated.

  Attributes:
    metrics: the report of results.json and test_metrics.json: 'loss',
      REPORT_KEYS and what the task adds.
    rows: the split's rows (ids, representations, scores, labels), when
      they were collected.
  """
  metrics: Dict[str, Any]
  rows: Optional[representations.ItemRows] = None


def real_rows(outputs: Iterable[Mapping[str, Any]],
              keys: Sequence[str]) -> Dict[str, np.ndarray]:
  """Concatenates per-batch outputs and keeps the real rows.

  Args:
    outputs: per batch, key -> [B, ...], with 'mask' float [B] (0 on the
      padding rows of the last batch and of processes with fewer rows).
    keys: the keys to keep.

  Returns:
    key -> [N, ...] over the N rows with mask > 0, in batch order.
  """
  columns = {k: [] for k in tuple(keys) + ('mask',)}
  for out in outputs:
    for key, values in columns.items():
      values.append(np.asarray(out[key]))
  values = {k: np.concatenate(v) for k, v in columns.items()}
  real = values.pop('mask') > 0
  return {k: v[real] for k, v in values.items()}


class Task(abc.ABC):
  """What a kind of network trains for (the registry's Network.task)."""
  name: str = ''

  @abc.abstractmethod
  def build_steps(self, config: ml_collections.ConfigDict, facts, mesh,
                  source, label_factors) -> Steps:
    """The jitted steps of a stage.

    Args:
      config: the stage's config.
      facts: its DataFacts (data/facts.py).
      mesh: the device mesh.
      source: its data source.
      label_factors: C_d on the devices (a COSINE target) or None.
    """

  @abc.abstractmethod
  def evaluate_split(self, steps: Steps, state: TrainState,
                     config: ml_collections.ConfigDict, split: str, *,
                     collect: bool = False) -> SplitResult:
    """Loss and whole-split metrics of `state` on a split.

    Args:
      steps: the stage's steps.
      state: the (replicated) state to evaluate.
      config: the stage's config.
      split: 'train', 'val' or 'test'.
      collect: also return the rows (as extraction writes them).
    """

  @abc.abstractmethod
  def extract(self, steps: Steps, state: TrainState,
              config: ml_collections.ConfigDict,
              split: str) -> Dict[str, representations.ItemRows]:
    """The stage's representations of a split: name -> rows to write."""

  @abc.abstractmethod
  def collects_scores(self, steps: Steps, split: str) -> bool:
    """Whether evaluating `split` can keep its label scores (for images)."""

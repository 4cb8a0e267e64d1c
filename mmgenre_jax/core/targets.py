"""The output configurations of the paper: what a network's output layer learns.

One `Target` per configuration (paper Sec 5; docs/fidelity.md):

  LOGISTIC  sigmoid + binary cross-entropy on the multi-hot labels (Sec 5)
  COSINE    linear + L2 normalisation, regressing the PPMI-SVD item factors
            with the cosine loss; labels scored by cosine to their label
            factors (Sec 5.1)
  SOFTMAX   single-label softmax + cross-entropy (the MSD-I experiments,
            Sec 6)

Everything that depends on the configuration asks its object: the loss, what
the loss compares the output with, the label scores, the labels it trains on,
which config.data field sizes the output layer, the whole-split metrics.
Adding a target is one subclass here.

  target = targets.get(config.model.target)          # targets.COSINE
  per_row = target.loss_per_row(output, target.item_targets(labels, C, L),
                                mask)
  scores = target.scores(output, C)                   # [B, L]

Light on purpose, as the model registry: importing this module loads no
framework, so the configs read `output_size_field` from here; the array code
(losses.py, ppmi_svd.py, metrics.py) is imported when a method runs.
"""

import abc
from typing import Any, Dict, Optional, Tuple

from mmgenre_jax import errors

# Label formats of prepared shards (manifest 'label_type').
MULTI_HOT = 'multi_hot'
INDEX = 'index'


class Target(abc.ABC):
  """One output configuration (a value of config.model.target).

  Attributes:
    name: config.model.target.
    label_types: the shard label formats it trains on.
    output_size_field: the config.data field that sizes the output layer.
    unit_output: the output layer L2-normalises its output.
    uses_label_factors: scores and targets need the label factors C_d.
    single_label: one label per item (metrics: precision, recall, F1 over
      classes, a confusion matrix) rather than multi-label rankings.
  """
  name: str = ''
  label_types: Tuple[str, ...] = ()
  output_size_field: str = 'num_labels'
  unit_output: bool = False
  uses_label_factors: bool = False
  single_label: bool = False

  def __repr__(self) -> str:
    return f'targets.get({self.name!r})'

  @abc.abstractmethod
  def loss_per_row(self, output, item_target, mask):
    """The loss of each row, float [B] (0 on padding rows)."""

  @abc.abstractmethod
  def scores(self, output, label_factors=None):
    """Per-label scores of the output layer, float [B, L]."""

  def item_targets(self, labels, label_factors, num_labels: int):
    """What the loss compares the output with (default: the labels).

    Args:
      labels: multi-hot float [B, L] or class ids int [B].
      label_factors: C_d [L, d], or None.
      num_labels: L.
    """
    del label_factors, num_labels  # Unused: the labels themselves.
    return labels

  def metric_labels(self, labels, num_labels: int):
    """Labels in the form the whole-split metrics take: [B, L] multi-hot.

    Single-label shards under a multi-label target (COSINE on MSD-I) become
    one-hot rows, since ranking metrics need the label matrix.
    """
    import jax  # pylint: disable=g-import-not-at-top
    if labels.ndim == 1:
      return jax.nn.one_hot(labels, num_labels)
    return labels

  def split_metrics(self, scores, labels) -> Dict[str, Any]:
    """The metrics of a whole split (paper Sec 7.2; docs/fidelity.md).

    Args:
      scores: float [N, L].
      labels: what metric_labels returned, over the split.
    """
    from mmgenre_jax.core import metrics  # pylint: disable=g-import-not-at-top
    return metrics.multilabel_report(scores, labels)

  def output_size(self, data_config, num_labels: Optional[int] = None) -> int:
    """K, the width of the output layer.

    Args:
      data_config: config.data.
      num_labels: the labels of the data, when known (they override
        config.data.num_labels, a default for configs).
    """
    if self.output_size_field == 'num_labels' and num_labels is not None:
      return int(num_labels)
    return int(data_config[self.output_size_field])

  def check_label_type(self, label_type: str, where: str) -> None:
    """errors.ConfigError unless this target trains on `label_type` labels."""
    if label_type not in self.label_types:
      raise errors.ConfigError(
          f'config.model.target={self.name!r} needs {self.label_types} '
          f'labels but {where} holds {label_type!r} labels; pick a matching '
          'target config.')


class _Logistic(Target):
  """LOGISTIC: sigmoid + binary cross-entropy, multi-label (Sec 5)."""
  name = 'logistic'
  label_types = (MULTI_HOT,)

  def loss_per_row(self, output, item_target, mask):
    from mmgenre_jax.core import losses  # pylint: disable=g-import-not-at-top
    return losses.sigmoid_bce_per_row(output, item_target, mask)

  def scores(self, output, label_factors=None):
    import jax  # pylint: disable=g-import-not-at-top
    del label_factors  # Unused.
    return jax.nn.sigmoid(output)


class _Softmax(Target):
  """Single-label softmax + cross-entropy (MSD-I, Sec 6)."""
  name = 'softmax'
  label_types = (INDEX,)
  single_label = True

  def loss_per_row(self, output, item_target, mask):
    from mmgenre_jax.core import losses  # pylint: disable=g-import-not-at-top
    return losses.softmax_ce_per_row(output, item_target, mask)

  def scores(self, output, label_factors=None):
    import jax  # pylint: disable=g-import-not-at-top
    del label_factors  # Unused.
    return jax.nn.softmax(output, axis=-1)

  def metric_labels(self, labels, num_labels: int):
    del num_labels  # Unused: class ids are what the metrics take.
    return labels

  def split_metrics(self, scores, labels) -> Dict[str, Any]:
    from mmgenre_jax.core import metrics  # pylint: disable=g-import-not-at-top
    return metrics.singlelabel_report(scores, labels)


class _Cosine(Target):
  """COSINE: regression of the PPMI-SVD item factors (Sec 5.1)."""
  name = 'cosine'
  label_types = (MULTI_HOT, INDEX)
  output_size_field = 'factor_dim'
  unit_output = True
  uses_label_factors = True

  def loss_per_row(self, output, item_target, mask):
    from mmgenre_jax.core import losses  # pylint: disable=g-import-not-at-top
    return losses.cosine_loss_per_row(output, item_target, mask)

  def item_targets(self, labels, label_factors, num_labels: int):
    """F_d = normalize(M C_d) [B, d] (class ids become one-hot rows first)."""
    # pylint: disable=g-import-not-at-top
    import jax
    from mmgenre_jax.core import ppmi_svd
    # pylint: enable=g-import-not-at-top
    if labels.ndim == 1:
      labels = jax.nn.one_hot(labels, num_labels)
    return ppmi_svd.item_factors(labels, label_factors)

  def scores(self, output, label_factors=None):
    """cos(output, C_d[j]) in [-1, 1] (0 for a zero output or factor)."""
    # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp
    from mmgenre_jax.core import cosine
    # pylint: enable=g-import-not-at-top
    if label_factors is None:
      raise ValueError(
          "target='cosine' needs label_factors (C_d [labels, d], the "
          'label_factors.npy that training or `mmgenre factorize` writes).')
    label_factors = jnp.asarray(label_factors, jnp.float32)
    if output.shape[-1] != label_factors.shape[-1]:
      raise ValueError(
          f'cosine output has {output.shape[-1]} dimensions but the label '
          f'factors have {label_factors.shape[-1]}; set the output size '
          '(config.data.factor_dim) to the factor dimension d.')
    return cosine.l2_normalize(output) @ cosine.l2_normalize(label_factors).T


LOGISTIC = _Logistic()
SOFTMAX = _Softmax()
COSINE = _Cosine()
TARGETS: Dict[str, Target] = {t.name: t for t in (LOGISTIC, SOFTMAX, COSINE)}
NAMES = tuple(TARGETS)


def get(name: str) -> Target:
  """The Target of a config.model.target value.

  Raises:
    errors.ConfigError: naming the bad value and the valid ones.
  """
  if name not in TARGETS:
    raise errors.ConfigError(
        f'Unknown target {name!r}; use one of {NAMES} (set '
        'config.model.target).')
  return TARGETS[name]

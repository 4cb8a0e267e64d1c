"""The PPMI-SVD label factors C_d of a COSINE stage (paper Sec 5.1).

A COSINE network regresses the item factors F_d and scores label j by the
cosine to C_d[j] (core/targets.py). Training computes them once and writes
them beside the checkpoints (S/label_factors.npy, labels.tsv,
item_factors.npy, items.tsv: workdir.write_factors), where evaluation and
tagging read them back:

- config.data.label_factors given (a pipeline's W/label_factors, or a
  `mmgenre factorize` output): those factors, checked against the stage's
  labels and d;
- otherwise factorised from the stage's own train + val items: a shard
  network's albums, a fusion stage's joined rows.

  factorize_shards(shard_dir, ['audio', 'text'], 50, 'W/label_factors')
  C = label_factors.compute(config, facts, workdir, source)   # [L, d]
"""

from typing import List, Optional, Sequence, Tuple

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax.data import label_matrix
from mmgenre_jax.data import sources
from mmgenre_jax.models import registry


def used_by(config: ml_collections.ConfigDict) -> bool:
  """Whether the stage's target needs label factors (COSINE)."""
  target = registry.target(config.model)
  return target is not None and target.uses_label_factors


def factorize_shards(shard_dir, modalities: Sequence[str], dim: int,
                     out_dir) -> None:
  """Writes the PPMI-SVD factors of the shards' train + val albums to out_dir.

  A pipeline's one set of label factors (W/label_factors, the four files of
  workdir.write_factors), computed as `mmgenre factorize` computes them
  from the release files; every COSINE stage then reads it
  (config.data.label_factors).
  """
  items, matrix, names = label_matrix.shard_label_matrix(shard_dir,
                                                         modalities)
  result = ppmi_svd.factorize(matrix, int(dim))
  if jax.process_index() == 0:
    workdir_lib.write_factors(out_dir, result.label_factors,
                              result.item_factors, names, items)


def _given_factors(config: ml_collections.ConfigDict, names: Sequence[str]
                   ) -> Tuple[np.ndarray, np.ndarray, List[str]]:
  """(C_d, F_d, items) of config.data.label_factors, checked against the
  stage's labels and d."""
  factor_dir = epath.Path(config.data.label_factors)
  if not workdir_lib.factors_complete(factor_dir):
    raise errors.ConfigError(
        f'config.data.label_factors={factor_dir} holds no complete set of '
        f'factor files ({workdir_lib.LABEL_FACTORS_NPY}, '
        f'{workdir_lib.LABELS_TSV}, ...); write them with `mmgenre '
        'factorize`, or set --config.data.label_factors= to factorise this '
        "stage's own train + val items.")
  given = workdir_lib.read_lines(factor_dir / workdir_lib.LABELS_TSV)
  if list(given) != list(names):
    diff = next((i for i, (a, b) in enumerate(zip(given, names)) if a != b),
                min(len(given), len(names)))
    raise errors.ConfigError(
        f'{factor_dir / workdir_lib.LABELS_TSV} lists {len(given)} labels, '
        f'the stage trains on {len(names)}, first difference at row {diff}; '
        'factorise the labels of the same shards (or clear '
        '--config.data.label_factors).')
  factors = workdir_lib.load_label_factors(factor_dir)
  if factors.shape[1] != int(config.data.factor_dim):
    raise errors.ConfigError(
        f'{factor_dir / workdir_lib.LABEL_FACTORS_NPY} has d = '
        f'{factors.shape[1]} factors but config.data.factor_dim = '
        f'{config.data.factor_dim}; set one to the other.')
  with (factor_dir / workdir_lib.ITEM_FACTORS_NPY).open('rb') as f:
    item_factors = np.load(f)
  items = workdir_lib.read_lines(factor_dir / workdir_lib.ITEMS_TSV)
  return factors, item_factors, items


def compute(config: ml_collections.ConfigDict, facts, workdir,
            source=None) -> np.ndarray:
  """The stage's C_d, written to its workdir (module docstring).

  Args:
    config: the stage's config (a COSINE target).
    facts: its DataFacts (the label count of a fusion stage's rows).
    workdir: the stage workdir S.
    source: its data source (default: made from the config).

  Returns:
    C_d, float32 [L, d].
  """
  reads_representations = registry.network(config.model).reads_representations
  source = source or sources.make_source(config)
  if reads_representations:
    items, matrix, names = label_matrix.representation_label_matrix(
        source, int(facts.num_labels))
  else:
    modality, _ = registry.shard_input(config)
    names = source.data.manifest['labels']
  if config.data.get('label_factors'):
    factors, item_factors, items = _given_factors(config, names)
    logging.info('COSINE targets: the label factors of %s.',
                 config.data.label_factors)
  else:
    if not reads_representations:
      items, matrix, names = label_matrix.shard_label_matrix(source.data,
                                                             [modality])
    result = ppmi_svd.factorize(matrix, int(config.data.factor_dim))
    factors, item_factors = result.label_factors, result.item_factors
  if jax.process_index() == 0:
    workdir_lib.write_factors(workdir, factors, item_factors, names, items)
  return np.asarray(factors, np.float32)


def load(config: ml_collections.ConfigDict, workdir) -> Optional[np.ndarray]:
  """C_d that training saved in the workdir (COSINE), None for the others."""
  if not used_by(config):
    return None
  return workdir_lib.load_label_factors(workdir).astype(np.float32)

"""A finetuned head: new labels scored from one representation of a model.

`mmgenre finetune` (finetune.py) fits it; `Tagger.from_workdir(W, head=HEAD)`
and `mmgenre predict --head HEAD` answer with it; `mmgenre export --head`
copies it into a bundle (BUNDLE/head/, picked up when the bundle is loaded).

  HEAD/head.json           {"format", "version", "name", "labels",
                            "representation", "base_scores" (null, or
                            {"representation", "labels"}), "dim",
                            "weights", "thresholds" (null: never decided),
                            "taxonomy", "model": {"source", "identity"},
                            "examples", "heldout", "answers", "created",
                            ...}
  HEAD/weights-<sha>.npz   coef float32 [L, D (+ K)], intercept float32
                           [L], mean, scale float32 [D (+ K)] (the
                           normalisation)
  HEAD/taxonomy-<sha>.tsv  label<TAB>parent of the new labels (optional)
  HEAD/cache/              finetune's embeddings (never read by a Tagger)

A representation x [D] (Tagger.embed's vector of that name) is scored as
sigmoid(((x / |x|) - mean) / scale @ coef.T + intercept): one logistic
regression per label. With `base_scores`, the model's own K label scores s
(the `<representation>_scores` vector) follow x unnormalised, [x / |x|, s],
and a label whose coefficients are all on one score answers with the
model's own label (selection.py). head.json is written last and names the
weights and taxonomy files, whose names carry a hash of their content: a
run killed midway leaves the previous head whole.
`model.identity` hashes the model the representations came from
(`model_identity`): loading a head onto another model is refused.
"""

import dataclasses
import datetime
import hashlib
import io
import json
import os
import pathlib
from typing import Any, Dict, Mapping, Optional, Sequence

import jax
import numpy as np

from input_pipeline import fileio
from mmgenre_jax import errors
from mmgenre_jax.core import hierarchy
from mmgenre_jax.tagging.model import stages as stages_lib
from mmgenre_jax.tagging.model import taxonomy as taxonomy_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

HEAD_FORMAT = 'mmgenre_jax.head'
HEAD_VERSION = 1
HEAD_JSON = 'head.json'
WEIGHTS_PREFIX = 'weights-'
# The head's own taxonomy, in the corpus's format (label<TAB>parent).
TAXONOMY_PREFIX = 'taxonomy-'
CACHE_DIR = 'cache'
# Guards the L2 normalisation of an all-zero representation.
EPSILON = 1e-12


def l2_normalise(x: np.ndarray) -> np.ndarray:
  """float64 [..., D]: each vector over its L2 norm (zeros stay zeros)."""
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), EPSILON)


@dataclasses.dataclass
class Head:
  """A multi-label linear head over one named representation.

  Attributes:
    labels: the L new label names.
    representation: the Tagger.embed vector it reads ('fusion',
      'fusion_<stage>', 'mm_audio', ...).
    coef: float32 [L, D]; intercept: float32 [L].
    mean, scale: float32 [D (+ K)], the standardisation after L2
      normalisation (of the representation alone).
    thresholds: float64 [L], held-out F1-optimal (NaN: never decided).
    taxonomy: label -> parent over the new labels, or None;
      taxonomy_source: the file it was read from.
    base_scores: the Tagger.embed vector of the model's own K label scores
      read after the representation, or None; base_labels: their names.
    info: the rest of head.json (model identity, counts, held-out metrics).
    source: the directory it was read from (None: not saved yet).
  """
  labels: Sequence[str]
  representation: str
  coef: np.ndarray
  intercept: np.ndarray
  mean: np.ndarray
  scale: np.ndarray
  thresholds: np.ndarray
  taxonomy: Optional[Dict[str, Optional[str]]] = None
  taxonomy_source: Optional[str] = None
  base_scores: Optional[str] = None
  base_labels: Optional[Sequence[str]] = None
  info: Dict[str, Any] = dataclasses.field(default_factory=dict)
  source: Optional[pathlib.Path] = None

  @property
  def parents(self) -> Optional[np.ndarray]:
    """int [L] (hierarchy.parent_indices), or None without a taxonomy."""
    return (None if self.taxonomy is None else
            hierarchy.parent_indices(self.labels, self.taxonomy))

  def scores(self, x: np.ndarray) -> np.ndarray:
    """Label probabilities of representations.

    Args:
      x: float [..., D (+ K)], as `vector` gives it.

    Returns:
      float32 [..., L] in [0, 1].
    """
    x = np.asarray(x, np.float64)
    width = self.coef.shape[1] - len(self.base_labels or ())
    x = np.concatenate([l2_normalise(x[..., :width]), x[..., width:]], -1)
    logits = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
    # sigmoid without overflow for large negative logits.
    return np.exp(-np.logaddexp(0.0, -logits)).astype(np.float32)

  def decide(self, scores: np.ndarray) -> np.ndarray:
    """bool [..., L]: past the thresholds, closed under the taxonomy."""
    chosen = thresholds_lib.decide(scores, self.thresholds)
    parents = self.parents
    return chosen if parents is None else hierarchy.with_ancestors(
        chosen, parents)

  def vector(self, vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    """The head's representation among Tagger.embed's vectors (then the
    model's label scores, with base_scores).

    Raises:
      TaggingError: the inputs do not give it.
    """
    names = [self.representation] + [self.base_scores] * bool(
        self.base_scores)
    lacking = [name for name in names if name not in vectors]
    if lacking:
      raise errors.TaggingError(
          f'the head {self.name!r} reads the {lacking[0]!r} '
          f'representation, which these inputs do not give (they give '
          f'{sorted(vectors)}); give the modalities it was finetuned on.')
    return np.concatenate([np.asarray(vectors[name]) for name in names], -1)

  @property
  def name(self) -> str:
    return str(self.info.get('name') or 'head')

  def describe(self) -> str:
    """The `model` of a prediction (no path: a bundle's copy reads alike)."""
    return f'finetuned head {self.name!r} on {self.representation}'


# ------------------------------------------------------------ identity


def _feature_blobs(stage: stages_lib.Stage, data) -> list:
  """What a modality stage's inputs are standardised with, as bytes."""
  if stage.kind == 'audio':
    return [np.asarray(data.mean, np.float32).tobytes(),
            np.asarray(data.std, np.float32).tobytes()]
  if stage.kind == 'text':
    paths = [data.data_dir / data.manifest['text_vectorizer'],
             data.enrichment_path]
    return [pathlib.Path(p).read_bytes() for p in paths if p]
  return [json.dumps([np.asarray(data.image_mean).tolist(),
                      np.asarray(data.image_std).tolist(), data.image_size,
                      data.stored_image_size]).encode('utf-8')]


def model_identity(tagger) -> str:
  """sha256 (hex) of everything that computes a Tagger's representations.

  Every stage's name, kind, config.model, parameters and feature
  statistics: a workdir and its exported bundle hash alike, a retrained or
  re-prepared model does not.
  """
  digest = hashlib.sha256()
  for name in tagger.order:
    stage = tagger.stages[name]
    digest.update(json.dumps([name, stage.kind, stage.config.model.to_dict()],
                             sort_keys=True, default=str).encode('utf-8'))
    leaves = jax.tree_util.tree_flatten_with_path(stage.variables)[0]
    for path, leaf in sorted(leaves, key=lambda p: jax.tree_util.keystr(
        p[0])):
      array = np.ascontiguousarray(np.asarray(leaf))
      digest.update(f'{jax.tree_util.keystr(path)}:{array.dtype.str}:'
                    f'{array.shape}'.encode('utf-8'))
      digest.update(array.tobytes())
    if stage.reads_files:
      for blob in _feature_blobs(stage, tagger.feature_data(name)):
        digest.update(blob)
  return digest.hexdigest()


def check_model(head: Head, identity: str, source) -> None:
  """Raises TaggingError when the head was fitted on another model."""
  expected = (head.info.get('model') or {}).get('identity')
  if expected != identity:
    raise errors.TaggingError(
        f'the head {head.source or head.name} was finetuned on another model '
        f'({(head.info.get("model") or {}).get("source")}) than {source}: '
        'its representations would mean something else; run `mmgenre '
        f'finetune --workdir {source}` again.')


# ---------------------------------------------------------- read, write


def is_head(directory) -> bool:
  """Whether `directory` holds head.json."""
  return (pathlib.Path(directory) / HEAD_JSON).is_file()


def load(directory) -> Head:
  """Reads a head directory (module docstring).

  Raises:
    TaggingError: not a head of this format, or its files are unreadable.
  """
  directory = pathlib.Path(directory)
  if not is_head(directory):
    raise errors.TaggingError(
        f'--head {directory} has no {HEAD_JSON}: not the --out of `mmgenre '
        'finetune`.')
  info = stages_lib.read_json(directory / HEAD_JSON)
  if info.get('format') != HEAD_FORMAT:
    raise errors.TaggingError(
        f'{directory}/{HEAD_JSON} is not a finetuned head (no "format": '
        f'"{HEAD_FORMAT}"); run mmgenre finetune again.')
  try:
    with np.load(directory / info['weights'], allow_pickle=False) as data:
      arrays = {k: data[k] for k in ('coef', 'intercept', 'mean', 'scale')}
  except (OSError, KeyError, ValueError) as e:
    raise errors.TaggingError(
        f'{directory}: cannot read the head weights ({e}); run mmgenre '
        'finetune again.') from e
  tree = info.get('taxonomy') and os.fspath(directory / info['taxonomy'])
  taxonomy = taxonomy_lib.read(tree) if tree else None
  thresholds = np.asarray([np.nan if t is None else t
                           for t in info['thresholds']], np.float64)
  base = info.get('base_scores') or {}  # Absent before issue 27.
  return Head(labels=list(info['labels']),
              representation=info['representation'],
              thresholds=thresholds, taxonomy=taxonomy,
              taxonomy_source=tree or None,
              base_scores=base.get('representation'),
              base_labels=base.get('labels'), info=info,
              source=directory, **arrays)


def _content_name(prefix: str, data: bytes, suffix: str) -> str:
  """A file name that changes with its content (a new head never overwrites
  a file the previous head.json names)."""
  return f'{prefix}{hashlib.sha256(data).hexdigest()[:16]}{suffix}'


def save(head: Head, directory) -> pathlib.Path:
  """Writes `head` into `directory` crash-safely (module docstring).

  The weights and the taxonomy are written first, under names that only
  the new head.json refers to; head.json replaces the previous one
  atomically; then the previous head's files are removed. The cache folder
  is kept.
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  buffer = io.BytesIO()
  np.savez(buffer, coef=head.coef.astype(np.float32),
           intercept=head.intercept.astype(np.float32),
           mean=head.mean.astype(np.float32),
           scale=head.scale.astype(np.float32))
  weights = _content_name(WEIGHTS_PREFIX, buffer.getvalue(), '.npz')
  fileio.write_atomic(directory / weights, buffer.getvalue())
  taxonomy = None
  if head.taxonomy is not None:
    staged = directory / f'.{TAXONOMY_PREFIX}{fileio.TMP_SUFFIX}'
    taxonomy_lib.write(staged, head.taxonomy)
    taxonomy = _content_name(TAXONOMY_PREFIX, staged.read_bytes(), '.tsv')
    os.replace(staged, directory / taxonomy)
  fixed = {'format': HEAD_FORMAT, 'version': HEAD_VERSION,
           'name': head.name, 'labels': list(head.labels),
           'representation': head.representation,
           'base_scores': head.base_scores and {
               'representation': head.base_scores,
               'labels': list(head.base_labels)},
           'dim': int(head.coef.shape[1]), 'weights': weights,
           'thresholds': [None if not np.isfinite(t) else float(t)
                          for t in head.thresholds],
           'taxonomy': taxonomy}
  info = {**fixed, **{k: v for k, v in head.info.items() if k not in fixed}}
  info.setdefault('created', datetime.datetime.now(
      datetime.timezone.utc).isoformat(timespec='seconds'))
  fileio.write_json_atomic(directory / HEAD_JSON, info, indent=1)
  for prefix, kept in ((WEIGHTS_PREFIX, weights), (TAXONOMY_PREFIX, taxonomy)):
    for stale in directory.glob(f'{prefix}*'):
      if stale.name != kept:
        stale.unlink()
  head.info, head.source = info, directory
  return directory

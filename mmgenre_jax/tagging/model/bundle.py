"""A bundle: everything prediction needs, one folder (`mmgenre export`).

  BUNDLE/bundle.json             {"format", "version", "final", "source",
                                  "labels", "stages": [{"name", "dir",
                                  "kind", "inputs"}], "head": "head" or
                                  null}
  BUNDLE/genre_taxonomy.tsv      label<TAB>parent decisions follow (when
                                 the model had one; tagging/taxonomy.py)
  BUNDLE/head/                   a finetuned head (`export --head`; head.py)
                                 the bundle answers with when loaded
  BUNDLE/stages/<name>/config.json
                       params.msgpack      the best checkpoint's parameters
                                           (and batch statistics for ResNet)
                       labels.tsv
                       label_factors.npy   COSINE
                       thresholds.json     F1-optimal on validation
                       data/               modality networks: the shards'
                                           manifest.json and the feature files
                                           it names (audio_stats.npz,
                                           text_vectorizer.json, the
                                           enrichment dictionary)

Nothing refers back to the workdir, the corpus or the shards. This module is
the one home of the format: `write` makes a bundle, `read` loads its stages.
"""

import dataclasses
import os
import pathlib
import shutil
from typing import List, Mapping, Optional, Sequence, Tuple

import flax
import jax
import numpy as np

from input_pipeline import fileio
from input_pipeline import layout
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging.model import stages as stages_lib
from mmgenre_jax.tagging.model import taxonomy as taxonomy_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

BUNDLE_FORMAT = 'mmgenre_jax.bundle'
BUNDLE_VERSION = 1
STAGES_DIR = 'stages'
HEAD_DIR = 'head'


def is_bundle(directory) -> bool:
  """Whether `directory` holds bundle.json."""
  return (pathlib.Path(directory) / workdir_lib.BUNDLE_JSON).is_file()


def read(bundle) -> Tuple[List[stages_lib.Stage], str]:
  """The stages of a bundle, in order, and the final stage's name.

  Raises:
    TaggingError: not a bundle of this format, or a stage that cannot be
      read.
  """
  bundle = pathlib.Path(bundle)
  spec = stages_lib.read_json(bundle / workdir_lib.BUNDLE_JSON)
  if spec.get('format') != BUNDLE_FORMAT:
    raise errors.TaggingError(
        f'{bundle}/{workdir_lib.BUNDLE_JSON} is not a model bundle (no '
        f'"format": "{BUNDLE_FORMAT}"); re-export it.')
  found = []
  for entry in spec['stages']:
    stage = stages_lib.load_stage(bundle / entry['dir'], entry['name'])
    stage.inputs = dict(entry.get('inputs') or {})
    found.append(stage)
  return found, spec['final']


def head_dir(bundle) -> Optional[pathlib.Path]:
  """The bundle's finetuned head directory, or None when it has none."""
  bundle = pathlib.Path(bundle)
  name = stages_lib.read_json(bundle / workdir_lib.BUNDLE_JSON).get('head')
  return None if not name else bundle / name


def _write_stage(stage: stages_lib.Stage, directory: pathlib.Path,
                 data: Optional[inputs_lib.FeatureData]) -> None:
  directory.mkdir(parents=True)
  (directory / workdir_lib.CONFIG_JSON).write_text(
      stage.config.to_json(indent=2), encoding='utf-8')
  data_facts.write(directory, stage.facts)
  (directory / workdir_lib.PARAMS_MSGPACK).write_bytes(
      flax.serialization.msgpack_serialize(
          jax.tree_util.tree_map(np.asarray, stage.variables)))
  if stage.labels is not None:
    (directory / workdir_lib.LABELS_TSV).write_text(
        ''.join(f'{label}\n' for label in stage.labels), encoding='utf-8')
  if stage.label_factors is not None:
    np.save(directory / workdir_lib.LABEL_FACTORS_NPY,
            stage.label_factors.astype(np.float32))
  if stage.thresholds is not None:
    thresholds_lib.write(directory / workdir_lib.THRESHOLDS_JSON,
                         stage.thresholds, stage.labels,
                         source=stage.thresholds_source or '')
  if data is not None:
    _write_data(stage, data, directory / workdir_lib.BUNDLE_DATA_DIR)


def _write_data(stage: stages_lib.Stage, data: inputs_lib.FeatureData,
                out: pathlib.Path) -> None:
  """Copies the manifest and the feature files one modality stage needs."""
  manifest = dict(data.manifest)
  out.mkdir(parents=True)
  if stage.kind == 'audio':
    shutil.copyfile(data.data_dir / manifest['audio_stats'],
                    out / manifest['audio_stats'])
  if stage.kind == 'text':
    shutil.copyfile(data.data_dir / manifest['text_vectorizer'],
                    out / manifest['text_vectorizer'])
    if data.enrichment_path:
      shutil.copyfile(data.enrichment_path, out / layout.ENRICHMENT_TSV)
      manifest['bundled_enrichment'] = layout.ENRICHMENT_TSV
  # The shard lists point at files that are not copied; readers of a
  # bundle use only the feature metadata.
  manifest['bundle'] = True
  fileio.write_json_atomic(out / layout.MANIFEST_JSON, manifest, indent=1)


def write(out, stages: Sequence[stages_lib.Stage], final: str, source,
          labels: Sequence[str],
          data: Mapping[str, inputs_lib.FeatureData],
          taxonomy: Optional[Mapping[str, Optional[str]]] = None,
          head: Optional[head_lib.Head] = None) -> pathlib.Path:
  """Writes a self-contained bundle directory.

  Args:
    out: a new or empty directory, or an existing bundle (replaced).
    stages: the loaded stages, in order; their thresholds are written.
    final: the final stage's name.
    source: the directory the model was read from (recorded only).
    labels: the final stage's label names.
    data: stage name -> FeatureData, for every modality stage.
    taxonomy: label -> parent that decisions follow, copied as
      genre_taxonomy.tsv (tagging/taxonomy.py), or None.
    head: a finetuned head to answer with, written into head/ (without
      its embedding cache), or None.

  Returns:
    `out` as a path.

  Raises:
    TaggingError: `out` holds something else than a bundle.
  """
  out = pathlib.Path(out)
  if out.exists() and any(out.iterdir()):
    if not is_bundle(out):
      raise errors.TaggingError(
          f'--out {out} exists and is not a bundle; give a new or empty '
          'directory.')
    shutil.rmtree(out)
  out.mkdir(parents=True, exist_ok=True)
  entries = []
  for stage in stages:
    directory = f'{STAGES_DIR}/{stage.name}'
    _write_stage(stage, out / directory, data.get(stage.name))
    entries.append({'name': stage.name, 'dir': directory,
                    'kind': stage.kind, 'inputs': stage.inputs})
  if taxonomy is not None:
    taxonomy_lib.write(out / taxonomy_lib.BUNDLE_TAXONOMY_TSV, taxonomy)
  if head is not None:
    # A copy: saving would repoint the caller's head at the bundle.
    head_lib.save(dataclasses.replace(head, info=dict(head.info)),
                  out / HEAD_DIR)
  workdir_lib.write_json(
      out / workdir_lib.BUNDLE_JSON,
      {'format': BUNDLE_FORMAT, 'version': BUNDLE_VERSION, 'final': final,
       'source': os.fspath(source), 'labels': list(labels),
       'stages': entries, 'head': None if head is None else HEAD_DIR})
  return out

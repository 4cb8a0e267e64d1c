"""What the figures read from a pipeline workdir (reporting/figures.py).

The stages of W/pipeline.json (the lowest seed where a pipeline repeats
them), their saved representations, TensorBoard scalars and shard covers,
album label sets, the genre taxonomy and the paper's single-parent-label
subset (Sec 7.5). Anything missing raises MissingInput, whose message is
the line `mmgenre figures` prints for the skipped figure.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from etils import epath
import numpy as np

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import mumu
from mmgenre_jax.core import plots
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.data import representations
from mmgenre_jax.pipelines import definition

# Seed of the sample drawn when the subset is larger than a figure shows.
SAMPLE_SEED = 0


class MissingInput(Exception):
  """A figure cannot be drawn from this workdir; the message says why."""


# ------------------------------------------------------- the workdir's parts


@dataclasses.dataclass
class Pipeline:
  """A pipeline workdir W and its pipeline.json (docs/workdirs.md §3)."""
  workdir: epath.Path
  info: Dict[str, Any]

  @classmethod
  def read(cls, workdir) -> 'Pipeline':
    workdir = epath.Path(workdir)
    info = workdir_lib.read_json(workdir / workdir_lib.PIPELINE_JSON,
                                 strict=True)
    if info is None:
      raise FileNotFoundError(
          f'{workdir / workdir_lib.PIPELINE_JSON} not found: not a pipeline '
          'workdir (python main.py --config=configs/mumu_cosine.py '
          '--workdir=W writes one).')
    return cls(workdir, info)

  def stage_dir(self, stage: Mapping[str, Any]) -> epath.Path:
    return workdir_lib.stage_dir(self.workdir, stage)

  def stages(self, predicate: Callable[[Mapping[str, Any]], bool]
             ) -> List[Dict[str, Any]]:
    """Trained stages matching `predicate`, of the lowest seed present."""
    found = [s for s in self.info['stages'] if predicate(s) and
             workdir_lib.is_training_done(self.stage_dir(s))]
    if not found:
      return []
    lowest = min(seed(s) for s in found)
    return [s for s in found if seed(s) == lowest]

  def row_stage(self, modality: str) -> Optional[Dict[str, Any]]:
    """The trained stage of results.json row `modality` (lowest seed)."""
    found = self.stages(lambda s: (s.get('row') or {}).get('modality') ==
                        modality and definition.recorded_scores_labels(s))
    return found[0] if found else None

  def scored(self, stage: Mapping[str, Any], split: str
             ) -> Dict[str, np.ndarray]:
    """The split's representations file of the output carrying scores."""
    try:
      return representations.load_representations(
          self.stage_dir(stage), stage['outputs'][0], split)
    except FileNotFoundError as e:
      raise MissingInput(str(e)) from e


def seed(stage: Mapping[str, Any]) -> int:
  return int((stage.get('row') or {}).get('seed') or 0)


def label_names(data: Mapping[str, np.ndarray], where) -> List[str]:
  if representations.LABEL_NAMES not in data:
    raise MissingInput(f'{where} has no label_names; extract it again '
                       '(--mode=extract --split=all).')
  return [str(n) for n in data[representations.LABEL_NAMES]]


def image_stage(pipeline: Pipeline) -> Dict[str, Any]:
  found = pipeline.stages(lambda s: definition.recorded_reads_shards(s) and
                          s['outputs'] == ['image'])
  if not found:
    raise MissingInput('the pipeline has no trained cover (image) stage.')
  return found[0]


def launch_dir(pipeline: Pipeline, stage) -> Optional[epath.Path]:
  """The directory the pipeline was launched from, or None when unknown.

  pipeline.json and config.json name paths relative to it
  (runs/mumu_cosine/text, runs/data/mumu_shards): it is what is left of the
  stage's directory W/<name> once the recorded relative path is taken off
  its end.
  """
  recorded = epath.Path(stage['workdir'])
  found = epath.Path(pipeline.stage_dir(stage)).absolute()
  depth = len(recorded.parts)
  if recorded.is_absolute() or found.parts[-depth:] != recorded.parts:
    return None
  return found.parents[depth - 1]


def stage_shard_dir(pipeline: Pipeline, stage) -> epath.Path:
  """The shards a network stage trained on (its config.json data.shard_dir).

  A relative shard_dir is read from where the pipeline was launched
  (launch_dir), so that runs read from another working directory are not
  paired with that directory's shards of the same name.
  """
  config = workdir_lib.read_json(
      pipeline.stage_dir(stage) / workdir_lib.CONFIG_JSON, strict=True) or {}
  shard_dir = (config.get('data') or {}).get('shard_dir')
  root = launch_dir(pipeline, stage)
  candidates = ([root / shard_dir] if shard_dir and root is not None and
                not epath.Path(shard_dir).is_absolute() else [])
  candidates += [epath.Path(shard_dir)] if shard_dir else []
  for path in candidates:
    if (path / layout.MANIFEST_JSON).exists():
      return path
  raise MissingInput(f'the shards of stage {stage["name"]!r} '
                     f'({shard_dir!r}) are not there to read from.')


def read_scalars(stage_dir, tags: Sequence[str]
                 ) -> Dict[str, tuple]:
  """tag -> (steps int [T], values float [T]) from S's TensorBoard events.

  Reads only the stage's own event files (not eval_<split>/); a step
  written twice (a resumed run) keeps its last value.
  """
  # TensorBoard's reader ships with TensorFlow; imported here so that the
  # report stays light when no curve is drawn.
  from tensorboard.backend.event_processing import event_file_loader  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  series = {tag: {} for tag in tags}
  for path in sorted(epath.Path(stage_dir).glob('events.out.tfevents.*')):
    # TensorFlow's own GCS client would read a gs:// file (and cannot be
    # pointed at an emulator): read a local copy made through fileio.
    with fileio.local_copy(path) as local:
      events = list(event_file_loader.EventFileLoader(str(local)).Load())
    for event in events:
      for value in event.summary.value:
        if value.tag in series:
          number = (tensor_util.make_ndarray(value.tensor)
                    if value.HasField('tensor') else value.simple_value)
          series[value.tag][int(event.step)] = float(number)
  return {tag: (np.array(sorted(v), np.int64),
                np.array([v[k] for k in sorted(v)], np.float64))
          for tag, v in series.items() if v}


def read_covers(shard_dir, split: str, limit: Optional[int] = None):
  """(album ids str [N], covers uint8 [N, C, C, 3]) of a shard split.

  One cover per album (MSD-I shards repeat it on every track row), in shard
  order, the first `limit`; the evaluation view (centre crop of the stored
  cover) with the standardisation undone for display.
  """
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.features import normalisation
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.records import shard_reader as pipeline_lib
  mean, std = normalisation.image_normalisation(
      pipeline_lib.load_manifest(shard_dir))
  covers = {}
  dataset = pipeline_lib.make_dataset(shard_dir, 'image', split,
                                      batch_size=64)
  for batch in pipeline_lib.as_numpy_batches(dataset):
    pixels = np.clip(np.round((batch['image'] * std + mean) * 255.0), 0, 255)
    for album, cover in zip(batch['album_id'], pixels.astype(np.uint8)):
      if limit is None or len(covers) < limit:
        covers.setdefault(str(album), cover)
    if limit is not None and len(covers) >= limit:
      break
  if not covers:
    return np.zeros([0], str), np.zeros([0, 1, 1, 3], np.uint8)
  return np.array(list(covers), dtype=str), np.stack(list(covers.values()))


# ---------------------------------------------------------- label subsets


def labels_by_album(data: Mapping[str, np.ndarray], names: Sequence[str],
                    into: Optional[Dict[str, List[str]]] = None
                    ) -> Dict[str, List[str]]:
  """Album id -> label names of a representations file's rows.

  Track rows (MSD-I) give their album the first track's labels.
  """
  out = {} if into is None else into
  for album, labels in zip(data['album_ids'], data['labels']):
    out.setdefault(str(album), [names[int(labels)]] if np.ndim(labels) == 0
                   else [names[j] for j in np.flatnonzero(labels)])
  return out


def album_labels(pipeline: Pipeline) -> Dict[str, List[str]]:
  """Album id -> its label names, from the stages' saved representations.

  Read from the first trained stage (the final one first) that has
  extracted all its splits.
  """
  stages = sorted(pipeline.stages(definition.recorded_scores_labels),
                  key=lambda s: s['name'] != pipeline.info.get('final'))
  for stage in stages:
    try:
      splits = [pipeline.scored(stage, split)
                for split in representations.SPLITS]
    except MissingInput:
      continue
    names = label_names(splits[0], pipeline.stage_dir(stage))
    out = {}
    for data in splits:
      labels_by_album(data, names, out)
    return out
  raise MissingInput('no stage has extracted its representations with '
                     'labels.')


def find_taxonomy(pipeline: Pipeline, path=None) -> Dict[str, Optional[str]]:
  """The genre taxonomy: `path`, else the one beside the prepared corpus.

  The shards' manifest records the corpus directory (`args.data`) that
  `mmgenre prepare` read; its genre_taxonomy.tsv is the hierarchy.
  """
  if path is None:
    stage = pipeline.stages(definition.recorded_reads_shards)
    if not stage:
      raise MissingInput('no trained network stage names the shards.')
    shard_dir = stage_shard_dir(pipeline, stage[0])
    manifest = workdir_lib.read_json(shard_dir / layout.MANIFEST_JSON) or {}
    path = mumu.corpus_taxonomy_path(manifest)
    if path is None:
      raise MissingInput(
          f'no genre taxonomy beside the corpus of {shard_dir}; pass '
          '--taxonomy FILE (label<TAB>parent, docs/data_formats.md §1).')
  return mumu.read_taxonomy(path)


def single_parent_subset(ids: Sequence[str],
                         labels: Mapping[str, Sequence[str]],
                         taxonomy: Optional[Mapping[str, Optional[str]]]
                         ) -> tuple:
  """(positions into ids, top-level genre str [M]) of the single-parent items.

  Items whose labels have exactly one top-level genre (mumu.top_level_genre);
  single-label datasets (taxonomy None) keep every labelled item with its
  one label. Items without labels are left out.
  """
  keep, parents = [], []
  for i, item in enumerate(ids):
    names = labels.get(str(item))
    if not names:
      continue
    if taxonomy is None:
      parent = names[0] if len(names) == 1 else None
    else:
      parent = mumu.top_level_genre(names, taxonomy)
    if parent is not None:
      keep.append(i)
      parents.append(parent)
  return np.array(keep, np.int64), np.array(parents, dtype=str)


def drawn_subset(pipeline: Pipeline, ids: Sequence[str],
                  labels: Mapping[str, Sequence[str]], taxonomy_path,
                  limit: int) -> tuple:
  """single_parent_subset of ids, a seeded sample of at most `limit`.

  The taxonomy is `taxonomy_path`, else the corpus's (find_taxonomy); a
  single-label pipeline needs none.
  """
  taxonomy = (None if all(len(v) <= 1 for v in labels.values())
              else find_taxonomy(pipeline, taxonomy_path))
  keep, parents = single_parent_subset(ids, labels, taxonomy)
  if len(keep) > limit:
    sample = np.sort(np.random.default_rng(SAMPLE_SEED).choice(
        len(keep), limit, replace=False))
    keep, parents = keep[sample], parents[sample]
  if len(keep) < plots.TSNE_MIN_POINTS:
    raise MissingInput(f'only {len(keep)} albums with a single parent '
                       'label.')
  return keep, parents

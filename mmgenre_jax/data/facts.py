"""What a stage's data says: a small frozen record, found once when it starts.

The config stays what the user asked for (S/config.json). What only the data
can tell (the number of labels and their format, the tf-idf vocabulary, the
cover sizes, the sizes of the representations a fusion or alignment stage
reads) is a `DataFacts`: computed from the shards' manifest or the joined
representations when a stage starts, saved beside config.json as
S/data_facts.json (docs/workdirs.md §1), and passed explicitly to what builds
the network (models/registry.py `create_model(config.model, facts)`) or feeds
it.

  facts = data_facts.from_manifest(config, manifest)
  model = registry.create_model(config.model, facts)
  data_facts.write(workdir, facts)
  data_facts.read(workdir, config)        # tagging, evaluation

A workdir written before data_facts.json existed kept these sizes in its
config.json; `read` then takes them from there (`declared`).

A config that contradicts its data is an errors.ConfigError naming the field
and the fix; a config default the data overrides (config.data.num_labels =
250 on a corpus of 45 labels) is a warning.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional

from absl import logging
from etils import epath
import ml_collections
import numpy as np

from input_pipeline.features import frontends
from mmgenre_jax import errors
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import targets
from mmgenre_jax.models import registry


@dataclasses.dataclass(frozen=True)
class DataFacts:
  """The sizes a stage's data decides.

  Attributes:
    num_labels: L, the labels of the data (None: a stage directory that
      does not say; tagging reads its labels.tsv).
    label_type: targets.MULTI_HOT ([N, L] rows) or targets.INDEX (class ids).
    num_outputs: K, the output layer's width (the target's: L, or d for
      COSINE); None for the alignment space.
    vocab_size: the tf-idf vocabulary, the text network's input (text
      shards), else None.
    image_size: the crop C the image network sees (image shards), else None.
    stored_image_size: the side S of the stored covers the crops come from.
    input_sizes: input name -> R of each representation a fusion or
      alignment stage reads; empty for shard networks.
    frontend: the name of the audio front end that computed the audio
      shards (input_pipeline.features.frontends), recorded so that tagging
      feeds the network what it was trained on; None for other data, and
      in a data_facts.json from before the record (`audio_frontend`).
  """
  num_labels: Optional[int]
  label_type: str
  num_outputs: Optional[int] = None
  vocab_size: Optional[int] = None
  image_size: Optional[int] = None
  stored_image_size: Optional[int] = None
  input_sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
  frontend: Optional[str] = None

  def audio_frontend(self) -> frontends.FrontEnd:
    """The front end of the audio this stage was trained on.

    A stage trained before the record (frontend None) was trained on
    shards from before it: frontends.UNRECORDED (librosa soxr_hq).
    """
    return frontends.recorded({frontends.MANIFEST_KEY: self.frontend})

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self) | {'input_sizes': dict(self.input_sizes)}

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> 'DataFacts':
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in value.items() if k in fields})


def _where(config: ml_collections.ConfigDict) -> str:
  """The records a shard network reads, for messages."""
  if config.data.get('source') == 'tfds':
    data_dir = config.data.get('tfds_data_dir') or "TFDS's default data_dir"
    return f'the TFDS {config.data.dataset} datasets in {data_dir}'
  return str(config.data.shard_dir)


def _warn_if_default_differs(config, field: str, value: int,
                             source: str) -> None:
  """A config.data default the data overrides is a warning, not an error."""
  old = config.data.get(field)
  if old != value:
    logging.warning('config.data.%s=%s differs from the prepared data (%s '
                    '= %s); using %s.', field, old, source, value, value)


def _check_model_field(config, field: str, data_field: str, value: int,
                       what: str) -> None:
  """An explicit config.model size must agree with the data.

  A field left linked to its config.data default (configs/*.py link
  input_dim to data.text_vocab_size, image_size to data.image_size) follows
  the data; one set to another value is a contradiction.
  """
  _warn_if_default_differs(config, data_field, value, data_field.replace(
      'text_', ''))
  current = config.model.get(field)
  if current is None or int(current) == int(value) or (
      int(current) == int(config.data.get(data_field) or -1)):
    return
  raise errors.ConfigError(
      f'config.model.{field}={current} but the shards in {_where(config)} '
      f'have {what} {value}; set --config.model.{field}={value} (or leave it '
      'linked to config.data).')


def _num_outputs(config, num_labels: int) -> Optional[int]:
  """K of the config's target, after checking config.model.num_outputs."""
  target = registry.target(config.model)
  if target is None:
    return None
  declared = target.output_size(config.data)
  if int(config.model.num_outputs) != declared:
    raise errors.ConfigError(
        f'config.model.num_outputs={config.model.num_outputs} but target '
        f'{target.name!r} needs {declared} outputs; keep num_outputs '
        'linked with configs.default.set_target().')
  return target.output_size(config.data, num_labels)


def from_manifest(config: ml_collections.ConfigDict,
                  manifest: Mapping[str, Any]) -> DataFacts:
  """The facts of a shard network's records (their manifest.json).

  Args:
    config: the experiment config (left unchanged).
    manifest: the manifest of its records (data_sources.open_data).

  Raises:
    errors.ConfigError: the records lack the network's modality, hold labels
      its target cannot train on, or contradict an explicit config.model
      size.
  """
  modality, _ = registry.shard_input(config)
  if modality not in manifest['modalities']:
    raise errors.ConfigError(
        f'{_where(config)} has no {modality!r} shards (it has '
        f'{sorted(manifest["modalities"])}), which config.model.name='
        f'{config.model.name!r} needs; prepare a corpus with {modality}.')
  label_type = manifest['label_type']
  registry.target(config.model).check_label_type(
      label_type, f'{_where(config)} (dataset {manifest["dataset"]!r})')
  num_labels = len(manifest['labels'])
  _warn_if_default_differs(config, 'num_labels', num_labels,
                           'number of labels')
  vocab_size = image_size = stored_image_size = frontend = None
  if modality == 'audio':
    frontend = frontends.recorded(manifest).name
  if modality == 'text':
    vocab_size = int(manifest['vocab_size'])
    _check_model_field(config, 'input_dim', 'text_vocab_size', vocab_size,
                       'tf-idf vocabulary size')
  if modality == 'image':
    # Imported here: reading a stage's facts back (tagging) needs no
    # TensorFlow.
    # pylint: disable-next=g-import-not-at-top
    from input_pipeline.records import shard_reader
    # The crop C the network sees and the side S of the stored covers it is
    # cropped from (S = C in shards from before stored_image_size).
    image_size, stored_image_size = shard_reader.image_sizes(manifest)
    _check_model_field(config, 'image_size', 'image_size', image_size,
                       'image size')
  return DataFacts(num_labels=num_labels, label_type=label_type,
                   num_outputs=_num_outputs(config, num_labels),
                   vocab_size=vocab_size, image_size=image_size,
                   stored_image_size=stored_image_size, frontend=frontend)


def _warn_if_sizes_differ(config, sizes: Mapping[str, int]) -> None:
  """The config's input sizes (pipelines link them) vs the extracted ones."""
  for dotted, value in registry.input_dim_fields(config, sizes).items():
    field = dotted.split('.', 1)[1]
    current = config.model.get(field)
    if current is None:
      continue
    if isinstance(value, Mapping):
      if dict(current) != dict(value):
        logging.warning('config.model.%s=%s differs from the extracted '
                        'representations %s; using the latter.', field,
                        dict(current), dict(value))
    elif int(current) != int(value):
      logging.warning('config.model.%s=%s but the extracted '
                      'representations have %d dimensions; using %d.',
                      field, current, value, value)


def from_representations(config: ml_collections.ConfigDict,
                         joined) -> DataFacts:
  """The facts of a fusion / alignment stage: its joined training split.

  Args:
    config: the experiment config (left unchanged).
    joined: representations.Joined of the training split.

  Raises:
    errors.ConfigError: an input the network reads is not in
      config.data.inputs, or the labels do not fit the target.
  """
  labels = np.asarray(joined.labels)
  if labels.ndim == 2:
    num_labels = int(labels.shape[1])
    _warn_if_default_differs(config, 'num_labels', num_labels,
                             'labels per row of the representations')
  elif joined.label_names is not None:
    num_labels = len(joined.label_names)
    _warn_if_default_differs(config, 'num_labels', num_labels,
                             'label names of the representations')
  else:
    num_labels = int(config.data.num_labels)
  dims = {n: int(v.shape[1]) for n, v in joined.inputs.items()}
  names = registry.input_names(config)
  missing = [n for n in names if n not in dims]
  if missing:
    raise errors.ConfigError(
        f'config.model.modalities={names} but config.data.inputs has no '
        f'{missing} (it has {sorted(dims)}); add e.g. '
        f'--config.data.inputs.{missing[0]}=<stage workdir>.')
  sizes = {n: dims[n] for n in names}
  _warn_if_sizes_differ(config, sizes)
  label_type = targets.MULTI_HOT if labels.ndim == 2 else targets.INDEX
  target = registry.target(config.model)
  if target is not None:
    target.check_label_type(label_type, f'the inputs {sorted(dims)}')
  return DataFacts(num_labels=num_labels, label_type=label_type,
                   num_outputs=_num_outputs(config, num_labels),
                   input_sizes=sizes)


def declared(config: ml_collections.ConfigDict) -> DataFacts:
  """The facts a config states itself, without data.

  What a summary without data builds, and how a workdir written before
  data_facts.json is read: its config.json carries the sizes its data gave.
  The label format is not recorded there; single-label targets train on
  class ids, the others are taken as multi-hot.
  """
  model, data = config.model, config.get('data') or ml_collections.ConfigDict()
  net = registry.network(model)
  target = registry.target(model)
  sizes = {}
  if net.reads_representations:
    fields = {'input_dims': model.get('input_dims'),
              'audio_dim': model.get('audio_dim'),
              'visual_dim': model.get('visual_dim')}
    if fields['input_dims']:
      sizes = {k: int(v) for k, v in dict(fields['input_dims']).items()}
    elif fields['audio_dim'] and data.get('inputs'):
      audio, visual = registry.alignment_input_names(config)
      sizes = {audio: int(fields['audio_dim']),
               visual: int(fields['visual_dim'])}
  modality = net.shard_input[0] if net.shard_input else None
  num_labels = data.get('num_labels')
  return DataFacts(
      num_labels=None if num_labels is None else int(num_labels),
      label_type=(targets.INDEX if target is not None and target.single_label
                  else targets.MULTI_HOT),
      num_outputs=None if target is None else int(model.num_outputs),
      vocab_size=(int(model.input_dim) if modality == 'text' and
                  model.get('input_dim') else None),
      image_size=(int(model.image_size) if modality == 'image' and
                  model.get('image_size') else None),
      stored_image_size=(int(data.get('stored_image_size') or 0) or None
                         if modality == 'image' else None),
      input_sizes=sizes)


def write(workdir, facts: DataFacts) -> None:
  """S/data_facts.json, atomically."""
  workdir_lib.write_json(epath.Path(workdir) / workdir_lib.DATA_FACTS_JSON,
                         facts.to_json(), sort_keys=True)


def trained(workdir) -> Optional[DataFacts]:
  """S/data_facts.json of a stage trained there, or None (not trained, or
  trained before data_facts.json: its config.json holds the sizes)."""
  value = workdir_lib.read_json(epath.Path(workdir) /
                                workdir_lib.DATA_FACTS_JSON, strict=True)
  return None if value is None else DataFacts.from_json(value)


def check_frontend(workdir, data: frontends.FrontEnd, data_what: str
                   ) -> None:
  """Refuses features of another front end than the stage in `workdir` was
  trained on (nothing trained there: nothing to refuse).

  A stage trained on shards of one audio front end must not resume, be
  evaluated, extract or be skipped as complete by a pipeline on shards
  prepared again with another: its statistics and features differ.

  Args:
    workdir: a stage workdir S.
    data: the front end of the shards that would feed it.
    data_what: what those shards are, for the message.

  Raises:
    frontends.FrontEndMismatch: naming both front ends and the fix.
  """
  found = trained(workdir)
  if found is not None:
    frontends.check_same(found.audio_frontend(), data,
                         model_what=f'the stage in {workdir}',
                         data_what=data_what)


def read(workdir, config: ml_collections.ConfigDict) -> DataFacts:
  """S/data_facts.json, or (a workdir from before it) declared(config).

  Args:
    workdir: a stage workdir or a bundle's stage directory.
    config: its config.json.
  """
  found = trained(workdir)
  return declared(config) if found is None else found

"""What the TFDS builders of MuMu and MSD-I share: examples from the shards.

mumu.py and msdi.py define the builders (one config per record kind:
`audio`, `audio_windows`, `image`, `text`); this module builds them. A build
turns the manual directory into a TFDS dataset of one record kind, in three
steps:

  1. Shards. The manual dir is a corpus (docs/data_formats.md §1):
     input_pipeline.prepare.job (`mmgenre prepare`: every modality, with
     whole-track windows) runs once into
     DOWNLOAD_DIR/mmgenre_prepare/<dataset>-<digest of corpus and settings>,
     and every config with the same settings reuses that run
     (prepare_job.is_complete). Or the manual dir is already a complete
     `mmgenre prepare --out` directory: its shards are used as they are,
     once their settings are checked against the config's.
  2. Examples. _generate_examples yields the records of the shards, decoded
     (tfrecord.decode_example), in shard order (disable_shuffling, keyed by
     their index): the dataset holds the same examples as the shards, in
     the same order, with the same keys, dtypes and shapes
     (tfrecord.feature_specs; covers as lossless PNG).
  3. Statistics. The run's manifest, its `modalities` cut to this record
     kind and without the shard list, goes into the dataset's metadata
     (tfds.core.MetadataDict: metadata.json), and its side files
     (audio_stats.npz, text_vectorizer.json, skipped.tsv, the splits) are
     copied beside it: what the trainer standardises with
     (input_pipeline/tfds/reader.py reads them back).

The examples come from the same code as the shards: prepare runs the
per-item feature functions of prepare_workers / prepare_shards in its
process pool, or, with the builder's beam_pipeline_options, the Beam
pipeline of input_pipeline/beam/prepare.py, which writes the same shards.
With beam_pipeline_options TFDS also writes the dataset with Beam on that
runner: step 2 is then a PTransform (beam_examples: one shard a task,
the same keys), so both the preparation and the writing run on the
workers; the examples and their order are the same either way.
"""

import dataclasses
import hashlib
import inspect
import json
import os
import pathlib
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import layout
from input_pipeline.records import shard_reader
from input_pipeline.prepare import job as prepare_job
from input_pipeline.formats import splits as splits_lib
from input_pipeline.tfds import reader as tfds_data
from input_pipeline.records import tfrecord
from input_pipeline.features import image as image_lib

# Under the download dir: the prepared shards that every config of the same
# corpus and settings is built from.
PREPARE_CACHE_DIR = 'mmgenre_prepare'
# The Beam counter of the examples beam_examples read (builder.beam_examples).
BEAM_COUNTER = ('mmgenre_tfds', 'examples')
# What each key of a record is (the dataset's feature docs).
FEATURE_DOCS = {
    'track_id': 'Million Song Dataset track id.',
    'album_id': 'Album id: the Amazon id (MuMu), the album index (MSD-I).',
    'patch': 'Raw CQT patch in dB, [frames, bins] (paper Sec 3.1: one '
             'seeded 15 s crop); standardise with audio_stats.npz.',
    'window': 'Index of this whole-track window in its track.',
    'num_windows': 'Whole-track windows of the track.',
    'image': 'Cover, the centre square resized to the stored side S.',
    'tfidf_indices': 'Vocabulary indices of the tf-idf row (fitted on train).',
    'tfidf_values': 'tf-idf values at tfidf_indices.',
    'labels': 'Label indices into the manifest\'s `labels` (MuMu: the '
              'album\'s labels; MSD-I: the one genre).',
}
HOMEPAGE = 'https://www.upf.edu/web/mtg/mumu'
CITATION = """@article{oramas2018multimodal,
  title={Multimodal Deep Learning for Music Genre Classification},
  author={Oramas, Sergio and Barbieri, Francesco and Nieto, Oriol and
          Serra, Xavier},
  journal={Transactions of the International Society for Music Information
           Retrieval},
  volume={1}, number={1}, pages={4--21}, year={2018}
}"""


@dataclasses.dataclass(eq=False)
class PreparedConfig(tfds.core.BuilderConfig):
  """One record kind of a dataset and the settings it is prepared with.

  The registered configs (BUILDER_CONFIGS) have the defaults of `mmgenre
  prepare`; other settings are another config object with its own name
  (docs/scale.md), e.g. PreparedConfig(name='image_96', kind='image',
  image_size=96).

  Attributes:
    kind: the record kind, one of tfrecord.RECORD_KINDS.
    image_size: C, the network's input crop (`mmgenre prepare
      --image-size`); covers are stored at S = stored_size(C).
    seed: the split seed (MuMu's computed split) and audio crop seed
      (--seed).
    min_albums: MuMu: keep labels on >= this many albums (--min-albums).
  """
  kind: str = 'audio'
  image_size: int = prepare_job.DEFAULT_IMAGE_SIZE
  seed: int = 0
  min_albums: int = 1

  def settings(self) -> Dict[str, int]:
    """The prepare() arguments the config decides."""
    return {'image_size': self.image_size, 'seed': self.seed,
            'min_albums': self.min_albums}


def configs_for(dataset: str) -> Tuple[PreparedConfig, ...]:
  """The registered configs of a dataset: one per record kind, defaults."""
  kinds = tfrecord.DATASET_MODALITIES[dataset] + (tfrecord.AUDIO_WINDOWS,)
  return tuple(PreparedConfig(name=kind, kind=kind,
                              description=f'The `{kind}` records of `mmgenre '
                              'prepare` (docs/data_formats.md §3).')
               for kind in sorted(kinds))


def record_specs(dataset: str,
                 config: PreparedConfig) -> Dict[str, tfrecord.FeatureSpec]:
  """The record layout of a config, as prepare writes it."""
  return tfrecord.feature_specs(
      dataset, config.kind, patch_shape=prepare_job.PATCH_SHAPE,
      image_size=image_lib.stored_size(config.image_size))


def feature(key: str, spec: tfrecord.FeatureSpec):
  """The TFDS feature of one record key; decodes to what parse_example gives.

  Ids are Text (tf.string scalars), covers lossless PNG Images (uint8
  [S, S, 3]), the rest Tensors of the spec's shape (None: 1-D, any length).
  """
  doc = FEATURE_DOCS.get(key)
  if spec.dtype == 'bytes':
    return tfds.features.Text(doc=doc)
  if spec.dtype == 'uint8':
    return tfds.features.Image(shape=spec.shape, encoding_format='png',
                               doc=doc)
  shape = (None,) if spec.shape is None else spec.shape
  dtype = np.int64 if spec.dtype == 'int64' else np.float32
  return tfds.features.Tensor(shape=shape, dtype=dtype, doc=doc)


def dataset_manifest(manifest: Mapping[str, Any], kind: str,
                     prepared_from) -> Dict[str, Any]:
  """The metadata of a TFDS dataset: the run's manifest for one record kind.

  `modalities` keeps only `kind`, its `features` and `counts` (the shard
  list does not describe the TFDS files); `tfds` records where the shards
  came from. The side files it names are copied beside it.
  """
  entry = manifest['modalities'][kind]
  out = {key: value for key, value in manifest.items()
         if key != 'modalities'}
  out['modalities'] = {kind: {'features': entry['features'],
                              'counts': entry['counts']}}
  out['tfds'] = {'kind': kind, 'prepared_from': os.fspath(prepared_from)}
  return out


def side_files(manifest: Mapping[str, Any]) -> Iterator[str]:
  """The files of a shard directory, besides shards, that describe the run."""
  for key in ('audio_stats', 'text_vectorizer', 'skipped_file'):
    if manifest.get(key):
      yield manifest[key]
  splits_dir = manifest.get('splits_dir') or layout.SPLITS_DIR
  prefixes = [splits_lib.ITEMS_PREFIX]
  if manifest.get('track_split_sizes'):  # The authors' MuMu track set.
    prefixes.append(splits_lib.TRACKS_PREFIX)
  for prefix in prefixes:
    for name in splits_lib.SPLIT_NAMES:
      yield splits_lib.split_file(pathlib.PurePosixPath(splits_dir), name,
                                  prefix).as_posix()


class PreparedBuilder(tfds.core.GeneratorBasedBuilder,
                      skip_registration=True):
  """A dataset whose examples are the records of `mmgenre prepare`.

  Subclasses set `name`, DATASET, RELEASE_FILE, SETTINGS, BUILDER_CONFIGS
  and MANUAL_DOWNLOAD_INSTRUCTIONS.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'The records of `mmgenre prepare` (manifest '
                            f'format {prepare_job.MANIFEST_VERSION}).'}
  # 'mumu' or 'msdi' (tfrecord.DATASET_MODALITIES).
  DATASET = ''
  # The file that makes the manual dir a corpus of this dataset.
  RELEASE_FILE = ''
  # The PreparedConfig settings that change what this dataset's prepare
  # writes (MSD-I ignores min_albums).
  SETTINGS = ('image_size', 'seed')
  DESCRIPTION = ''

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """The file of the builder class (where TFDS looks for checksums).

    TFDS 4.9.10's own code_path imports importlib_resources, which it
    declares only for Python < 3.9 (tensorflow/datasets#11212), so on 3.11
    it fails where that package is not installed; these builders are plain
    files, which inspect finds.
    """
    return epath.Path(inspect.getfile(cls))

  def __init__(self, *, workers: Optional[int] = None,
               beam_pipeline_options: Optional[str] = None, **kwargs):
    """As tfds.core.GeneratorBasedBuilder.

    Args:
      workers: processes computing audio and covers when the manual dir is a
        corpus (prepare's --workers; default os.cpu_count()). They re-import
        the main module: build from a script file whose top-level code is
        under `if __name__ == '__main__':` (or `mmgenre tfds`), not from
        standard input, or give workers=1 (input_pipeline/prepare/
        workers.py; else a WorkerStartError, no item tried).
      beam_pipeline_options: prepare's --beam_pipeline_options: compute the
        features of a corpus with the Beam pipeline of
        input_pipeline/beam/prepare.py on that runner instead of the pool,
        and write the TFDS files with Beam on it too (beam_examples).
        Neither this nor `workers` changes the examples.
      **kwargs: tfds.core.GeneratorBasedBuilder's (data_dir, config, ...).
    """
    self._executor = {'workers': workers}
    self._beam_pipeline_options = beam_pipeline_options
    if beam_pipeline_options is not None:
      self._executor['beam_pipeline_options'] = beam_pipeline_options
    # Examples the last Beam build read from the shards (None: no Beam).
    self.beam_examples: Optional[int] = None
    super().__init__(**kwargs)

  def download_and_prepare(self, *, download_config=None, **kwargs):
    """As TFDS's. With beam_pipeline_options, TFDS writes the dataset with
    Beam on those options, unless download_config names its own
    beam_options or beam_runner."""
    if self._beam_pipeline_options is not None:
      download_config = download_config or tfds.download.DownloadConfig()
      if (download_config.beam_options is None and
          download_config.beam_runner is None):
        # pylint: disable-next=g-import-not-at-top
        # Beam only for its builds.
        from input_pipeline.beam import options as beam_options
        download_config = dataclasses.replace(
            download_config, beam_options=beam_options.pipeline_options(
                self._beam_pipeline_options))
    return super().download_and_prepare(download_config=download_config,
                                        **kwargs)

  def _process_pipeline_result(self, pipeline_result) -> None:
    """Keeps the examples the Beam build read (BEAM_COUNTER)."""
    beam = tfds.core.lazy_imports.apache_beam
    counters = pipeline_result.metrics().query(
        beam.metrics.MetricsFilter().with_name(BEAM_COUNTER[1]))['counters']
    self.beam_examples = sum(c.committed or 0 for c in counters
                             if c.key.metric.namespace == BEAM_COUNTER[0])

  def _info(self) -> tfds.core.DatasetInfo:
    specs = record_specs(self.DATASET, self.builder_config)
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict(
            {key: feature(key, spec) for key, spec in specs.items()}),
        homepage=HOMEPAGE,
        citation=CITATION,
        metadata=tfds.core.MetadataDict(),
        # Examples keep the shards' order (keyed by their index), so an
        # unshuffled read gives the records in the shard reader's order.
        disable_shuffling=True)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    shard_dir = self._shard_dir(dl_manager)
    manifest = shard_reader.load_manifest(shard_dir)
    entry = self._checked_entry(manifest, shard_dir)
    self.info.metadata[tfds_data.MANIFEST_KEY] = dataset_manifest(
        manifest, self.builder_config.kind, shard_dir)
    for name in side_files(manifest):
      source = epath.Path(shard_dir) / name
      if source.exists():
        target = self.data_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source.copy(target, overwrite=True)
    examples = (self._generate_examples if self._beam_pipeline_options is None
                else beam_examples)
    generators = {}
    for split, shards in entry['shards'].items():
      if sum(shard['records'] for shard in shards):
        generators[split] = examples(shard_dir, entry, split)
      else:
        # TFDS cannot write a split without examples.
        logging.warning('%s: %s has no %s records in split %s; the dataset '
                        'has no such split.', self.name, shard_dir,
                        self.builder_config.kind, split)
    return generators

  def _generate_examples(self, shard_dir, entry: Mapping[str, Any],
                         split: str):
    """(index, record) for every record of one split, in shard order."""
    specs = tfrecord.specs_from_json(entry['features'])
    paths = shard_reader.shard_files(shard_dir, entry['shards'][split])
    for index, record in enumerate(tfrecord.iter_records(paths)):
      yield index, tfrecord.decode_example(record, specs)

  def _shard_dir(self, dl_manager) -> pathlib.Path:
    """The shards to build from: the manual dir's, or a prepared corpus's."""
    manual = pathlib.Path(os.fspath(dl_manager.manual_dir))
    if (manual / layout.MANIFEST_JSON).is_file():
      logging.info('%s: converting the prepared shards in %s.', self.name,
                   manual)
      return manual
    if not (manual / self.RELEASE_FILE).is_file():
      raise FileNotFoundError(
          f'The manual dir {manual} holds neither {self.RELEASE_FILE} (a '
          f'{self.DATASET} corpus) nor {layout.MANIFEST_JSON} (the --out '
          'directory of `mmgenre prepare`):\n'
          + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    settings = self.builder_config.settings()
    out = (pathlib.Path(os.fspath(dl_manager.download_dir)) /
           PREPARE_CACHE_DIR / f'{self.DATASET}-{_digest(manual, settings)}')
    prepare_settings = prepare_job.Settings(**self._executor, **settings)
    args = prepare_job.run_args(self.DATASET, manual, out, prepare_settings)
    if prepare_job.is_complete(out, args):
      logging.info('%s: reusing the prepared shards in %s.', self.name, out)
    else:
      logging.info('%s: preparing %s into %s (mmgenre prepare).', self.name,
                   manual, out)
      prepare_job.prepare(self.DATASET, manual, out, prepare_settings)
    return out

  def _checked_entry(self, manifest: Mapping[str, Any],
                     shard_dir) -> Mapping[str, Any]:
    """The manifest entry of the config's kind, checked against the config.

    Raises:
      ValueError: the shards are of another dataset, settings or record
        layout, or have no records of the kind.
    """
    config = self.builder_config
    if manifest['dataset'] != self.DATASET:
      raise ValueError(f'{shard_dir} holds {manifest["dataset"]!r} shards; '
                       f'the {self.name} builder needs {self.DATASET!r} '
                       'ones.')
    recorded = manifest.get('args') or {}
    wanted = config.settings()
    wrong = [f'{key} {recorded.get(key)} (config: {wanted[key]})'
             for key in self.SETTINGS if recorded.get(key) != wanted[key]]
    if wrong:
      raise ValueError(
          f'{shard_dir} was prepared with {", ".join(wrong)}; prepare it '
          f'again with the config\'s settings, or build with a config of '
          'those settings (docs/scale.md).')
    kind = config.kind
    if kind not in manifest['modalities']:
      why = manifest.get('omitted_modalities', {}).get(kind, 'not written')
      raise ValueError(f'{shard_dir} has no {kind!r} records ({why}).')
    entry = manifest['modalities'][kind]
    if (tfrecord.specs_from_json(entry['features']) !=
        record_specs(self.DATASET, config)):
      raise ValueError(
          f'{shard_dir}: the {kind} records have the keys '
          f'{entry["features"]}, not those of this version of the builder; '
          'prepare the shards again.')
    return entry


def beam_examples(shard_dir, entry: Mapping[str, Any], split: str):
  """PreparedBuilder._generate_examples as a Beam PTransform.

  Each shard is one task (on any worker): its records are decoded and keyed
  by their index in the split, as _generate_examples keys them, so TFDS
  writes the same examples in the same order (disable_shuffling sorts by
  key).
  """
  beam = tfds.core.lazy_imports.apache_beam
  shards = entry['shards'][split]
  offsets = np.cumsum([0] + [shard['records'] for shard in shards[:-1]])
  tasks = [(int(offset), os.fspath(path)) for offset, path in zip(
      offsets, shard_reader.shard_files(shard_dir, shards))]
  return (beam.Create(tasks)
          | beam.Reshuffle()  # One shard a task, spread over the workers.
          | beam.FlatMap(_shard_examples, features=entry['features']))


def _shard_examples(task: Tuple[int, str], features: Mapping[str, Any]):
  """(index in the split, record) of every record of one shard.

  Args:
    task: (index in the split of the shard's first record, shard path).
    features: the manifest's record features (tfrecord.specs_to_json).
  """
  beam = tfds.core.lazy_imports.apache_beam
  counter = beam.metrics.Metrics.counter(*BEAM_COUNTER)
  specs = tfrecord.specs_from_json(features)
  offset, path = task
  for index, record in enumerate(tfrecord.iter_records([path]), offset):
    counter.inc()
    yield index, tfrecord.decode_example(record, specs)


def _digest(data_dir: pathlib.Path, settings: Mapping[str, int]) -> str:
  """12 hex digits naming the prepared shards of a corpus and settings."""
  key = json.dumps({'data': os.fspath(data_dir.resolve()), **settings},
                   sort_keys=True)
  return hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]

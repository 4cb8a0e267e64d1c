"""`mmgenre prepare`: features of a corpus into TFRecord shards + manifest.

Reads a corpus directory (docs/data_formats.md §1), computes the features of
paper Sec 3.1-3.3 and 7.3.2 for every item of every split and writes
(docs/data_formats.md §3; the file names are input_pipeline.layout's):

  OUT/splits/items_index_{train,val,test}.tsv   the splits used (--splits:
                                                MSD-I's release split, the
                                                `set` column, by default;
                                                MuMu's computed with --seed,
                                                or the authors' files of
                                                --splits DIR)
  OUT/splits/tracks_index_{train,val,test}.tsv  MuMu with the authors'
                                                track-level set only: the
                                                tracks of the audio records
  OUT/audio_stats.npz                           patch mean/std, train only
  OUT/text_vectorizer.json                      tf-idf, fitted on train only
  OUT/{audio,image,text}/{split}-{i:05d}-of-{n:05d}.tfrecord
  OUT/audio_windows/{split}-{i:05d}-of-{n:05d}.tfrecord
                                                whole-track prediction
                                                windows (not --no-windows)
  OUT/skipped.tsv                               every input left out, and why
  OUT/manifest.json                             written last: the run is
                                                complete when it exists

Bad inputs never stop the job: a malformed or repeated row of the release
file, a malformed review line, a missing, empty or undecodable audio file or
cover, an album whose reviews are empty, an album with no known label are
skipped, named in skipped.tsv and counted; for every modality and split,
read = written + skipped, and for the release file (manifest `metadata`)
rows read = kept + skipped and albums (MSD-I: tracks) read = in the splits +
skipped. Only many of them stop it: when more than --max-skip-fraction of
the release rows, review lines or items of a modality are skipped, prepare
fails with one error naming skipped.tsv, and writes no manifest.

  manifest = job.prepare('mumu', 'runs/data/synthetic', 'runs/data/shards',
                         job.Settings(workers=2))
  job.is_complete('runs/data/shards', manifest['args'])   # True

Audio patches are computed in worker processes (Sec 3.1: one seeded random
15 s crop per track) and stored raw; the reader standardises them with
audio_stats.npz. The same worker call, from the same decoded samples, cuts
the track's prediction windows (docs/fidelity.md: 15 % dropped at each end,
322-frame windows, 50 % overlap), one `audio_windows` record each, for every
split; a track that cannot be read is skipped (and reported) once, for both.

This module is the driver; the jobs live beside it (listed in __init__.py).
Two executors run the same steps (media_steps, shards.py) and write the same
files: by default a pool of `workers` processes here, which re-import the
main module: call prepare from a script file, under `if __name__ ==
'__main__':`, not from standard input (WorkerStartError, no item tried:
workers.py), or use workers=1; with `beam_pipeline_options`, one Apache Beam
pipeline (input_pipeline/beam/) on the runner those options name. The
manifest's `executor` says which ran. The command line is
mmgenre_jax/cli/prepare.py. Needs TensorFlow (to write TFRecords) but not JAX.
"""

import dataclasses
import os
import time
from typing import Any, Dict, Mapping, Optional

from etils import epath

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.prepare import catalog_items as prepare_catalog
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import manifest as prepare_manifest
from input_pipeline.prepare import release_items
from input_pipeline.prepare import shards as prepare_shards
from input_pipeline.prepare import split_choice
from input_pipeline.prepare import workers as prepare_workers
from input_pipeline.formats import splits as splits_lib
from input_pipeline.records import tfrecord
from input_pipeline.features import frontends
from input_pipeline.features import image as image_lib

MANIFEST_VERSION = prepare_manifest.MANIFEST_VERSION
# Records per shard: ~64 MB of audio patches (124 KB each), enough shards of
# the real MuMu train split (~116 K tracks) for dozens of hosts.
DEFAULT_SHARD_SIZE = 512
DEFAULT_IMAGE_SIZE = 224
# The failure budget: a run skipping more than this fraction of the release
# rows, review lines or items of a modality fails (a few bad files never do).
DEFAULT_MAX_SKIP_FRACTION = 0.2
STAGES = prepare_manifest.STAGES
# The manifest's `args` that decide what a run writes: two runs with the same
# ones write the same files (`out`, `workers` and `beam_pipeline_options`
# change nothing written; `max_skip_fraction` only whether a run is
# accepted, see is_complete).
OUTPUT_ARGS = ('dataset', 'data', 'splits', 'image_size', 'shard_size',
               'enrichment', 'seed', 'min_albums', 'windows', 'frontend')
PATCH_SHAPE = prepare_manifest.PATCH_SHAPE
# Re-exported: raised by the corpus readers and by `prepare`.
PrepareError = prepare_corpus.PrepareError


@dataclasses.dataclass(frozen=True)
class Settings:
  """How `prepare` prepares a corpus (the flags of `mmgenre prepare`).

  Attributes:
    splits: where the splits come from: 'release' (the release file's own
      split: MSD-I's `set` column; the MSD-I default), 'computed' (the
      artist-filtered split with `seed`; the MuMu default, as MuMu's release
      file has no split column), or a directory of items_index_*.tsv to
      use: our own, or the authors' items_index_{split}_<dataset>.tsv (MuMu's
      paper split; the manifest's splits_source is then 'release'). None is
      the dataset's default (split_choice.DEFAULT_SPLITS).
    image_size: C, the side of the network's input crop; covers are stored
      as [S, S, 3] with S = features.image.stored_size(C) = round(C * 256 /
      224), for random-resized crops in training and the centre crop in
      evaluation (manifest `image_size` C, `stored_image_size` S).
    shard_size: records per shard.
    enrichment: entity dictionary (enrichment.tsv) to enrich review texts
      with; none when None.
    workers: processes for audio and images (default os.cpu_count()).
    seed: split seed and audio crop seed.
    min_albums: MuMu: keep labels on >= this many albums.
    windows: also write the whole-track `audio_windows` records of every
      split (prediction, docs/fidelity.md); False is `--no-windows`.
    max_skip_fraction: in [0, 1]; more than this fraction of the release
      rows, review lines or items of a modality skipped is a PrepareError
      (skipped.tsv is written, the manifest is not).
    beam_pipeline_options: None (the default): compute the features in a
      pool of `workers` processes here; or comma-separated Beam pipeline
      options ('runner=DirectRunner,direct_num_workers=2,
      direct_running_mode=multi_processing', a Dataflow/Flink/Spark
      runner's): run the same steps as one Beam pipeline there
      (beam_prepare; `workers` is then unused). The files written are the
      same.
    frontend: the name of the audio front end that computes the patches
      and windows (input_pipeline.features.frontends: 'jax_polyphase', the
      default, or 'librosa_soxr_hq'); the manifest records it, and a model
      trained on the shards is fed by it only.
  """
  splits: Any = None
  image_size: int = DEFAULT_IMAGE_SIZE
  shard_size: int = DEFAULT_SHARD_SIZE
  enrichment: Any = None
  workers: Optional[int] = None
  seed: int = 0
  min_albums: int = 1
  windows: bool = True
  max_skip_fraction: float = DEFAULT_MAX_SKIP_FRACTION
  beam_pipeline_options: Optional[str] = None
  frontend: str = frontends.DEFAULT.name


def run_args(dataset: str, data_dir, out_dir,
             settings: Settings = Settings()) -> Dict[str, Any]:
  """The manifest's `args` of a run of `prepare` with these arguments.

  Paths are recorded as given (`data` and `out` as epath spells them), so
  the `args` of a run and of a later call with the same arguments compare
  equal (`is_complete`); `splits` is recorded resolved (`release`,
  `computed` or the directory: split_choice.splits_arg), so the default
  and the explicit spelling of a split are the same run.

  Returns:
    {dataset, data, out, splits, image_size, shard_size, enrichment, workers,
     seed, min_albums, windows, max_skip_fraction, beam_pipeline_options},
    JSON-serialisable.
  """
  return {'dataset': dataset, 'data': os.fspath(epath.Path(data_dir)),
          'out': os.fspath(epath.Path(out_dir)),
          **dataclasses.asdict(settings),
          'splits': split_choice.splits_arg(dataset, settings.splits, data_dir),
          'enrichment': (None if settings.enrichment is None
                         else os.fspath(settings.enrichment))}


def is_complete(out_dir, args: Mapping[str, Any]) -> bool:
  """Whether out_dir holds a complete run with the same output settings.

  True when out_dir/manifest.json is a complete manifest of this
  MANIFEST_VERSION whose recorded `args` equal `args` in every OUTPUT_ARGS
  key (`workers`, `out` and the executor may differ: the pool and Beam
  write the same files), whose skip fractions are within
  args['max_skip_fraction'] (a run accepted under a looser budget is not
  complete under a stricter one), and every file it lists (shards,
  skipped.tsv, audio_stats.npz, the tf-idf vectorizer, the splits) is there.
  The shards' sha256 are not recomputed (pipeline.verify_shards does that).

  Args:
    out_dir: the --out directory.
    args: the `run_args` of the run that would be made.
  """
  manifest = layout.read_manifest(out_dir)
  if (manifest is None or manifest.get('complete') is not True or
      manifest.get('format_version') != MANIFEST_VERSION):
    return False
  out = epath.Path(out_dir)
  try:
    recorded = dict(manifest['args'])
    if recorded.get('splits') is None:
      # Manifests from before the release split: None was a computed split.
      recorded['splits'] = split_choice.COMPUTED_SPLITS
    # Manifests from before the record: librosa soxr_hq made their shards.
    recorded.setdefault('frontend', frontends.UNRECORDED.name)
    if any(recorded.get(key) != args.get(key) for key in OUTPUT_ARGS):
      return False
    limit = args.get('max_skip_fraction')
    if limit is not None and any(
        fraction > limit for fraction in _recorded_fractions(manifest)):
      return False
    files = [shard['file'] for entry in manifest['modalities'].values()
             for shards in entry['shards'].values() for shard in shards]
    files += [manifest['skipped_file'], manifest['audio_stats']]
    if manifest.get('text_vectorizer'):
      files.append(manifest['text_vectorizer'])
    prefixes = [splits_lib.ITEMS_PREFIX] + (
        [splits_lib.TRACKS_PREFIX] if 'track_split_sizes' in manifest else [])
    paths = [out / name for name in files] + [
        splits_lib.split_file(out / manifest['splits_dir'], name, prefix)
        for name in splits_lib.SPLIT_NAMES for prefix in prefixes]
  except (AttributeError, KeyError, TypeError):
    return False
  return all(path.is_file() for path in paths)


def _recorded_fractions(manifest: Mapping[str, Any]):
  """The skip fractions of a manifest (from its counts before they existed)."""
  if 'skip_fractions' in manifest:
    return manifest['skip_fractions'].values()
  totals = [[sum(c[k] for c in entry['counts'].values())
             for k in ('skipped', 'read')]
            for entry in manifest['modalities'].values()]
  return [n / read for n, read in totals if read]


def prepare(dataset: str, data_dir, out_dir,
            settings: Settings = Settings(), *,
            progress: bool = True) -> Dict[str, Any]:
  """Writes the shards, statistics, skip report and manifest of a corpus.

  Args:
    dataset: 'mumu', 'msdi' or 'catalog'.
    data_dir: the corpus directory (docs/data_formats.md §1), or a catalog
      CSV.
    out_dir: the output directory (created; an earlier manifest and the
      temporary files of a run that was killed are removed first, so a
      crash never leaves a manifest over mixed shards).
    settings: how (Settings).
    progress: show tqdm progress bars (the pool only).

  Returns:
    The manifest (also in out_dir/manifest.json).
  """
  start = time.time()
  settings = dataclasses.replace(settings, workers=_checked_workers(
      dataset, settings.image_size, settings.shard_size, settings.workers))
  options = _beam_options(settings.beam_pipeline_options)
  if not 0.0 <= settings.max_skip_fraction <= 1.0:
    raise ValueError(f'--max-skip-fraction {settings.max_skip_fraction}: '
                     'give a fraction in [0, 1] (0.2: fail when more than a '
                     'fifth of the inputs of a kind are skipped; 1: never).')
  data_dir, out = epath.Path(data_dir), epath.Path(out_dir)
  if dataset == 'catalog' and not data_dir.is_file():
    raise PrepareError(f'--manifest {data_dir} is not a file; give the '
                       'catalog CSV (docs/data_formats.md §1.3).')
  if dataset != 'catalog' and not data_dir.is_dir():
    raise PrepareError(f'--data {data_dir} is not a directory.')
  # Before out is touched.
  split_choice.checked_splits(dataset, settings.splits, data_dir)
  frontends.named(settings.frontend)  # A ValueError listing the names.
  if settings.enrichment is not None:
    prepare_shards.check_enrichment(settings.enrichment)
  out.mkdir(parents=True, exist_ok=True)
  (out / layout.MANIFEST_JSON).unlink(missing_ok=True)
  _remove_stale_temps(out)
  args = run_args(dataset, data_dir, out, settings)
  skips = prepare_corpus.SkipLog()
  try:
    manifest = _prepare(dataset, data_dir, out, skips, args,
                        options=options, progress=progress)
  except PrepareError:
    # The report of what was skipped so far is what the error points to.
    skips.write(out / layout.SKIPPED_TSV)
    raise
  manifest['executor'] = _executor(options)
  manifest['elapsed_s'] = round(time.time() - start, 1)
  fileio.write_json_atomic(out / layout.MANIFEST_JSON, manifest)
  return manifest


def _beam_options(text: Optional[str]):
  """The PipelineOptions of `beam_pipeline_options`; None for the pool."""
  if text is None:
    return None
  # Imported here: Beam takes a second to import and only its runs need it.
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.beam import options as beam_options
  return beam_options.pipeline_options(text)


def _executor(options) -> str:
  """The manifest's `executor`: 'pool' or 'beam:<runner>'."""
  if options is None:
    return 'pool'
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline.beam import options as beam_options
  return f'beam:{beam_options.runner_name(options)}'


def _prepare(dataset: str, data_dir: epath.Path, out: epath.Path,
             skips, args: Dict[str, Any], *, options, progress: bool):
  """The corpus, its shards and skipped.tsv; returns the manifest."""
  splits, seed, windows = args['splits'], args['seed'], args['windows']
  if dataset == 'mumu':
    corpus = release_items.load_mumu_corpus(
        data_dir, splits=splits, seed=seed,
        min_albums=args['min_albums'], skips=skips)
  elif dataset == 'catalog':
    corpus = prepare_catalog.load_catalog_corpus(
        data_dir, splits=splits, seed=seed,
        min_albums=args['min_albums'], skips=skips)
  else:
    corpus = release_items.load_msdi_corpus(
        data_dir, splits=splits, seed=seed, skips=skips)
  budget = prepare_corpus.SkipBudget(args['max_skip_fraction'], corpus,
                                     out / layout.SKIPPED_TSV)
  try:
    # Before the slow part: the release file and the missing files alone.
    budget.check(prepare_corpus.skip_fractions(corpus, skips,
                                               missing_only=True),
                 'before any feature is computed')
  except PrepareError:
    prepare_corpus.report_missing(corpus, skips)  # What the error counted.
    raise
  _write_splits(corpus, out / layout.SPLITS_DIR)
  specs = _record_specs(dataset, corpus, args['image_size'], windows)
  if not windows:
    # Shards of an earlier run with windows would not match this manifest.
    for old in (out / tfrecord.AUDIO_WINDOWS).glob(
        f'*{tfrecord.SHARD_SUFFIX}'):
      old.unlink()
  steps = media_steps(corpus, specs, seed=seed, windows=windows,
                      frontend=args['frontend'],
                      image_size=args['image_size'])
  if options is None:
    results, stats_count, text = _write_with_pool(
        corpus, out, steps, specs, skips, args, progress=progress)
  else:
    # pylint: disable-next=g-import-not-at-top
    # Beam only for its runs.
    from input_pipeline.beam import prepare as beam_prepare
    results, stats_count, text = beam_prepare.run(
        corpus, out, steps, skips, options=options, patch_shape=PATCH_SHAPE,
        shard_size=args['shard_size'], text_specs=specs.get('text'),
        enrichment=args['enrichment'])
  omitted = dict(corpus.omitted)
  if not windows:
    omitted[tfrecord.AUDIO_WINDOWS] = 'prepared with --no-windows'
  elif 'audio' in corpus.omitted:
    omitted[tfrecord.AUDIO_WINDOWS] = corpus.omitted['audio']
  if text is not None:
    results['text'] = text
  elif 'text' in corpus.items:
    omitted['text'] = ('no tf-idf vectorizer could be fitted on the '
                       'training texts; every album is in '
                       f'{layout.SKIPPED_TSV}')
  skips.write(out / layout.SKIPPED_TSV)
  fractions = prepare_corpus.skip_fractions(corpus, skips)
  budget.check(fractions, 'no manifest is written')
  return prepare_manifest.build(
      dataset, corpus, specs, results, skips, omitted, stats_count,
      fractions, image_size=args['image_size'], windows=windows,
      splits=splits, seed=seed, args=args)


def _write_splits(corpus, splits_dir: epath.Path) -> None:
  """OUT/splits: the item-level split, and the track-level set's tracks."""
  splits_lib.write_splits(corpus.splits, splits_dir)
  if corpus.track_splits:
    splits_lib.write_splits(corpus.track_splits, splits_dir,
                            splits_lib.TRACKS_PREFIX)
    return
  # An earlier run's track-level split would not be this run's.
  for name in splits_lib.SPLIT_NAMES:
    splits_lib.split_file(splits_dir, name, splits_lib.TRACKS_PREFIX).unlink(
        missing_ok=True)


def _remove_stale_temps(out: epath.Path) -> None:
  """Removes the temporary files a killed run left in out and its folders.

  Every output is written to a hidden `.<name>.tmp` file and renamed
  (fileio, tfrecord.ShardedWriter); a run killed before the rename (SIGKILL,
  a lost machine) leaves them behind. Shards it renamed are replaced or left
  unlisted by this run, so only the temporary files need cleaning.
  """
  folders = [out, out / layout.SPLITS_DIR] + [
      out / kind for kind in ('audio', 'image', 'text',
                              tfrecord.AUDIO_WINDOWS)]
  for folder in folders:
    if folder.is_dir():
      for stale in folder.glob(f'.*{fileio.TMP_SUFFIX}'):
        stale.unlink(missing_ok=True)


def _checked_workers(dataset: str, image_size: int, shard_size: int,
                     workers: Optional[int]) -> int:
  """Validates the numeric arguments; returns the worker count."""
  if dataset not in tfrecord.DATASET_MODALITIES:
    raise ValueError(f'Unknown dataset {dataset!r}; expected one of '
                     f'{list(tfrecord.DATASET_MODALITIES)}.')
  if image_size < 1 or shard_size < 1:
    raise ValueError(f'image_size ({image_size}) and shard_size '
                     f'({shard_size}) must be >= 1.')
  workers = (os.cpu_count() or 1) if workers is None else int(workers)
  if workers < 1:
    raise ValueError(f'workers={workers}; use 1 or more processes.')
  return workers


def _record_specs(dataset: str, corpus, image_size: int, windows: bool):
  """Record kind -> its tfrecord.FeatureSpecs, for every kind written
  (the dataset's modalities the corpus has)."""
  kinds = tuple(m for m in tfrecord.DATASET_MODALITIES[dataset]
                if m in corpus.items)
  if windows and 'audio' in corpus.items:
    kinds += (tfrecord.AUDIO_WINDOWS,)
  return {m: tfrecord.feature_specs(
      dataset, m, patch_shape=PATCH_SHAPE,
      image_size=image_lib.stored_size(image_size)) for m in kinds}


def media_steps(corpus, specs, *, seed: int, windows: bool, image_size: int,
                frontend: str = frontends.DEFAULT.name
                ) -> Dict[str, prepare_shards.MediaStep]:
  """How the audio and image records are made (both executors run these).

  Args:
    corpus: the corpus (a modality it has no Items of has no step).
    specs: record kind -> its feature specs (_record_specs).
    seed: the audio crop seed (Sec 3.1: one seeded 15 s crop per track).
    windows: also cut the whole-track windows (`audio_windows` records).
    frontend: the audio front end's name (frontends.BY_NAME).
    image_size: C, the crop; covers are stored whole at S (stored_size).

  Returns:
    modality -> its MediaStep, audio first.
  """
  steps = {}
  if 'audio' in corpus.items:
    steps['audio'] = prepare_shards.MediaStep(
        prepare_workers.audio_features,
        lambda item: {'seed': prepare_workers.track_seed(seed, item.item_id),
                      'windows': windows, 'frontend': frontend},
        prepare_shards.audio_outputs(specs, windows), stats=True)
  if 'image' in corpus.items:
    # The whole centre square at S, the crops are taken when it is read.
    stored = image_lib.stored_size(image_size)
    steps['image'] = prepare_shards.MediaStep(
        image_lib.load_image,
        lambda item: {'size': stored, 'short_side': stored},
        [prepare_shards.value_output('image', specs['image'], 'image')])
  return steps


def _write_with_pool(corpus, out: epath.Path, steps, specs, skips,
                     args: Dict[str, Any], *, progress: bool):
  """The pool executor: media shards in `workers` processes, then text.

  Returns:
    (media record kind -> ModalityResult, training patches in the
    statistics, the text ModalityResult or None: none, or no tf-idf space).
  """
  results = {}
  stats = prepare_shards.RunningStats(PATCH_SHAPE)
  pool = prepare_workers.WorkerPool(args['workers'])
  try:
    for modality, step in steps.items():
      results.update(prepare_shards.write_features(
          modality, corpus, out, step, pool, skips, args['shard_size'],
          progress, on_value=(lambda split, v: stats.add(v[0])
                              if split == 'train' else None)
          if step.stats else None))
  finally:
    pool.close()
  if any(step.stats for step in steps.values()):  # A catalog may lack audio.
    prepare_shards.check_stats_count(stats.count, out)
    prepare_shards.save_audio_stats(out, stats)
  text = None
  if 'text' in corpus.items:
    text = prepare_shards.prepare_text(
        corpus, out, specs['text'], enrichment=args['enrichment'],
        skips=skips, shard_size=args['shard_size'], progress=progress)
  return results, stats.count, text


summary = prepare_manifest.summary

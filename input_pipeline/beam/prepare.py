"""`mmgenre prepare` as one Apache Beam pipeline (`--beam_pipeline_options`).

The driver (prepare.py) reads the corpus, checks the failure budget on the
release files and writes the splits, as without Beam. This pipeline makes
every record from the corpus's Items, with the same pure functions and
MediaSteps as the process pool (prepare_shards), and writes the shards. Its
inputs are files (stage_jobs writes them in OUT, ReadJobs reads them), not
Creates: the job graph goes to every worker and stays small.

  media Jobs (modality, split, index, Item with a file), OUT/MEDIA_JOBS,
    read in byte ranges (ReadJobs)
    | ItemFeatures: decode, CQT patch and windows, cover (MediaStep.fn)
        GROUP:         ((kind, split), (index, [record, ...]))  an item's group
        SKIPPED:       Skip                  the dead letter: an input failed
        TRAIN_PATCHES: keyed index % FANOUT | GroupByKey | partial sums
                       | GroupByKey | merged -> audio_stats.npz
  text Jobs (split, index, Item and its reviews), OUT/TEXT_JOBS
    | AlbumText -> TEXT (Job, text); SKIPPED: an empty text
    train texts | GroupByKey | fit_vectorizer -> text_vectorizer.json, Fit
    texts joined with the Fit (copied to FANOUT keys, GroupByKey)
    | TextRecords -> groups; SKIPPED: no vectorizer
  groups | beam_shards.WriteShards: ShardedWriter's layout of each (kind,
    split) from the group sizes (joined with the groups), one shard a key
    -> the shard files and their ShardInfo
  dead letters, layouts, shards, statistics count, text summary
    | GroupByKey -> OUT/REPORT_JSON

Only Create, ParDo, GroupByKey and Flatten, one sink: the transform set
every runner has, DaskRunner's included (it has no side inputs, keeps only
a ParDo's main output, does not reshuffle, and computes only the last
transform). A ParDo with several kinds of output tags its elements; a value
every worker needs is joined by GroupByKey on FANOUT copies of it.

`run` then turns the report into what the pool path returns
(beam_report.py): the ModalityResults of the manifest and the skipped.tsv
rows, added to the SkipLog in the pool path's order (per modality and split:
missing files, then failures in item order). The records are the same, in
the same shards (the index of each item keys its group; a shard's groups are
written in index order), so the shards equal the pool's byte for byte.
audio_stats.npz is the same sums of the same patches, added in another
order: equal to the pool's up to float64 rounding (in float32, almost always
bit for bit).

Where it runs is the PipelineOptions' runner (beam_options): DirectRunner
in this process (direct_num_workers=1) or in worker processes
(direct_running_mode=multi_processing), a dask.distributed cluster
(runner=DaskRunner), or Dataflow/Flink/Spark. Every worker reads the Items'
files and writes OUT at the paths the driver gives: gs:// URLs (fileio), or
a filesystem every worker mounts; a worker process that crashes (a decoder
segfault) fails the run, where the pool skips the item (docs/scale.md).

  steps = prepare.media_steps(corpus, specs, seed=0, windows=True,
                              image_size=224)
  results, stats_count, text = beam_prepare.run(
      corpus, out, steps, skips, options=options,
      patch_shape=prepare.PATCH_SHAPE, shard_size=512,
      text_specs=specs['text'])
"""

import collections
import dataclasses
import json
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)

from absl import logging
import apache_beam as beam
from apache_beam.options import pipeline_options as beam_options
from etils import epath

from input_pipeline.beam import report as beam_report
from input_pipeline.beam import shards as beam_shards
from input_pipeline import features
from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import shards as prepare_shards
from input_pipeline.prepare import workers as prepare_workers
from input_pipeline.features import text as text_lib


# What the pipeline hands back to the driver, in OUT while prepare runs.
REPORT_JSON = '.beam_prepare_report.json'
# What the driver hands the pipeline, in OUT while prepare runs: the Jobs
# as JSON lines, read by the workers (ReadJobs). In files, not in the job
# graph: a runner ships the graph to every worker, and Dataflow refuses one
# over 10 MB (MuMu's 147k tracks and its 31k albums' reviews are hundreds of
# MB). Named as temporary files, so a killed run's are removed by the next
# run of either executor (prepare._remove_stale_temps).
MEDIA_JOBS = '.beam_prepare_media_jobs.jsonl' + fileio.TMP_SUFFIX
TEXT_JOBS = '.beam_prepare_text_jobs.jsonl' + fileio.TMP_SUFFIX
# What an element of a stage with several kinds of output is, as its first
# part: a record group, the dead letter (an input skipped), a training patch,
# an album text, the tf-idf space. Tags in the elements, not tagged outputs:
# DaskRunner keeps only a ParDo's main output.
GROUP, SKIPPED, TRAIN_PATCHES, TEXT, FIT = (
    'group', 'skipped', 'train_patches', 'text', 'fit')
# Bytes of a Jobs file one worker reads (ReadJobs). The tf-idf space is
# joined with the texts, and the statistics summed, on beam_shards.FANOUT
# keys.
JOB_CHUNK_BYTES = 1 << 20
# The split whose values the statistics and the tf-idf space come from.
TRAIN = 'train'


@dataclasses.dataclass(frozen=True)
class Job:
  """One item to make records of.

  Attributes:
    modality: 'audio', 'image' or 'text'.
    split: the split name.
    index: the item's position in corpus.items[modality][split].
    item: the Item.
    reviews: text only: the album's review texts.
  """
  modality: str
  split: str
  index: int
  item: prepare_corpus.Item
  reviews: Tuple[str, ...] = ()

  def to_json(self) -> str:
    """The Job as one line of JSON (no newline in it)."""
    return json.dumps(dataclasses.asdict(self), ensure_ascii=True)

  @classmethod
  def from_json(cls, line: str) -> 'Job':
    """The Job of a to_json line."""
    fields = json.loads(line)
    return cls(fields['modality'], fields['split'], fields['index'],
               prepare_corpus.Item(**fields['item']),
               tuple(fields['reviews']))


@dataclasses.dataclass(frozen=True)
class Skip:
  """A dead letter: an item left out, and why.

  Attributes:
    modality, split, index: the Job's.
    reason: the skipped.tsv reason.
    late: reported after every split's other rows of the modality (text:
      no vectorizer, as prepare_shards.prepare_text orders them).
  """
  modality: str
  split: str
  index: int
  reason: str
  late: bool = False


@dataclasses.dataclass(frozen=True)
class Fit:
  """The tf-idf space of the training texts, or why there is none."""
  vectorizer: Any = None
  error: str = ''


def _skip(job: Job, reason: str, late: bool = False):
  return SKIPPED, Skip(job.modality, job.split, job.index, reason, late)


def _tagged(element, tag: str):
  """The value of an element tagged `tag` (a FlatMap: none otherwise)."""
  if element[0] == tag:
    yield element[1]


class ItemFeatures(beam.DoFn):
  """A media Job -> its records, or a Skip (SKIPPED).

  Yields (GROUP, ((kind, split), (index, records))) per output kind of the
  item's MediaStep and, for a training item of a step with `stats`,
  (TRAIN_PATCHES, (index, patch)).
  """

  def __init__(self, steps: Mapping[str, prepare_shards.MediaStep]):
    super().__init__()
    self._steps = dict(steps)

  def process(self, job: Job):
    step = self._steps[job.modality]
    _, value, error = prepare_workers.run_job(step.fn, job.item, step.kwargs)
    reason, groups = prepare_shards.item_records(step.outputs, job.item,
                                                 value, error)
    if reason is not None:
      yield _skip(job, reason)
      return
    for kind, group in groups.items():
      yield GROUP, ((kind, job.split), (job.index, group))
    if step.stats and job.split == TRAIN:
      yield TRAIN_PATCHES, (job.index, value[0])


def partial_stats(key_patches, patch_shape: Sequence[int]):
  """(part, training patches) -> (None, their RunningStats)."""
  stats = prepare_shards.RunningStats(tuple(patch_shape))
  for patch in key_patches[1]:
    stats.add(patch)
  return None, stats


def _save_stats(key_parts, patch_shape: Sequence[int], out) -> int:
  """The partial RunningStats (and a None) merged; audio_stats.npz saved
  when a training patch went in; the count."""
  stats = prepare_shards.RunningStats(tuple(patch_shape))
  for part in key_parts[1]:
    if part is not None:
      stats.merge(part)
  if stats.count:
    prepare_shards.save_audio_stats(epath.Path(out), stats)
  return stats.count


class AlbumText(beam.DoFn):
  """A text Job -> (TEXT, (Job, its album text)), or a Skip when the text
  is empty."""

  def __init__(self, enrichment: Optional[str]):
    super().__init__()
    self._enrichment = enrichment
    self._dictionary = None

  def setup(self):
    # Once per worker: the entity dictionary can be large.
    if self._enrichment:
      self._dictionary = text_lib.read_enrichment(self._enrichment)

  def process(self, job: Job):
    text, reason = prepare_shards.album_text(job.reviews, self._dictionary)
    if reason is not None:
      yield _skip(job, reason)
      return
    yield TEXT, (dataclasses.replace(job, reviews=()), text)


def fit_vectorizer(train: Iterable[Tuple[int, str]], out) -> Fit:
  """The tf-idf space of the training texts, saved to text_vectorizer.json.

  Args:
    train: (index, text) of every training album with a text.
    out: the output directory.

  Returns:
    Fit(vectorizer), or Fit(error=...) when none can be fitted (no, too
    few or too similar texts).
  """
  # In item order, as prepare_text fits it (the space does not depend on
  # the order, but the same call is the same result by construction).
  texts = [text for _, text in sorted((t for t in train if t is not None),
                                      key=lambda pair: pair[0])]
  try:
    vectorizer = text_lib.fit_tfidf(texts)
  except features.FeatureError as e:
    logging.warning('No text shards: %s', e)
    return Fit(error=str(e))
  text_lib.save_vectorizer(vectorizer,
                           epath.Path(out) / layout.TEXT_VECTORIZER_JSON)
  return Fit(vectorizer)


class TextRecords(beam.DoFn):
  """A join key's Fit and (Job, text)s -> their text record groups, or
  Skips when there is no vectorizer."""

  def __init__(self, specs):
    super().__init__()
    self._specs = specs

  def process(self, joined):
    tagged = list(joined[1])
    fit = next(value for tag, value in tagged if tag == FIT)
    for job, text in (value for tag, value in tagged if tag == TEXT):
      if fit.vectorizer is None:
        yield _skip(job, prepare_shards.no_vectorizer_reason(fit.error),
                    late=True)
        continue
      records = prepare_shards.text_records(fit.vectorizer, [job.item],
                                            [text], self._specs)
      yield GROUP, (('text', job.split), (job.index, records))


def media_jobs(corpus: prepare_corpus.Corpus,
               modalities: Iterable[str]) -> List[Job]:
  """The Jobs of every item with a file (a missing one is the driver's
  skipped.tsv row, not the pipeline's)."""
  return [Job(modality, split, index, item)
          for modality in modalities
          for split, items in corpus.items[modality].items()
          for index, item in enumerate(items) if item.path is not None]


def text_jobs(corpus: prepare_corpus.Corpus) -> List[Job]:
  """The Jobs of every album of the text modality, with its reviews."""
  return [Job('text', split, index, item,
              tuple(corpus.texts.get(item.item_id, [])))
          for split, items in corpus.items['text'].items()
          for index, item in enumerate(items)]


def write_jobs(jobs: Iterable[Job], path) -> None:
  """Writes Jobs to `path`, one to_json line each (atomically)."""
  with fileio.atomic_open(path) as f:
    for job in jobs:
      f.write(job.to_json().encode('ascii') + b'\n')


def stage_jobs(corpus: prepare_corpus.Corpus, out: epath.Path,
               modalities: Iterable[str], *, text: bool) -> List[epath.Path]:
  """Writes the Jobs the pipeline reads (build); the files written.

  Args:
    corpus: the corpus read by the driver.
    out: the output directory.
    modalities: the media modalities with records to make.
    text: whether the text modality has records to make.
  """
  staged = [out / MEDIA_JOBS]
  write_jobs(media_jobs(corpus, modalities), staged[0])
  if text:
    staged.append(out / TEXT_JOBS)
    write_jobs(text_jobs(corpus), staged[1])
  return staged


class ReadJobs(beam.PTransform):
  """A write_jobs file -> its Jobs, read in chunks of JOB_CHUNK_BYTES.

  The chunks are Created (the file's path and byte ranges: a small job
  graph), each read by one worker, and the Jobs reshuffled so that every
  worker computes features (DaskRunner does not reshuffle; its Create is
  split into dask_npartitions parts).
  """

  def __init__(self, path: str):
    super().__init__()
    self._path = path

  def expand(self, pbegin):
    size = epath.Path(self._path).stat().length
    chunks = max(1, -(-size // JOB_CHUNK_BYTES))
    step = -(-size // chunks) if size else 1
    ranges = [(self._path, start, min(start + step, size))
              for start in range(0, max(size, 1), step)]
    return (pbegin
            | 'Chunks' >> beam.Create(ranges)
            | 'Read' >> beam.FlatMap(read_chunk)
            | 'Spread' >> beam.Reshuffle())


def read_chunk(chunk) -> Iterable[Job]:
  """The Jobs of the lines that start in [start, end) of a Jobs file."""
  path, start, end = chunk
  with fileio.open_binary(path) as f:
    if start:
      f.seek(start - 1)
      f.readline()  # The rest of a line that starts before `start`.
    while f.tell() < end:
      line = f.readline()
      if not line:
        break
      yield Job.from_json(line.decode('ascii'))


def _text_branch(p, corpus, out, text_specs, enrichment):
  """(text groups, dead letters, Fit summary, text keys) of the pipeline."""
  texts = (p | 'TextJobs' >> ReadJobs(str(out / TEXT_JOBS))
           | 'AlbumText' >> beam.ParDo(AlbumText(enrichment)))
  empty = texts | 'EmptyTexts' >> beam.FlatMap(_tagged, SKIPPED)
  train = (texts | 'Texts' >> beam.FlatMap(_tagged, TEXT)
           | 'TrainTexts' >> beam.Filter(lambda job_text: job_text[0].split ==
                                         TRAIN)
           | 'IndexText' >> beam.MapTuple(lambda job, text: (
               None, (job.index, text))))
  # One element even without training texts: the Fit says why there is none.
  fit = ((train, p | 'NoTrainText' >> beam.Create([(None, None)]))
         | 'AllTrain' >> beam.Flatten()
         | 'CollectTrain' >> beam.GroupByKey()
         | 'Fit' >> beam.MapTuple(lambda _, train: fit_vectorizer(
             train, out=str(out))))
  records = (
      (texts | 'KeyTexts' >> beam.FlatMap(_tagged, TEXT)
       | 'SpreadTexts' >> beam.Map(lambda job_text: (
           job_text[0].index % beam_shards.FANOUT, (TEXT, job_text))),
       fit | 'BroadcastFit' >> beam.FlatMap(
           lambda f: [(k, (FIT, f)) for k in range(beam_shards.FANOUT)]))
      | 'FlattenFit' >> beam.Flatten() | 'JoinFit' >> beam.GroupByKey()
      | 'TextRecords' >> beam.ParDo(TextRecords(text_specs)))
  groups = records | 'TextGroups' >> beam.FlatMap(_tagged, GROUP)
  unfit = records | 'Unfit' >> beam.FlatMap(_tagged, SKIPPED)
  splits = list(corpus.items['text'])
  keys = fit | 'TextKeys' >> beam.FlatMap(
      lambda f: [('text', s) for s in splits] if f.vectorizer is not None
      else [])
  summary = fit | 'FitSummary' >> beam.Map(
      lambda f: {'error': f.error} if f.vectorizer is None else
      {'vocab_size': len(f.vectorizer.vocabulary_)})
  return groups, (empty, unfit), summary, keys


def _write_report(key_parts, path: str) -> None:
  """The pipeline's outputs the driver needs, as one JSON file."""
  parts = collections.defaultdict(list)
  for tag, value in key_parts[1]:
    parts[tag].append(value)
  fileio.write_json_atomic(path, {
      'skipped': [dataclasses.asdict(s) for s in parts['skipped']],
      'layouts': [[kind, split, layout_.items, layout_.records]
                  for (kind, split), layout_ in parts['layouts']],
      'shards': [[kind, split, shard, info.to_json()]
                 for kind, split, shard, info in parts['shards']],
      'stats_count': parts['stats_count'][0],
      'text': parts['text'][0],
  })


def build(p: beam.Pipeline, corpus: prepare_corpus.Corpus, out: epath.Path,
          steps: Mapping[str, prepare_shards.MediaStep], *,
          patch_shape: Sequence[int], shard_size: int, text_specs=None,
          enrichment=None) -> None:
  """Adds the preparation of the corpus's records to pipeline p.

  The pipeline reads the Jobs from OUT/MEDIA_JOBS and OUT/TEXT_JOBS, which
  `stage_jobs` writes before it runs. It uses only Create, ParDo,
  GroupByKey and Flatten, and ends in one transform (the report) that every
  other one feeds: no side input, no tagged output, no second sink, which
  DaskRunner lacks (it computes the last transform only).

  Args:
    p: the pipeline.
    corpus: the corpus read by the driver.
    out: the output directory.
    steps: modality -> its MediaStep (prepare.media_steps), in order.
    patch_shape: (frames, bins) of the audio patches (statistics).
    shard_size: records per shard.
    text_specs: the text record specs; None when the corpus has no text.
    enrichment: the entity dictionary of the review texts, or None.
  """
  media = (p | 'MediaJobs' >> ReadJobs(str(out / MEDIA_JOBS))
           | 'ItemFeatures' >> beam.ParDo(ItemFeatures(steps)))
  groups = [media | 'MediaGroups' >> beam.FlatMap(_tagged, GROUP)]
  dead = [media | 'MediaSkips' >> beam.FlatMap(_tagged, SKIPPED)]
  keys = [p | 'MediaKeys' >> beam.Create(
      [(output.kind, split) for modality, step in steps.items()
       for output in step.outputs for split in corpus.items[modality]])]
  partials = (media | 'Patches' >> beam.FlatMap(_tagged, TRAIN_PATCHES)
              | 'SpreadPatches' >> beam.MapTuple(lambda index, patch: (
                  index % beam_shards.FANOUT, patch))
              | 'GroupPatches' >> beam.GroupByKey()
              | 'PartialStats' >> beam.Map(partial_stats,
                                           patch_shape=patch_shape))
  stats_count = ((partials, p | 'NoStats' >> beam.Create([(None, None)]))
                 | 'AllStats' >> beam.Flatten()
                 | 'GroupStats' >> beam.GroupByKey()
                 | 'SaveStats' >> beam.Map(_save_stats,
                                           patch_shape=patch_shape,
                                           out=str(out)))
  if text_specs is not None:
    text_groups, text_dead, text, text_keys = _text_branch(
        p, corpus, out, text_specs, enrichment)
    groups.append(text_groups)
    dead.extend(text_dead)
    keys.append(text_keys)
  else:
    text = p | 'NoText' >> beam.Create([None])
  written = tuple(groups) | 'WriteShards' >> beam_shards.WriteShards(
      out, shard_size, tuple(keys) | 'Keys' >> beam.Flatten())
  parts = [pcoll | f'Tag{tag}' >> beam.Map(lambda v, t=tag: (None, (t, v)))
           for tag, pcoll in (('skipped', tuple(dead)
                               | 'DeadLetters' >> beam.Flatten()),
                              ('layouts', written['layouts']),
                              ('shards', written['shards']),
                              ('stats_count', stats_count), ('text', text))]
  _ = (tuple(parts) | 'ReportParts' >> beam.Flatten()
       | 'CollectReport' >> beam.GroupByKey()
       | 'WriteReport' >> beam.Map(_write_report,
                                   path=str(out / REPORT_JSON)))


def run(corpus: prepare_corpus.Corpus, out: epath.Path,
        steps: Mapping[str, prepare_shards.MediaStep],
        skips: prepare_corpus.SkipLog, *, options, patch_shape,
        shard_size: int, text_specs=None, enrichment=None
        ) -> Tuple[Dict[str, prepare_shards.ModalityResult], int,
                   Optional[prepare_shards.ModalityResult]]:
  """Runs the pipeline on the corpus; what prepare's pool path returns.

  Args:
    corpus, out, steps, patch_shape, shard_size, text_specs, enrichment:
      as `build`'s.
    skips: receives the skipped.tsv rows of every item, in the pool path's
      order.
    options: the Beam PipelineOptions (beam_options.pipeline_options); the
      workers log at WARNING unless they set default_sdk_harness_log_level.

  Returns:
    (media record kind -> ModalityResult, training patches in
    audio_stats.npz, the text ModalityResult or None: no text, or no
    tf-idf space could be fitted and every album is skipped).

  Raises:
    PrepareError: the corpus has audio but no training track could be read
      (the rows of the media items are in `skips` by then, as in the pool
      path).
  """
  report_path = out / REPORT_JSON
  report_path.unlink(missing_ok=True)  # Never read one of an earlier run.
  harness = options.view_as(beam_options.WorkerOptions)
  if harness.default_sdk_harness_log_level is None:
    # Every worker logs each channel it opens at INFO; prepare reports
    # through its summary and skipped.tsv instead.
    harness.default_sdk_harness_log_level = 'WARNING'
  staged = stage_jobs(corpus, out, steps, text=text_specs is not None)
  try:
    with beam.Pipeline(options=options) as p:
      build(p, corpus, out, steps, patch_shape=patch_shape,
            shard_size=shard_size, text_specs=text_specs,
            enrichment=enrichment)
  finally:
    for path in staged:
      path.unlink(missing_ok=True)
  report = json.loads(report_path.read_text())
  report_path.unlink()
  return beam_report.collect(report, corpus, out, steps, skips)

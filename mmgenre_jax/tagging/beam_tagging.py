"""Catalog tagging and embedding on Apache Beam: `--beam_pipeline_options`.

  mmgenre predict --workdir BUNDLE --audio ~/Music --out tags/part \
      --beam_pipeline_options runner=DirectRunner,direct_num_workers=4,\
direct_running_mode=multi_processing
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out vectors/part \
      --beam_pipeline_options runner=DataflowRunner,project=P,region=R,...

The same work as the single-machine commands (predict.py, embed.py), spread
over Beam workers: each worker loads the model once per run (_tagger);
the launcher cuts the items into batches (items_lib.BATCH_ITEMS a batch,
as on one machine) whose audio goes through the networks together
(Tagger.predict_many), which gives the same numbers as one item at a time.
The output is sharded JSON lines, `PREFIX-00000-of-0000N.jsonl`, one row
(an object) a line, N = one shard per ROWS_PER_SHARD rows:
  * predict: the rows of predict.predict_items, fields as `mmgenre predict`
    writes them (input, labels, decisions, model, duration_s, warnings,
    notes, error, sources);
  * embed: the rows of embed.embed_rows (input, vectors {name: [floats]},
    duration_s, warnings, error, sources).
Rows are sorted on `input` within a shard. An input that cannot be read is
a row with its `error`; the pipeline goes on, and the command's exit status
says whether some or all inputs failed (the Tally run returns;
mmgenre_jax/cli/flags.py).

The pipeline uses only Create, ParDo, GroupByKey and Flatten, no side
inputs, tagged outputs, sinks or metrics, and its last transform depends on
all the others: what DaskRunner translates (docs/scale.md §4), and what
Dataflow, Flink and Spark run too. Each shard is written whole by one
worker (fileio.write_atomic: one object write), then a report of the rows
each shard holds, which the launcher checks against the rows it expected
before anything is committed.

A rerun skips the inputs whose rows are already there with unchanged files
(the `sources` stamps, as items_lib.ResultWriter does): the kept rows and the
new ones make the next set of shards, rows of inputs gone are dropped.
Crash safety: the workers write the new set into a staging folder beside
the prefix (PREFIX.beam-staging-<id>/), which is marked complete once the
pipeline succeeded and its report holds every row; only then are its
shards moved over the prefix's and the old shards not in the new set
removed. A run killed at any point leaves every row in the prefix's shards
or a complete staging folder, which the next run reads (and cleans up); an
incomplete one is ignored.

The model, the inputs and the prefix may be local paths (which every
worker must see at the same place) or URLs (gs://...) read through
input_pipeline.fileio: a worker reads a local copy of the model, made once
per process, and of each batch's input files (remote.py); the rows name
the URLs. Two runs must not share a prefix at the same time.

  from input_pipeline.beam import options as beam_options
  options = beam_options.pipeline_options('direct_num_workers=2,...')
  tally = beam_tagging.run(
      'predict', items, 'out/tags', options,
      beam_tagging.Model('runs/mumu_cosine'), top_k=5)
"""

import dataclasses
import json
import os
import re
import sys
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import apache_beam as beam
from apache_beam.options import pipeline_options
from etils import epath
import numpy as np

from input_pipeline import fileio
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib

TASKS = ('predict', 'embed')
SHARD_TEMPLATE = '-SSSSS-of-NNNNN'
SUFFIX = '.jsonl'
# PREFIX.beam-staging-<run id>/part-SSSSS-of-NNNNN.jsonl, then COMPLETE.
STAGING = '.beam-staging-'
STAGED_PART = 'part'
COMPLETE = 'COMPLETE'
# What the pipeline wrote: [{shard, rows, tagged, failed}], in the staging
# folder (Beam metrics are not collected by every runner: DaskRunner).
REPORT = 'REPORT.json'
# Rows of one output shard (the default): one worker writes a shard whole.
ROWS_PER_SHARD = 1000


@dataclasses.dataclass(frozen=True)
class Model:
  """What each worker loads: Tagger.from_workdir's arguments (local paths
  or URLs: the worker reads a local copy, remote.local_model)."""
  workdir: str
  taxonomy: Optional[str] = None
  head: Union[str, bool, None] = None

  def load(self) -> tagger_lib.Tagger:
    return tagger_lib.Tagger.from_workdir(self.workdir,
                                          taxonomy=self.taxonomy,
                                          head=self.head)


# The model this worker process loaded, and the run it was loaded for: a
# runner may call DoFn.setup once per bundle (DaskRunner: per partition),
# and loading and compiling costs seconds. One run's model at a time.
_LOADED: Dict[str, Any] = {}


def _tagger(run_id: str, model: Model) -> tagger_lib.Tagger:
  if _LOADED.get('run') != run_id:
    _LOADED.clear()
    _LOADED.update(run=run_id, tagger=model.load())
  return _LOADED['tagger']


class _TagBatches(beam.DoFn):
  """A batch of (index, Item) -> (shard, Line) per row (_row_line)."""

  def __init__(self, task: str, model: Model, top_k: int, level: str,
               run_id: str, place: '_Placement'):
    super().__init__()
    self._task, self._model = task, model
    self._top_k, self._level = top_k, level
    self._run_id, self._place = run_id, place

  def process(self, batch):  # [(index, Item)]
    tagger = _tagger(self._run_id, self._model)
    items = [item for _, item in batch]
    if self._task == 'predict':
      rows = remote.tag_rows(lambda local: predict.predict_items(
          tagger, local, self._top_k, self._level), items)
    else:
      rows = remote.tag_rows(lambda local: embed.embed_rows(tagger, local),
                             items)
    for (index, _), row in zip(batch, rows):
      yield self._place.shard(index), _row_line(row, new=True)


def _json_line(row: Dict[str, Any]) -> str:
  """A row as one line of JSON (vectors as lists of floats)."""
  return json.dumps(row, ensure_ascii=False,
                    default=lambda x: np.asarray(x).tolist())


# A row on its way to its shard: (input, 1 if tagged by this run else 0,
# 1 if it has an error else 0, its JSON line).
Line = Tuple[str, int, int, str]


def _row_line(row: Dict[str, Any], new: bool) -> Line:
  return (str(row['input']), int(new), int(row.get('error') is not None),
          _json_line(row))


@dataclasses.dataclass(frozen=True)
class _Placement:
  """Which output shard holds the row of index i (kept rows first, then
  the items to tag): contiguous runs, so that no shard is empty."""
  rows: int
  shards: int

  def shard(self, index: int) -> int:
    return index * self.shards // self.rows


def shard_count(rows: int, wanted: int = 0) -> int:
  """Shards of an output of `rows` rows: `wanted`, else one per
  ROWS_PER_SHARD rows; never more than the rows."""
  shards = wanted or -(-rows // ROWS_PER_SHARD)
  return max(1, min(shards, rows))


class _WriteShard(beam.DoFn):
  """(shard, [Line]) -> one staged shard written whole (one object write
  on an object store, a rename locally): a task run twice (a worker lost
  and its work redone) writes the same bytes. Yields its counts."""

  def __init__(self, staging: str, shards: int):
    super().__init__()
    self._staging, self._shards = staging, shards

  def process(self, element):  # (shard, [Line])
    shard, lines = element
    lines = sorted(lines)
    name = f'{STAGED_PART}-{shard:05d}-of-{self._shards:05d}{SUFFIX}'
    fileio.write_atomic(epath.Path(self._staging) / name, ''.join(
        line + '\n' for *_, line in lines).encode('utf-8'))
    yield 0, {'shard': name, 'rows': len(lines),
              'tagged': sum(new for _, new, _, _ in lines),
              'failed': sum(new and bad for _, new, bad, _ in lines)}


class _WriteReport(beam.DoFn):
  """(0, [shard counts]) -> the staging folder's REPORT (the last
  transform: a runner that computes only the last one runs them all)."""

  def __init__(self, staging: str):
    super().__init__()
    self._staging = staging

  def process(self, element):
    _, counts = element
    fileio.write_json_atomic(epath.Path(self._staging) / REPORT,
                             sorted(counts, key=lambda c: c['shard']))
    yield len(counts)


# ------------------------------------------------------------ the shards


def _shards(prefix: epath.Path) -> List[epath.Path]:
  """The final shards of a prefix, PREFIX-SSSSS-of-NNNNN.jsonl."""
  name = re.compile(re.escape(prefix.name) + r'-\d{5,}-of-\d{5,}' +
                    re.escape(SUFFIX))
  if not prefix.parent.exists():
    return []
  return sorted(p for p in prefix.parent.glob(f'{prefix.name}-*{SUFFIX}')
                if name.fullmatch(p.name))


def _staging_dirs(prefix: epath.Path) -> List[epath.Path]:
  """Staging folders of runs of this prefix, complete or not."""
  if not prefix.parent.exists():
    return []
  return sorted(prefix.parent.glob(f'{prefix.name}{STAGING}*'))


def _staged(folder: epath.Path) -> List[epath.Path]:
  return sorted(folder.glob(f'{STAGED_PART}-*-of-*{SUFFIX}'))


@dataclasses.dataclass
class _Found:
  """What an earlier run left under a prefix (_find)."""
  rows: List[Dict[str, Any]]  # of every readable shard, in _find's order
  broken: int  # lines that are not a row
  shards: List[epath.Path]  # the prefix's final shards
  staging: List[epath.Path]  # staging folders, complete or not

  def one_clean_set(self) -> bool:
    """Whether the shards are one whole set and no staging is left over."""
    counts = {p.name.rsplit('-of-', 1)[1] for p in self.shards}
    return not self.staging and len(counts) == 1 and len(
        self.shards) == int(counts.pop()[:-len(SUFFIX)])


def _find(prefix: epath.Path, items: Sequence[items_lib.Item]) -> _Found:
  """The rows under a prefix: its shards and complete staging folders.

  Of an input with several rows (a run killed while moving its shards), a
  row whose `sources` match the files now is put last, so that
  items_lib.keep_rows keeps it.
  """
  shards, staging = _shards(prefix), _staging_dirs(prefix)
  files = shards + [p for d in staging if (d / COMPLETE).exists()
                    for p in _staged(d)]
  rows, broken = [], 0
  for path in files:
    found, bad = items_lib.read_json_rows(
        path.read_bytes().decode('utf-8', errors='replace'))
    rows.extend(found)
    broken += bad
  stamps = {item.key: [(s['size'], s['mtime_ns'])
                       for s in items_lib.sources(item)] for item in items}
  rows.sort(key=lambda r: items_lib.row_stamps(r) in (
      None, stamps.get(str(r['input']))))
  return _Found(rows, broken, shards, staging)


def _commit(prefix: epath.Path, staging: epath.Path, found: _Found) -> int:
  """Moves a complete staging folder's shards over the prefix's, then
  removes the old shards not replaced and every staging folder.

  Returns:
    The number of shards of the new set.
  """
  fileio.write_atomic(staging / COMPLETE, b'')
  moved = []
  for part in _staged(staging):
    target = prefix.parent / (prefix.name + part.name[len(STAGED_PART):])
    fileio.replace(part, target)  # Local: a rename; GCS: copy + delete.
    moved.append(target)
  for old in found.shards:
    if old not in moved:
      old.unlink()
  for folder in found.staging + [staging]:
    folder.rmtree()
  return len(moved)


# -------------------------------------------------------------- the run


def run(task: str, items: Sequence[items_lib.Item], out: str,
        options: pipeline_options.PipelineOptions, model: Model, *,
        top_k: int = predict.DEFAULT_TOP_K, level: str = 'all',
        batch_items: int = items_lib.BATCH_ITEMS, num_shards: int = 0
        ) -> items_lib.Tally:
  """Tags (or embeds) the items not yet under `out` on Beam.

  Args:
    task: 'predict' or 'embed'.
    items: the inputs (items_lib.collect_items).
    out: the output prefix (module docstring); rows already there with
      unchanged files are kept and their items skipped, what was found is
      printed on stderr as `mmgenre predict` does.
    options: the pipeline's (input_pipeline.beam.options.pipeline_options
      of --beam_pipeline_options).
    model: what each worker loads.
    top_k, level: as in predict.predict_items (predict only).
    batch_items: items a worker tags together.
    num_shards: shards of the output; 0: one per ROWS_PER_SHARD rows.

  Returns:
    The Tally, as predict.run's: items tagged by this run and how many of
    them failed, rows kept from an earlier run and how many of those have
    an error.
  """
  if task not in TASKS:
    raise ValueError(f'task {task!r}: use one of {TASKS}.')
  # Absolute: the workers write the staged shards, and their working
  # directories are not the launcher's.
  prefix = epath.Path(os.path.abspath(out) if fileio.is_local(out) else out)
  found = _find(prefix, items)
  kept, todo, resumed = items_lib.keep_rows(found.rows, items, found.broken)
  if found.rows or found.broken:
    print(f'{resumed.message(out)} {len(todo)} of {len(items)} inputs to '
          f'{task}.', file=sys.stderr)
  untouched = not (resumed.gone or resumed.changed or resumed.broken or
                   resumed.duplicates)
  if not todo and untouched and found.one_clean_set():
    # The shards there are this run's output already.
    return items_lib.Tally(0, 0, resumed.kept, resumed.failed)
  run_id = uuid.uuid4().hex
  staging = prefix.parent / f'{prefix.name}{STAGING}{run_id}'
  place = _Placement(len(kept) + len(todo),
                     shard_count(len(kept) + len(todo), num_shards))
  pipeline = beam.Pipeline(options=options)
  _write(_rows(pipeline, kept, todo, place,
               _TagBatches(task, model, top_k, level, run_id, place),
               batch_items), str(staging), place.shards)
  pipeline.run().wait_until_finish()
  report = _read_report(staging, place)
  shards = _commit(prefix, staging, found)
  tagged = sum(c['tagged'] for c in report)
  print(f'Wrote {len(kept) + tagged} rows ({len(kept)} kept) to {out}'
        f'-*-of-{shards:05d}{SUFFIX}.', file=sys.stderr)
  return items_lib.Tally(tagged, sum(c['failed'] for c in report),
                         resumed.kept, resumed.failed)


def _rows(pipeline, kept: Sequence[Dict[str, Any]],
          todo: Sequence[items_lib.Item], place: _Placement,
          tag: _TagBatches, batch_items: int):
  """The PCollection of (shard, Line) of every row of the output: the
  kept rows and the rows of the items tagged."""
  parts = []
  if kept:
    parts.append(pipeline | 'Kept' >> beam.Create(
        [(place.shard(i), _row_line(r, new=False))
         for i, r in enumerate(kept)]))
  if todo:
    # Batched here, not by BatchElements: DaskRunner drops what a DoFn
    # emits in finish_bundle, where BatchElements emits its last batch.
    indexed = list(enumerate(todo, start=len(kept)))
    parts.append(
        pipeline
        | 'Items' >> beam.Create(list(items_lib.batches(indexed,
                                                        batch_items)))
        # Spreads the batches over the workers (DirectRunner: Create gives
        # one bundle; DaskRunner splits a Create into dask_npartitions).
        | 'Spread' >> beam.Reshuffle()
        | 'Tag' >> beam.ParDo(tag))
  return parts | 'Rows' >> beam.Flatten()


def _write(rows, staging: str, shards: int) -> None:
  """Each shard's rows grouped and written by one worker, then the
  report, which depends on every shard."""
  _ = (rows
       | 'ByShard' >> beam.GroupByKey()
       | 'Write' >> beam.ParDo(_WriteShard(staging, shards))
       | 'Gather' >> beam.GroupByKey()
       | 'Report' >> beam.ParDo(_WriteReport(staging)))


def _read_report(staging: epath.Path, place: _Placement
                 ) -> List[Dict[str, Any]]:
  """The staging folder's report, checked: every shard, every row.

  Raises:
    RuntimeError: the runner lost rows or shards; nothing is committed
      (the prefix keeps its rows, and a rerun tags the rest again).
  """
  report = json.loads((staging / REPORT).read_text())
  written = sum(c['rows'] for c in report)
  if len(report) != place.shards or written != place.rows:
    raise RuntimeError(
        f'the Beam pipeline made {place.rows} rows in {place.shards} '
        f'shards but wrote {written} in {len(report)} ({staging}); '
        'nothing was committed: run the command again.')
  return report

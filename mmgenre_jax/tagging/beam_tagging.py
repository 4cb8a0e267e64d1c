"""Catalog tagging and embedding on Apache Beam: `--beam_pipeline_options`.

  mmgenre predict --workdir BUNDLE --audio ~/Music --out tags/part \
      --beam_pipeline_options runner=DirectRunner,direct_num_workers=4,\
direct_running_mode=multi_processing
  mmgenre embed --workdir BUNDLE --manifest catalog.csv --out vectors/part \
      --beam_pipeline_options runner=DataflowRunner,project=P,region=R,...

The same work as the single-machine commands (predict.py, embed.py), spread
over Beam workers: each worker loads the model once (DoFn.setup); items are
batched (beam.BatchElements, items_lib.BATCH_ITEMS a batch, as on one machine)
and a batch's audio goes through the networks together
(Tagger.predict_many), which gives the same numbers as one item at a time.
The output is sharded JSON lines, `PREFIX-00000-of-0000N.jsonl`, one row
(an object) a line:
  * predict: the rows of predict.predict_items, fields as `mmgenre predict`
    writes them (input, labels, decisions, model, duration_s, warnings,
    notes, error, sources);
  * embed: the rows of embed.embed_rows (input, vectors {name: [floats]},
    duration_s, warnings, error, sources).
The rows are in no particular order (sort them on `input`). An input that
cannot be read is a row with its `error`; the pipeline goes on, and the
command's exit status says whether some or all inputs failed (the Tally
run returns; mmgenre_jax/cli/flags.py).

A rerun skips the inputs whose rows are already there with unchanged files
(the `sources` stamps, as items_lib.ResultWriter does): the kept rows and the
new ones make the next set of shards, rows of inputs gone are dropped.
Crash safety: Beam writes the new set into a staging folder beside the
prefix (PREFIX.beam-staging-<id>/), which is marked complete once the
pipeline succeeded; only then are its shards moved over the prefix's and
the old shards not in the new set removed. A run killed at any point leaves
every row in the prefix's shards or a complete staging folder, which the
next run reads (and cleans up); an incomplete one is ignored.

The model and the inputs are read on the workers at the paths given, so
they must be there (a shared or mounted filesystem) for a distributed
runner; the prefix may be on any filesystem etils.epath and Beam's
WriteToText both reach (local, gs://). Two runs must not share a prefix at
the same time.

  from input_pipeline.beam import options as beam_options
  options = beam_options.pipeline_options('direct_num_workers=2,...')
  tally = beam_tagging.run(
      'predict', items, 'out/tags', options,
      beam_tagging.Model('runs/mumu_cosine'), top_k=5)
"""

import dataclasses
import json
import re
import sys
import uuid
from typing import Any, Dict, List, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.metrics import metric
from apache_beam.options import pipeline_options
from etils import epath
import numpy as np

from input_pipeline import fileio
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import tagger as tagger_lib

TASKS = ('predict', 'embed')
SHARD_TEMPLATE = '-SSSSS-of-NNNNN'
SUFFIX = '.jsonl'
# PREFIX.beam-staging-<run id>/part-SSSSS-of-NNNNN.jsonl, then COMPLETE.
STAGING = '.beam-staging-'
STAGED_PART = 'part'
COMPLETE = 'COMPLETE'
# The Beam metrics namespace of the counters of _TagBatches.
METRICS = 'mmgenre'


@dataclasses.dataclass(frozen=True)
class Model:
  """What each worker loads: Tagger.from_workdir's arguments."""
  workdir: str
  taxonomy: Optional[str] = None
  head: Union[str, bool, None] = None

  def load(self) -> tagger_lib.Tagger:
    return tagger_lib.Tagger.from_workdir(self.workdir,
                                          taxonomy=self.taxonomy,
                                          head=self.head)


class _TagBatches(beam.DoFn):
  """Batches of Items -> their rows (predict_items or embed_rows)."""

  def __init__(self, task: str, model: Model, top_k: int, level: str):
    super().__init__()
    self._task, self._model = task, model
    self._top_k, self._level = top_k, level
    self._tagger = None
    self._tagged = metric.Metrics.counter(METRICS, 'tagged')
    self._failed = metric.Metrics.counter(METRICS, 'failed')

  def setup(self):
    # Once per worker (and DoFn instance): loading and compiling the model
    # costs seconds, a batch of short tracks less.
    self._tagger = self._model.load()

  def process(self, items: List[items_lib.Item]):
    if self._task == 'predict':
      rows = predict.predict_items(self._tagger, items, self._top_k,
                                   self._level)
    else:
      rows = embed.embed_rows(self._tagger, items)
    for row in rows:
      self._tagged.inc()
      if row['error'] is not None:
        self._failed.inc()
      yield row


def _json_line(row: Dict[str, Any]) -> str:
  """A row as one line of JSON (vectors as lists of floats)."""
  return json.dumps(row, ensure_ascii=False,
                    default=lambda x: np.asarray(x).tolist())


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
    part.replace(target)
    moved.append(target)
  for old in found.shards:
    if old not in moved:
      old.unlink()
  for folder in found.staging + [staging]:
    folder.rmtree()
  return len(moved)


# -------------------------------------------------------------- the run


def _counter(result, name: str) -> int:
  counters = result.metrics().query(
      metric.MetricsFilter().with_namespace(METRICS).with_name(name))
  return sum(int(c.committed if c.committed is not None else c.attempted)
             for c in counters['counters'])


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
    num_shards: shards of the output; 0: the runner decides.

  Returns:
    The Tally, as predict.run's: items tagged by this run and how many of
    them failed, rows kept from an earlier run and how many of those have
    an error.
  """
  if task not in TASKS:
    raise ValueError(f'task {task!r}: use one of {TASKS}.')
  prefix = epath.Path(out)
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
  staging = prefix.parent / f'{prefix.name}{STAGING}{uuid.uuid4().hex}'
  pipeline = beam.Pipeline(options=options)
  lines = [pipeline | 'Kept' >> beam.Create([_json_line(r) for r in kept])]
  if todo:
    lines.append(
        pipeline
        | 'Items' >> beam.Create(list(todo))
        # Spreads the items over the workers (Create gives one bundle).
        | 'Spread' >> beam.Reshuffle()
        | 'Batch' >> beam.BatchElements(min_batch_size=batch_items,
                                        max_batch_size=batch_items)
        | 'Tag' >> beam.ParDo(_TagBatches(task, model, top_k, level))
        | 'Json' >> beam.Map(_json_line))
  _ = (lines
       | 'Rows' >> beam.Flatten()
       | 'Write' >> beam.io.WriteToText(
           str(staging / STAGED_PART), file_name_suffix=SUFFIX,
           shard_name_template=SHARD_TEMPLATE, num_shards=num_shards))
  result = pipeline.run()
  result.wait_until_finish()
  shards = _commit(prefix, staging, found)
  tagged, failed = ((_counter(result, 'tagged'), _counter(result, 'failed'))
                    if todo else (0, 0))
  print(f'Wrote {len(kept) + tagged} rows ({len(kept)} kept) to {out}'
        f'-*-of-{shards:05d}{SUFFIX}.', file=sys.stderr)
  return items_lib.Tally(tagged, failed, resumed.kept, resumed.failed)

"""The Beam preparation's report, read back into what the pool path returns.

beam_prepare.run writes its dead letters, shard layouts, shards and
statistics count to one JSON report; `collect` turns it into the
ModalityResults of the manifest and the skipped.tsv rows, added to the
SkipLog in the pool path's order (per modality and split: missing files,
then failures in item order), and removes the shards of an earlier run.
"""

import collections
import pathlib
from typing import Any, Mapping

from etils import epath

from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import shards as prepare_shards
from input_pipeline.records import tfrecord


class Report:
  """The pipeline's report, indexed for the driver."""

  def __init__(self, report: Mapping[str, Any]):
    self.failures = collections.defaultdict(dict)
    for skip in report['skipped']:
      self.failures[skip['modality'], skip['split'], skip['late']][
          skip['index']] = skip['reason']
    self.layouts = {(kind, split): (items, records)
                    for kind, split, items, records in report['layouts']}
    self.shards = collections.defaultdict(list)
    for kind, split, shard, info in sorted(report['shards'],
                                           key=lambda s: s[:3]):
      self.shards[kind, split].append(tfrecord.ShardInfo(**info))
    self.stats_count = report['stats_count']
    self.text = report['text']

  def add_skips(self, skips, modality: str, split: str, items, *,
                late: bool = False, path=None) -> int:
    """Adds the rows of the failed items of a (modality, split), in item
    order (path: the rows' path instead of the item's); how many."""
    failures = self.failures[modality, split, late]
    for index in sorted(failures):
      item = items[index]
      skips.add(modality, split, item.item_id,
                item.path if path is None else path, failures[index])
    return len(failures)

  def record(self, result: prepare_shards.ModalityResult, kind: str,
             split: str, read: int, skipped: int) -> None:
    """Records the counts and shards of (kind, split) in result.

    Raises:
      PrepareError: the shards written do not hold the records the items
        made (the layout counted them in the stage that made them): the
        runner lost records on their way to the shard writers. Seen once,
        in about 18 runs of DirectRunner multi_processing here
        (docs/scale.md); no manifest is written, so nothing reads the
        shards as complete.
    """
    items, records = self.layouts[kind, split]
    shards = self.shards[kind, split]
    if [s.records for s in shards] != records:
      raise prepare_corpus.PrepareError(
          f'{kind} {split}: the Beam pipeline made {sum(records)} records '
          f'but wrote {sum(s.records for s in shards)} into its shards '
          f'({[s.file for s in shards]}): the runner lost records between '
          'its stages. No manifest was written. Run prepare again; if it '
          'recurs, prepare without --beam_pipeline_options (the process '
          'pool) or with direct_running_mode=multi_threading, and report '
          'the runner and its options (docs/scale.md).')
    result.record(split, read, items, skipped, shards, records=sum(records))


def collect(report: Mapping[str, Any], corpus: prepare_corpus.Corpus,
            out: epath.Path, steps, skips):
  """The report as run's return value; adds the skipped.tsv rows."""
  found = Report(report)
  results = {}
  for modality, step in steps.items():
    kinds = [output.kind for output in step.outputs]
    for kind in kinds:
      results[kind] = prepare_shards.ModalityResult()
    for split, items in corpus.items[modality].items():
      skipped = 0
      for item in items:
        if item.path is None:
          skips.add_missing(modality, item)
          skipped += 1
      skipped += found.add_skips(skips, modality, split, items)
      for kind in kinds:
        found.record(results[kind], kind, split, len(items), skipped)
  _remove_stale_shards(out, found.shards)
  if any(step.stats for step in steps.values()):
    prepare_shards.check_stats_count(found.stats_count, out)
  text = None
  if 'text' in corpus.items:
    text = _collect_text(found, corpus, skips)
  return results, found.stats_count, text


def _collect_text(found: Report, corpus: prepare_corpus.Corpus, skips):
  """The text ModalityResult (None: no vectorizer); adds the text rows."""
  empty = {split: found.add_skips(skips, 'text', split, items,
                                  path=corpus.reviews_path)
           for split, items in corpus.items['text'].items()}
  if 'error' in found.text:
    for split, items in corpus.items['text'].items():
      found.add_skips(skips, 'text', split, items, late=True,
                      path=corpus.reviews_path)
    return None
  result = prepare_shards.ModalityResult()
  for split, items in corpus.items['text'].items():
    found.record(result, 'text', split, len(items), empty[split])
  result.vocab_size = found.text['vocab_size']
  return result


def _remove_stale_shards(out: epath.Path, shards) -> None:
  """Removes the shards of an earlier run (another shard count) of every
  (kind, split) written, as ShardedWriter.close does."""
  for (kind, split), infos in shards.items():
    keep = {pathlib.PurePosixPath(info.file).name for info in infos}
    for old in (out / kind).glob(f'{split}-*-of-*{tfrecord.SHARD_SUFFIX}'):
      if old.name not in keep:
        old.unlink()

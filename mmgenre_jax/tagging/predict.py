"""Genres of many items, one result row each: the work of `mmgenre predict`.

  mmgenre predict --workdir runs/mumu_cosine --audio song.mp3 --top-k 5
  mmgenre predict --workdir BUNDLE --audio t1.flac t2.flac --cover c.jpg \
      --reviews reviews.txt                                  # one album
  mmgenre predict --workdir BUNDLE --audio ~/Music --format csv \
      --out tags.csv                                         # resumable

One row per input: `input`, `labels` (the top-k {"label", "score"} best
first), `decisions` (labels past their F1-optimal validation threshold,
with every ancestor of a decided label when the taxonomy is known),
`model` (the network that answered), `duration_s` and `warnings` (what
decoding the files observed: too short, silent, clipped, ...; see
docs/tagging.md), `notes`, `error` (null, or why this input could not be
tagged; the other inputs go on) and `sources` (size and mtime_ns of the
input's files, which a resumed run checks). The flags live in
mmgenre_jax/cli/predict.py.

  writer = items_lib.ResultWriter('tags.json', 'json')
  tally = predict.run(tagger, items, writer, top_k=5)
  tally.inputs_failed   # rows with an `error`, this run's and kept ones
"""

import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tqdm

from mmgenre_jax.tagging import decoding
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib

DEFAULT_TOP_K = 5


def predict_item(tagger: tagger_lib.Tagger, item: items_lib.Item,
                 top_k: int, level: str = 'all') -> Dict[str, Any]:
  """One output row; input errors become the row's `error`."""
  return predict_items(tagger, [item], top_k, level)[0]


def predict_items(tagger: tagger_lib.Tagger, items: Sequence[items_lib.Item],
                  top_k: int, level: str = 'all',
                  decoded: Optional[Mapping[str, Any]] = None
                  ) -> List[Dict[str, Any]]:
  """The rows of several items, their audio batched together
  (Tagger.predict_many; `decoded`: its tracks decoded whole, decoding.py):
  row for row those of predict_item."""
  # Stamped before reading: a file changed while it is tagged is redone by
  # the next resumed run.
  found = [items_lib.sources(item) for item in items]
  try:
    results = tagger.predict_many(items_lib.tagger_inputs(items), top_k=top_k,
                                  level=level, decoded=decoded)
  except tagger_lib.INPUT_ERRORS as e:  # A level the model cannot give.
    results = [e] * len(items)
  return [_row(item, result, sources)
          for item, result, sources in zip(items, results, found)]


def _row(item: items_lib.Item, result, sources) -> Dict[str, Any]:
  """An item's row of its Tagger.predict result, or of its input error."""
  if isinstance(result, Exception):
    return {'input': item.key, 'labels': [], 'decisions': None,
            'model': None, 'duration_s': None, 'warnings': [], 'notes': [],
            'error': str(result), 'sources': sources}
  duration = result['duration_s']
  return {'input': item.key, 'labels': result['labels'],
          'decisions': result['decisions'], 'model': result['model'],
          'duration_s': None if duration is None else round(duration, 4),
          'warnings': result['warnings'], 'notes': result['notes'],
          'error': None, 'sources': sources}


def run(tagger: tagger_lib.Tagger, items: Sequence[items_lib.Item],
        writer: items_lib.ResultWriter, *, top_k: int = DEFAULT_TOP_K,
        level: str = 'all', progress: bool = True,
        batch_items: int = items_lib.BATCH_ITEMS,
        decode_workers: int = items_lib.DECODE_WORKERS) -> items_lib.Tally:
  """Tags the items not yet in the writer's file, a row each, then closes it.

  The items are tagged batch_items at a time (predict_items: their audio
  windows share the networks' batches), and a batch's rows are written as
  soon as it is done: a run killed mid-batch loses that batch's work only
  (a resumed run tags it again).

  Args:
    tagger: the model.
    items: the inputs (items_lib.collect_items).
    writer: where rows go; the items of valid rows already in its file (a
      resumed run) are skipped, the rows of inputs gone or changed dropped
      (ResultWriter.start); what was found is printed on stderr.
    top_k: labels listed per row.
    level: 'all' labels or 'top'-level genres only (Tagger.predict).
    progress: show a progress bar (on stderr) for two items or more.
    batch_items: items tagged together (1: one at a time; the rows are the
      same).
    decode_workers: processes decoding audio ahead of the device
      (decoding.py; 1: in this process, 0: no decoding ahead, every file
      streamed). The rows are the same to float32 precision.

  Returns:
    The Tally: items tagged by this run and how many of them failed, rows
    kept from an earlier run and how many of those have an error.
  """
  todo = writer.start(items)
  if writer.resumed is not None:
    print(f'{writer.resumed.message(writer.name)} {len(todo)} of '
          f'{len(items)} inputs to tag.', file=sys.stderr)
  errors = 0
  try:
    with tqdm.tqdm(total=len(todo), desc='predict', unit='item',
                   disable=not progress or len(todo) < 2) as bar, \
        decoding.AheadDecoder(tagger, todo, decode_workers) as decoder:
      for batch in decoder.batches(batch_items):
        decoded = decoder.take(batch)
        # URL inputs (gs://...) are tagged from local copies (remote.py).
        for row in remote.tag_rows(lambda local: predict_items(
            tagger, local, top_k, level, decoded), batch):
          errors += row['error'] is not None
          writer.write(row)
        bar.update(len(batch))
  finally:
    writer.close()
  resumed = writer.resumed or items_lib.Resumed()
  return items_lib.Tally(len(todo), errors, resumed.kept, resumed.failed)

"""Decoding ahead: audio decoded in worker processes while the device works.

With a model whose audio front end runs on the JAX device
(`Tagger.whole_track_windows()`: the `jax_polyphase` front end), `mmgenre
predict` and `mmgenre embed` decode each local audio file whole in worker
processes (`streaming.decode_whole`, at the file's own rate) and hand a
batch's decoded tracks to the Tagger, which resamples them, computes their
CQT, windows and networks on the default JAX device, several tracks per
call (input_pipeline.features.device_windows). Meanwhile the workers decode
the next tracks: decoding overlaps the device's work.

  with decoding.AheadDecoder(tagger, items, workers=2) as decoder:
    for batch in decoder.batches(batch_items):
      tagger.predict_many(items_lib.tagger_inputs(batch),
                          decoded=decoder.take(batch))

The rows are those of the streaming path to float32 precision (the windows
are the same, docs/tagging.md). What goes to the stream instead: files
over streaming.WHOLE_TRACK_MAX_SECONDS (memory), shorter than a patch,
unseekable, truncated or unreadable (the stream words their warnings and
errors), URL inputs (read from local copies per batch, remote.py), and
every file of a model on the librosa front end. Memory: a batch holds at
most BATCH_TRACKS decoded tracks and the workers IN_FLIGHT_PER_WORKER each
ahead of it (float32 mono at the file's rate: 42 MB for 4 minutes at 44.1
kHz). workers=1 decodes in this process, without overlap, and so does a
run of fewer than WORKERS_FROM_TRACKS tracks.
"""

import dataclasses
import logging
from typing import Dict, Iterator, List, Optional, Sequence

from input_pipeline import fileio
from input_pipeline.features import streaming
from input_pipeline.prepare import workers as workers_lib
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging import items as items_lib

# Tracks decoded whole per batch (a batch is also at most batch_items items).
BATCH_TRACKS = 8
# Tracks each worker decodes ahead of the batch being computed.
IN_FLIGHT_PER_WORKER = 2
# Fewer tracks than this are decoded in this process: starting a worker
# (importing the decoders) takes ~1-2 s, and with less than a batch ahead
# there is little to overlap.
WORKERS_FROM_TRACKS = 2 * BATCH_TRACKS


@dataclasses.dataclass(frozen=True)
class _Job:
  """One file to decode (WorkerPool.map's job)."""
  path: str


def _decoded_paths(item: items_lib.Item) -> List[str]:
  """The item's files the workers decode: its local tracks."""
  return [p for p in item.audio if fileio.is_local(p)]


class AheadDecoder:
  """Decodes the audio of items in order, ahead of their use.

  A context manager: the workers stop when it exits. Without a model that
  computes its windows on the device (or with no local audio) it decodes
  nothing: `take` gives {} and the Tagger streams every file.
  """

  def __init__(self, tagger, items: Sequence[items_lib.Item],
               workers: int):
    """Args: tagger (its whole_track_windows()), items (in the order they
    will be taken), workers (decoding processes; 1: in this process; 0:
    none, every file is streamed)."""
    self.items = list(items)
    try:
      self.settings = tagger.whole_track_windows()
    except inputs_lib.INPUT_ERRORS:
      # Feature data that cannot be read (shards gone): every row gets
      # the error where the stream reads it, as without decoding ahead.
      self.settings = None
    self._pool = None
    self._results: Optional[Iterator[tuple]] = None
    jobs = [_Job(p) for item in self.items for p in _decoded_paths(item)]
    if len(jobs) < WORKERS_FROM_TRACKS:
      workers = min(workers, 1)  # Starting them would cost more.
    if workers > 0 and self.settings is not None and jobs:
      drop, overlap = self.settings
      self._pool = workers_lib.WorkerPool(
          workers, in_flight_per_worker=IN_FLIGHT_PER_WORKER)
      self._results = self._pool.map(
          streaming.decode_whole, jobs,
          lambda job: {'drop': drop, 'overlap': overlap})

  def __enter__(self) -> 'AheadDecoder':
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    if self._results is not None:
      self._results.close()
      self._results = None
    if self._pool is not None:
      self._pool.close()
      self._pool = None

  def batches(self, batch_items: int) -> Iterator[List[items_lib.Item]]:
    """The items in consecutive batches of at most `batch_items` items and,
    when decoding, BATCH_TRACKS decoded tracks (an item with more alone)."""
    limit = BATCH_TRACKS if self._results is not None else None
    for batch in items_lib.batches(self.items, batch_items):
      if limit is None:
        yield list(batch)
        continue
      part: List[items_lib.Item] = []
      tracks = 0
      for item in batch:
        count = len(_decoded_paths(item))
        if part and tracks + count > limit:
          yield part
          part, tracks = [], 0
        part.append(item)
        tracks += count
      if part:
        yield part

  def take(self, batch: Sequence[items_lib.Item]
           ) -> Dict[str, streaming.DecodedTrack]:
    """path -> DecodedTrack of the batch's tracks that decoded whole.

    The batches must be taken in order (`batches`), each once.
    """
    found: Dict[str, streaming.DecodedTrack] = {}
    if self._results is None:
      return found
    for _ in range(sum(len(_decoded_paths(item)) for item in batch)):
      try:
        # An error (or None) leaves the track to the stream, which words it.
        _, track, _ = next(self._results)
      except workers_lib.WorkerStartError as e:
        logging.warning('decoding workers could not start; the audio is '
                        'streamed in this process instead: %s', e)
        self.close()
        break
      if track is not None:
        found[track.path] = track
    return found

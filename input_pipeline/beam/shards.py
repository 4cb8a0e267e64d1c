"""Writing record groups into shards on Beam, as ShardedWriter lays them out.

beam_prepare's pipeline makes each item's records as one group keyed by
(record kind, split) and the item's index; WriteShards writes every (kind,
split)'s shards from them:

  groups: ((kind, split), (index, [record, ...])), one per item written
    sizes (index, records in the group), taken where the groups are made
    | GroupByKey (kind, split) | shard_layout -> ShardLayout
  groups keyed ((kind, split), index % FANOUT), each layout copied to its
    FANOUT keys | GroupByKey: every group meets its layout (a broadcast
    join, in place of a side input: DaskRunner has none)
    | key by (kind, split, shard, shard count) | GroupByKey
    | write_shard: one worker writes each shard from its groups, in index
      order (a temporary file renamed or uploaded once complete)

so the shards are those tfrecord.ShardedWriter writes for the same groups in
index order, byte for byte, and no worker holds more than one shard's
records. A (kind, split) with no record gets one empty shard, as
ShardedWriter writes one.

  written = groups | WriteShards(out, shard_size, keys)
  written['shards']   # (kind, split, shard, ShardInfo) per shard
  written['layouts']  # ((kind, split), ShardLayout)
"""

import dataclasses
import os
from typing import Dict, Iterable, List, Sequence, Tuple

from etils import epath
import apache_beam as beam

from input_pipeline import fileio
from input_pipeline import startup
from input_pipeline.records import tfrecord

tf = startup.import_tensorflow()

Key = Tuple[str, str]  # (record kind, split)
# The join keys of each (kind, split): how many workers can take its groups
# to their shards at once (module docstring).
FANOUT = 16
# What a joined value is.
_GROUP, _LAYOUT = 'group', 'layout'


@dataclasses.dataclass(frozen=True)
class ShardLayout:
  """Where ShardedWriter puts the record groups of one (kind, split).

  Attributes:
    shard_of: item index -> its shard (items with no record are in none).
    records: records per shard (one empty shard when there are none).
    items: the items written, those with no record too.
  """
  shard_of: Dict[int, int]
  records: List[int]
  items: int


def shard_layout(sizes: Iterable[Tuple[int, int]],
                 shard_size: int) -> ShardLayout:
  """The shards ShardedWriter.write_group gives record groups in index order.

  A new shard starts only before a non-empty group, once the current one
  holds shard_size records or more; so a group never straddles two shards.

  Args:
    sizes: (item index, records in its group) of every item written.
    shard_size: records per shard.
  """
  shard_of, records, items = {}, [], 0
  for index, count in sorted(sizes):
    items += 1
    if not count:
      continue  # Written nowhere, as write_group([]) writes nothing.
    if not records or records[-1] >= shard_size:
      records.append(0)
    shard_of[index] = len(records) - 1
    records[-1] += count
  return ShardLayout(shard_of, records or [0], items)


def write_shard(out: epath.Path, kind: str, split: str, index: int,
                count: int, records: Sequence[bytes]) -> tfrecord.ShardInfo:
  """Writes one shard, OUT/kind/{split}-{index}-of-{count}, atomically.

  The records go to a hidden temporary file (beside it; for a URL `out`, on
  this worker's disk) that is renamed or uploaded once complete
  (fileio.publish), so a reader (or a killed run) never sees a partial
  shard.
  """
  out = epath.Path(out)
  shard_dir = out / kind
  shard_dir.mkdir(parents=True, exist_ok=True)
  final = shard_dir / tfrecord.shard_name(split, index, count)
  tmp = fileio.temp_file(shard_dir, prefix=f'.{final.name}.')
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for record in records:
        writer.write(record)
    digest = tfrecord.sha256_file(tmp)
    fileio.publish(tmp, final)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return tfrecord.ShardInfo(file=final.relative_to(out).as_posix(),
                            records=len(records), sha256=digest)


def _keyed_layout(key_sizes, shard_size: int):
  """(key, its ShardLayout) of a key's grouped sizes (None: its marker)."""
  key, sizes = key_sizes
  return key, shard_layout([s for s in sizes if s is not None], shard_size)


def _spread(element):
  """((kind, split), (index, group)) -> its join key and tagged value."""
  key, (index, group) = element
  return (key, index % FANOUT), (_GROUP, (index, group))


def _broadcast(key_layout):
  """((kind, split), ShardLayout) -> one copy for each of its join keys."""
  key, layout_ = key_layout
  for part in range(FANOUT):
    yield (key, part), (_LAYOUT, layout_)


def _shard_keys(joined):
  """A join key's layout and groups -> ((kind, split, shard, count),
  (index, group)) for each group."""
  ((kind, split), _), tagged = joined
  tagged = list(tagged)
  layout_ = next(value for tag, value in tagged if tag == _LAYOUT)
  for tag, (index, group) in ((t, v) for t, v in tagged if t == _GROUP):
    if index in layout_.shard_of:
      yield (kind, split, layout_.shard_of[index], len(layout_.records)), (
          index, group)


def _empty_shard(key_layout):
  """The one empty shard of a (kind, split) with no record, as
  ShardedWriter writes one: readers see an empty split, not a missing one."""
  (kind, split), layout_ = key_layout
  if not layout_.shard_of:
    yield (kind, split, 0, 1), []


def _write_grouped(key_groups, out):
  """Writes a shard from its (index, group)s; (kind, split, shard, info)."""
  (kind, split, shard, count), groups = key_groups
  ordered = sorted(groups, key=lambda g: g[0])
  info = write_shard(out, kind, split, shard, count,
                     [record for _, group in ordered for record in group])
  return kind, split, shard, info


class WriteShards(beam.PTransform):
  """Record groups -> the shards of every (kind, split), as ShardedWriter
  lays them out.

  Input: PCollections of ((kind, split), (index, [record, ...])), together
  one element for every item written. The layout of each (kind, split)
  (shard_layout) is computed from the group sizes alone and joined with the
  groups (module docstring), so each shard is written by one worker from
  only its own records. (The sizes are taken from each input before they are
  flattened, in the stage that makes the records: a runner materialises a
  Flatten of several stages' outputs, and the records would go through it
  once more for their sizes.)

  Returns:
    {'shards': (kind, split, shard, ShardInfo) per shard written,
     'layouts': ((kind, split), ShardLayout) per (kind, split)}.
  """

  def __init__(self, out: epath.Path, shard_size: int, keys):
    """keys: PCollection of the (kind, split)s that get shards even when no
    item of them is written."""
    super().__init__()
    self._out = out
    self._shard_size = shard_size
    self._keys = keys

  def expand(self, inputs):
    sizes = tuple(
        records | f'Sizes{i}' >> beam.MapTuple(
            lambda key, group: (key, (group[0], len(group[1]))))
        for i, records in enumerate(inputs))
    layouts = (
        sizes + (self._keys | 'AllKeys' >> beam.Map(lambda key: (key, None)),)
        | 'FlattenSizes' >> beam.Flatten()
        | 'GroupSizes' >> beam.GroupByKey()
        | 'Layout' >> beam.Map(_keyed_layout, shard_size=self._shard_size))
    spread = tuple(records | f'Spread{i}' >> beam.Map(_spread)
                   for i, records in enumerate(inputs))
    keyed = (spread + (layouts | 'Broadcast' >> beam.FlatMap(_broadcast),)
             | 'FlattenJoin' >> beam.Flatten()
             | 'Join' >> beam.GroupByKey()
             | 'ShardKey' >> beam.FlatMap(_shard_keys))
    shards = (keyed | 'GroupShards' >> beam.GroupByKey()
              | 'Write' >> beam.Map(_write_grouped, out=self._out))
    # Apart from the records: a Flatten with them would be one more pass.
    empty = (layouts | 'EmptySplits' >> beam.FlatMap(_empty_shard)
             | 'WriteEmpty' >> beam.Map(_write_grouped, out=self._out))
    return {'shards': (shards, empty) | 'AllShards' >> beam.Flatten(),
            'layouts': layouts}

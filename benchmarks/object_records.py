r"""Read rate of TFRecord shards: tf.data's C++ reader vs object_records.

  python benchmarks/object_records.py --work /tmp/object_records --mib 256

Writes (or reuses) 8 shard files of records of 124,032 bytes (one audio
patch, float32 322 x 96) totalling --mib MiB, then reads every record
(tf.data, as make_dataset reads them: interleave of 4 files, no parsing):

  tfrecord-local   tf.data.TFRecordDataset on the local files
  object-local     object_records.records on the local files (the Python
                   framing and CRC32C over a local file object)
  object-gcs       object_records.records on the same files uploaded to a
                   GCS emulator on 127.0.0.1 (gcsfs over HTTP to a Python
                   server: a lower bound for a real bucket)

Each reader runs --rounds times, the order rotated; one JSON line per run
{"section": "object_records", "reader", "mib", "wall_s", "mib_per_s"},
then the medians.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'tests')]
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from helpers import gcs_emulator  # noqa: E402
from input_pipeline.records import object_records  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

RECORD_BYTES = 322 * 96 * 4
FILES = 8


def _write(folder: pathlib.Path, mib: int) -> list:
  folder.mkdir(parents=True, exist_ok=True)
  per_file = max(1, mib * 2**20 // RECORD_BYTES // FILES)
  paths = [folder / f'train-{i:05d}-of-{FILES:05d}.tfrecord'
           for i in range(FILES)]
  rng = np.random.default_rng(0)
  for path in paths:
    if path.exists():
      continue
    with tf.io.TFRecordWriter(str(path)) as writer:
      for _ in range(per_file):
        writer.write(rng.bytes(RECORD_BYTES))
  return [str(p) for p in paths]


def _read(files, reader) -> int:
  ds = tf.data.Dataset.from_tensor_slices(files).interleave(
      reader, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True)
  return sum(len(r) for r in ds.as_numpy_iterator())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work', default='/tmp/object_records')
  parser.add_argument('--mib', type=int, default=256)
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  files = _write(pathlib.Path(args.work), args.mib)
  with gcs_emulator.running('b') as server:
    os.environ.update(server.env)
    gcs_emulator.upload(args.work, 'gs://b/shards')
    urls = [f'gs://b/shards/{os.path.basename(f)}' for f in files]
    readers = {'tfrecord-local': (files, tf.data.TFRecordDataset),
               'object-local': (files, object_records.records),
               'object-gcs': (urls, object_records.records)}
    rates = {name: [] for name in readers}
    names = list(readers)
    for r in range(args.rounds):
      for name in names[r % len(names):] + names[:r % len(names)]:
        paths, reader = readers[name]
        start = time.perf_counter()
        size = _read(paths, reader)
        wall = time.perf_counter() - start
        rates[name].append(size / 2**20 / wall)
        print(json.dumps({'section': 'object_records', 'reader': name,
                          'mib': round(size / 2**20, 1),
                          'wall_s': round(wall, 3),
                          'mib_per_s': round(rates[name][-1], 1)}),
              flush=True)
  print(json.dumps({'section': 'object_records_summary',
                    'median_mib_per_s': {n: round(statistics.median(v), 1)
                                         for n, v in rates.items()}}))


if __name__ == '__main__':
  main()

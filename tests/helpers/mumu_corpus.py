"""A hand-made MuMu corpus with one defect of each kind, and readers of
what `mmgenre prepare` writes from it."""

import csv
import json
import pathlib

import numpy as np
from PIL import Image
import soundfile

from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from input_pipeline.records import tfrecord

LABELS = ('Rock', 'Jazz', 'Pop', 'Blues')
# album -> (artist, tracks, genres, split). 'Zydeco' is not in LABELS.
ALBUMS = {
    'A1': ('ar1', ('T1', 'T2'), 'Rock,Pop', 'train'),
    'A2': ('ar2', ('T3',), 'Jazz', 'train'),
    'A3': ('ar3', ('T4', 'T5'), 'Blues,Zydeco', 'train'),
    'A4': ('ar4', ('T6',), 'Pop', 'val'),
    'A5': ('ar5', ('T7',), 'Rock', 'test'),
    'A6': ('ar6', ('T8',), 'Zydeco', 'test'),
}
REVIEWS = {
    'A1': ['Guitars roar over thunderous drums.', 'Anthemic riffs again.'],
    'A2': ['Smoky saxophone and brushed cymbals.'],
    'A3': ['Slide guitar laments, a weary harmonica.'],
    'A4': ['Xylophonic bubblegum hooks everywhere.'],
    'A5': [''],
    'A6': ['Accordion washboard stomp.'],
}
# Audio: track -> (seconds, sample rate, tone Hz); T3 is corrupt, T5 missing.
# T6 is long enough for 3 whole-track windows (970 frames, 680 kept).
TRACKS = {'T1': (16.5, 22050, 220.0), 'T2': (2.0, 44100, 440.0),
          'T4': (3.0, 22050, 110.0), 'T6': (45.0, 22050, 330.0),
          'T7': (2.0, 16000, 660.0), 'T8': (2.0, 22050, 550.0)}
IMAGE_SIZE = 32
# 2 of the 7 tracks are broken (T3 corrupt, T5 missing): over the default
# failure budget (0.2), within this one.
BUDGET = 0.5


def write_tone(path, seconds, rate, hz):
  t = np.arange(int(seconds * rate)) / rate
  # Amplitude rises with time so crops at different offsets differ.
  y = 0.5 * np.sin(2 * np.pi * hz * t) * np.minimum(1.0, 0.1 + t / seconds)
  soundfile.write(path, y.astype(np.float32), rate)


def make_corpus(root: pathlib.Path) -> pathlib.Path:
  """Writes the hand-made corpus; returns its splits directory."""
  (root / 'audio').mkdir(parents=True)
  (root / 'covers').mkdir()
  with open(root / 'MuMu_dataset_multi-label.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(mumu.MUMU_COLUMNS)
    for album, (artist, tracks, genres, _) in ALBUMS.items():
      for track in tracks:
        writer.writerow([album, f'mb-{album}', track, f'rec-{track}', artist,
                         genres])
  (root / 'genre_labels_MuMu.tsv').write_text('\n'.join(LABELS))
  with open(root / 'reviews.jsonl', 'w') as f:
    for album, texts in REVIEWS.items():
      for text in texts:
        f.write(json.dumps({'asin': album, 'reviewText': text}) + '\n')
  for track, (seconds, rate, hz) in TRACKS.items():
    write_tone(root / 'audio' / f'{track}.wav', seconds, rate, hz)
  (root / 'audio' / 'T3.wav').write_bytes(b'RIFF\x00\x01garbage' * 10)
  rng = np.random.default_rng(0)
  for i, album in enumerate(ALBUMS):
    pixels = rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / 'covers' / f'{album}.png')
  (root / 'covers' / 'A4.png').write_bytes(b'')
  split_dir = root / 'splits'
  splits_lib.write_splits(
      {name: [a for a, v in ALBUMS.items() if v[3] == name]
       for name in splits_lib.SPLIT_NAMES}, split_dir)
  return split_dir


def read_records(out, manifest, modality, split):
  entry = manifest['modalities'][modality]
  specs = tfrecord.specs_from_json(entry['features'])
  paths = [out / s['file'] for s in entry['shards'][split]]
  return [tfrecord.decode_example(r, specs)
          for r in tfrecord.read_records(paths)]


def skipped_rows(out):
  with open(out / layout.SKIPPED_TSV, newline='') as f:
    return list(csv.DictReader(f, delimiter='\t'))



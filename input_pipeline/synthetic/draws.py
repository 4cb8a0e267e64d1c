"""Random draws of the synthetic corpus: one generator per item.

Every random draw comes from a numpy Generator seeded by (seed, stream,
index), so an item does not depend on any other item, on the order items are
written in, or on the number of worker processes.
"""

import uuid
import zlib
from typing import Sequence

import numpy as np

# RNG streams: every random draw comes from Generator((seed, stream, index)).
ARTIST, ALBUM, AUDIO, IMAGE, TEXT, SPLIT, DEFECT = range(11, 18)

_ALNUM = np.array(list('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'))

# Invented artist and reviewer names are made of these.
NAME_SYLLABLES = ('ka', 'lo', 'mi', 'ra', 'ven', 'tor', 'el', 'sa', 'dru',
                  'fen', 'ga', 'hol', 'is', 'jo', 'ny', 'pe', 'que', 'sté',
                  'bø', 'ul', 'win', 'xa', 'zo', 'mar', 'lin', 'dé')


def item_rng(seed: int, stream: int, *index: int) -> np.random.Generator:
  """The generator of one item; independent of every other item's."""
  return np.random.default_rng(np.random.SeedSequence((seed, stream) + index))


def label_rng(label: str, what: int) -> np.random.Generator:
  """A generator fixed per label (no seed): a sub-genre's variation."""
  # zlib.crc32, not hash(): Python salts str hashes per process.
  return np.random.default_rng((zlib.crc32(label.encode('utf-8')), what))


def random_id(rng: np.random.Generator, prefix: str, length: int) -> str:
  return prefix + ''.join(rng.choice(_ALNUM, length))


def uuid4(rng: np.random.Generator) -> str:
  return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def choose(rng: np.random.Generator, table):
  """Draws a row of a table whose rows have their probability second."""
  p = np.array([row[1] for row in table], np.float64)
  return table[rng.choice(len(table), p=p / p.sum())]


def invented_word(rng: np.random.Generator, syllables: int) -> str:
  return ''.join(rng.choice(NAME_SYLLABLES, syllables))


def decoy(rng: np.random.Generator, label: str, signal: float,
          labels: Sequence[str]) -> str:
  """`label` with probability `signal`, else a uniformly drawn label."""
  if rng.random() < signal:
    return label
  return labels[int(rng.integers(len(labels)))]

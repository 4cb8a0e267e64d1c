"""The genre taxonomy of the synthetic corpus and its label helpers.

Two levels: the 15 MSD-I genres (paper Table 1) on top, each with 1-3
sub-genres named after MuMu/Amazon labels. Album multi-labels are expanded to
every branch (expand_to_parents), so label co-occurrence has the structure the
PPMI factorisation relies on (paper Sec. 5.1).
"""

from typing import List, Sequence

# The 15 MSD-I genres (in the order of paper Table 1) as the top level, each
# with 1-3 sub-genres named after MuMu/Amazon labels: 42 labels.
TAXONOMY = {
    'Blues': ('Chicago Blues', 'Delta Blues'),
    'Country': ('Bluegrass', 'Outlaw Country'),
    'Electronic': ('House', 'Techno', 'Ambient'),
    'Folk': ('British Folk', 'Contemporary Folk'),
    'Jazz': ('Bebop', 'Vocal Jazz', 'Smooth Jazz'),
    'Latin': ('Salsa', 'Bossa Nova'),
    'Metal': ('Death Metal', 'Thrash & Speed Metal'),
    'New Age': ('Meditation',),
    'Pop': ('Dance Pop', 'Teen Pop'),
    'Punk': ('Hardcore',),
    'Rap': ('Gangsta & Hardcore', 'Southern Rap'),
    'Reggae': ('Dub', 'Dance Hall'),
    'RnB': ('Soul', 'Funk'),
    'Rock': ('Alternative Rock', 'Hard Rock', 'Progressive Rock'),
    'World': ('Africa',),
}
GENRES = tuple(TAXONOMY)
# Relative number of artists per primary genre: mildly imbalanced, like the
# per-genre counts of MSD-I (paper Table 1) and the label counts of MuMu.
GENRE_WEIGHTS = {
    'Blues': 0.8, 'Country': 1.2, 'Electronic': 2.0, 'Folk': 1.0,
    'Jazz': 1.5, 'Latin': 0.8, 'Metal': 1.0, 'New Age': 0.6, 'Pop': 2.5,
    'Punk': 1.0, 'Rap': 1.5, 'Reggae': 0.8, 'RnB': 1.2, 'Rock': 3.0,
    'World': 0.7,
}


def labels_of(genres: Sequence[str]) -> List[str]:
  """The taxonomy labels of some top-level genres, taxonomy order."""
  return [label for genre in genres for label in (genre,) + TAXONOMY[genre]]


PARENT = {sub: genre for genre, subs in TAXONOMY.items() for sub in subs}


def top_genre(label: str) -> str:
  """The top-level genre of a label (itself for a top-level one)."""
  return PARENT.get(label, label)


def expand_to_parents(labels: Sequence[str]) -> List[str]:
  """Adds the parent of every sub-genre; first-seen order, no repeats."""
  out = {}
  for label in labels:
    out[label] = None
    if label in PARENT:
      out[PARENT[label]] = None
  return list(out)

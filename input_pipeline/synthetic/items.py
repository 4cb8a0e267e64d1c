"""What a synthetic corpus is made of: artists, albums, tracks, their paths.

Plain frozen dataclasses, drawn by plan.py before any file is written; the
audio, cover and review generators read them.
"""

import dataclasses
from typing import Tuple

from input_pipeline import layout


@dataclasses.dataclass(frozen=True)
class Artist:
  """An artist and its fingerprint in each modality.

  Attributes:
    index: position in the corpus.
    name: invented name (appears in reviews).
    mbid: artist_mbid (uuid4 format).
    msd_id: msd_artist_id ('AR' + 16 alnum).
    primary: top-level genre of every album of the artist.
    subs: preferred sub-genres of `primary`.
    crossover: second top-level genre some albums also carry.
    crossover_rate: probability that an album carries `crossover`.
    num_albums: albums written for this artist.
    key: tonic pitch class of the signature, 0-11.
    tempo_factor: the artist's tempo relative to the genre's.
    harmonics: [audio.NUM_HARMONICS] the artist's timbre.
    motif: 4 scale degrees of the signature melody.
    motif_register: MIDI centre of the signature melody.
    colour: RGB of the cover emblem and tint.
    emblem: shape of the emblem.
    corner: 0-3, where the emblem sits.
    pet_words: invented words the reviewers use for this artist.
    rating: mean star rating.
  """
  index: int
  name: str
  mbid: str
  msd_id: str
  primary: str
  subs: Tuple[str, ...]
  crossover: str
  crossover_rate: float
  num_albums: int
  key: int
  tempo_factor: float
  harmonics: Tuple[float, ...]
  motif: Tuple[int, ...]
  motif_register: float
  colour: Tuple[int, int, int]
  emblem: str
  corner: int
  pet_words: Tuple[str, ...]
  rating: float


@dataclasses.dataclass(frozen=True)
class Track:
  track_id: str
  recording_mbid: str
  label: str  # the label whose sound this track has (before the signal)
  ext: str
  sample_rate: int
  channels: int
  duration: float


@dataclasses.dataclass(frozen=True)
class Album:
  """An album: the metadata rows and what its files are made from."""
  index: int
  artist: Artist
  amazon_id: str
  mbid: str
  labels: Tuple[str, ...]  # expanded to parents, primary genre first
  leaves: Tuple[str, ...]  # the labels drawn before expansion
  tracks: Tuple[Track, ...]
  cover_label: str
  cover_ext: str
  cover_mode: str
  cover_size: Tuple[int, int]



def audio_path(track: Track) -> str:
  """Where a track's audio file lies, relative to the corpus directory."""
  return f'{layout.AUDIO_DIR}/{track.track_id}.{track.ext}'


def cover_path(album: Album) -> str:
  """Where an album's cover lies, relative to the corpus directory."""
  return f'{layout.COVERS_DIR}/{album.amazon_id}.{album.cover_ext}'

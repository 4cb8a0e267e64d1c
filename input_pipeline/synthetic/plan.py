"""The plan of a synthetic corpus: its artists, albums, sets and defects.

Everything about a corpus that is not a file's content is drawn here, before
any file is written: artists with a consistent genre profile and a
fingerprint of their own, 1-4 albums each with 1-6 tracks (formats, rates,
durations) and a cover (format, mode, size); the MSD-I sets (whole artists,
70/15/15 of tracks, paper Sec. 6.1) and the items made broken.
"""

import collections
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from input_pipeline.synthetic import audio
from input_pipeline.synthetic import covers
from input_pipeline.synthetic import draws
from input_pipeline.synthetic import items
from input_pipeline.synthetic import taxonomy

ALBUMS_PER_ARTIST = (1, 4)  # inclusive range
TRACKS_PER_ALBUM = (1, 6)  # inclusive range
DURATION_RANGE_S = (10.0, 40.0)
# MSD-I: 70/15/15 of tracks, whole artists per set (paper Sec. 6.1).
MSDI_SET_FRACTIONS = (('train', 0.70), ('val', 0.15), ('test', 0.15))
# Mostly small, quickly encoded ogg files keep the default corpus under
# 400 MB and 3 minutes on 2 cores (mp3 encodes at half the speed, flac and wav
# are 5-10x larger); the minority formats, rates and stereo files are there
# to exercise the readers.
AUDIO_FORMATS = (  # extension, probability, soundfile format, subtype, kwargs
    ('ogg', 0.70, 'OGG', 'VORBIS', {'compression_level': 1.0}),
    ('mp3', 0.22, 'MP3', 'MPEG_LAYER_III', {}),
    ('flac', 0.04, 'FLAC', 'PCM_16', {}),
    ('wav', 0.04, 'WAV', 'PCM_16', {}),
)
SAMPLE_RATES = ((22050, 0.75), (44100, 0.15), (48000, 0.10))
STEREO_PROBABILITY = 0.15
COVER_SIZE_RANGE = (200, 600)
# Colour mode -> (probability, allowed extensions): JPEG has no P or RGBA,
# PNG has no CMYK.
COVER_MODES = (
    ('RGB', 0.55, ('jpg', 'png')),
    ('L', 0.10, ('jpg', 'png')),
    ('P', 0.12, ('png',)),
    ('RGBA', 0.11, ('png',)),
    ('CMYK', 0.12, ('jpg',)),
)
# Probability that an album has a second top-level genre (given the artist
# has a crossover tendency, drawn per artist below this value).
MAX_CROSSOVER = 0.5

# Kinds of broken inputs written by `defects=K` (K of each).
DEFECT_KINDS = ('empty_audio', 'corrupt_audio', 'corrupt_image',
                'empty_reviews')


def make_artist(seed: int, index: int, genres: Sequence[str]) -> items.Artist:
  """Draws artist `index` of a corpus; depends only on (seed, index)."""
  rng = draws.item_rng(seed, draws.ARTIST, index)
  weights = np.array([taxonomy.GENRE_WEIGHTS[g] for g in genres])
  primary = genres[rng.choice(len(genres), p=weights / weights.sum())]
  subs = taxonomy.TAXONOMY[primary]
  n_subs = min(len(subs), int(rng.integers(1, 3)))
  preferred = tuple(sorted(rng.choice(len(subs), n_subs, replace=False)))
  others = [g for g in genres if g != primary] or [primary]
  name = ' '.join(
      draws.invented_word(rng, int(rng.integers(2, 4))).capitalize()
      for _ in range(int(rng.integers(1, 3))))
  harmonics = rng.uniform(0, 1, audio.NUM_HARMONICS) / np.arange(
      1, audio.NUM_HARMONICS + 1)**rng.uniform(0.5, 2.0)
  return items.Artist(
      index=index,
      name=name,
      mbid=draws.uuid4(rng),
      msd_id=draws.random_id(rng, 'AR', 16),
      primary=primary,
      subs=tuple(subs[i] for i in preferred),
      crossover=others[int(rng.integers(len(others)))],
      crossover_rate=float(rng.uniform(0, MAX_CROSSOVER)),
      num_albums=int(rng.integers(ALBUMS_PER_ARTIST[0],
                                  ALBUMS_PER_ARTIST[1] + 1)),
      key=int(rng.integers(12)),
      tempo_factor=float(rng.uniform(0.88, 1.12)),
      harmonics=tuple(float(h) for h in harmonics / harmonics.sum()),
      motif=tuple(int(d) for d in rng.integers(-3, 8, 4)),
      motif_register=float(rng.uniform(62, 86)),
      colour=tuple(int(c) for c in rng.integers(0, 256, 3)),
      emblem=covers.SHAPES[int(rng.integers(len(covers.SHAPES)))],
      corner=int(rng.integers(4)),
      pet_words=tuple(draws.invented_word(rng, 3) + suffix
                      for suffix in ('ous', 'esque', 'ing')),
      rating=float(rng.uniform(3.0, 4.8)),
  )


def make_album(seed: int, index: int, artist: items.Artist) -> items.Album:
  """Draws album `index` of `artist`; depends only on (seed, index)."""
  rng = draws.item_rng(seed, draws.ALBUM, index)
  subs = taxonomy.TAXONOMY[artist.primary]
  # Mostly the artist's preferred sub-genres: a consistent genre profile.
  pool = artist.subs if rng.random() < 0.8 else subs
  n_subs = min(len(pool), int(rng.integers(1, 3)))
  leaves = [pool[i] for i in sorted(rng.choice(len(pool), n_subs,
                                               replace=False))]
  crossover_side = []
  if artist.crossover != artist.primary and (rng.random() <
                                             artist.crossover_rate):
    crossover_side = [artist.crossover]
    if rng.random() < 0.5:
      cross_subs = taxonomy.TAXONOMY[artist.crossover]
      crossover_side.append(cross_subs[int(rng.integers(len(cross_subs)))])
  labels = taxonomy.expand_to_parents([artist.primary] + leaves +
                                      crossover_side)
  tracks = []
  for _ in range(int(rng.integers(TRACKS_PER_ALBUM[0],
                                  TRACKS_PER_ALBUM[1] + 1))):
    ext = draws.choose(rng, AUDIO_FORMATS)[0]
    sample_rate = draws.choose(rng, SAMPLE_RATES)[0]
    low, high = DURATION_RANGE_S
    # Skewed to short tracks (mean ~18 s) to keep the corpus cheap.
    duration = low + (high - low) * float(rng.beta(1.1, 3.2))
    if crossover_side and rng.random() < 0.3:
      label = crossover_side[-1]
    else:
      label = leaves[int(rng.integers(len(leaves)))]
    tracks.append(items.Track(
        track_id=draws.random_id(rng, 'TR', 16),
        recording_mbid=draws.uuid4(rng),
        label=label,
        ext=ext,
        sample_rate=int(sample_rate),
        channels=2 if rng.random() < STEREO_PROBABILITY else 1,
        duration=round(duration, 3)))
  mode, _, exts = draws.choose(rng, COVER_MODES)
  ext = exts[0] if len(exts) == 1 or rng.random() < 0.7 else exts[1]
  width = int(rng.integers(COVER_SIZE_RANGE[0], COVER_SIZE_RANGE[1] + 1))
  # Most covers are square, some are a scanned rectangle.
  height = width if rng.random() < 0.7 else int(np.clip(
      width * rng.uniform(0.8, 1.25), *COVER_SIZE_RANGE))
  return items.Album(
      index=index,
      artist=artist,
      amazon_id=draws.random_id(rng, 'B', 9),
      mbid=draws.uuid4(rng),
      labels=tuple(labels),
      leaves=tuple(leaves + crossover_side),
      tracks=tuple(tracks),
      cover_label=leaves[int(rng.integers(len(leaves)))],
      cover_ext=ext,
      cover_mode=mode,
      cover_size=(width, height))


def plan_corpus(
    seed: int, num_albums: int, genres: Sequence[str]
) -> Tuple[List[items.Artist], List[items.Album]]:
  """Artists and albums of a corpus, before any file is written.

  Artists are drawn one after the other, each with 1-4 albums, until there
  are `num_albums` (the last artist may get fewer). A larger corpus with the
  same seed starts with the same artists and albums.
  """
  artists, albums = [], []
  while len(albums) < num_albums:
    artist = make_artist(seed, len(artists), genres)
    n = min(artist.num_albums, num_albums - len(albums))
    artist = dataclasses.replace(artist, num_albums=n)
    artists.append(artist)
    for _ in range(n):
      albums.append(make_album(seed, len(albums), artist))
  ids = [a.amazon_id for a in albums] + [t.track_id for a in albums
                                         for t in a.tracks]
  if len(set(ids)) != len(ids):
    # 36**9 ids: not expected to happen; fail rather than write a bad corpus.
    raise RuntimeError(f'Seed {seed} drew a repeated id; use another seed.')
  return artists, albums


def assign_sets(seed: int, artists: Sequence[items.Artist],
                albums: Sequence[items.Album]) -> Dict[int, str]:
  """MSD-I sets: artists shuffled with the seed, cut at 70/15/15 of tracks.

  Whole artists go to one set, so no artist (and no album) is in two sets.

  Returns:
    artist index -> 'train', 'val' or 'test'.
  """
  tracks = collections.Counter()
  for album in albums:
    tracks[album.artist.index] += len(album.tracks)
  order = [int(i) for i in draws.item_rng(seed, draws.SPLIT).permutation(
      len(artists))]
  total = sum(tracks.values())
  bounds = np.cumsum([f for _, f in MSDI_SET_FRACTIONS])
  sets = {}
  done = 0
  for i in order:
    # An artist goes where the middle of its tracks falls.
    position = (done + tracks[i] / 2) / total
    sets[i] = MSDI_SET_FRACTIONS[int(np.searchsorted(bounds, position,
                                                     side='right'))][0]
    done += tracks[i]
  # Tiny corpora: make sure every set has an artist when there are enough.
  if len(order) >= len(MSDI_SET_FRACTIONS):
    for name, _ in MSDI_SET_FRACTIONS[::-1]:
      if name not in sets.values():
        counts = collections.Counter(sets.values())
        donor = next(i for i in reversed(order)
                     if counts[sets[i]] > 1)
        sets[donor] = name
  return sets


def choose_defects(seed: int, albums: Sequence[items.Album],
                   count: int) -> Dict[str, List[str]]:
  """Picks the items made broken: kind -> item ids (tracks or albums)."""
  if count == 0:
    return {kind: [] for kind in DEFECT_KINDS}
  rng = draws.item_rng(seed, draws.DEFECT)
  track_ids = [t.track_id for a in albums for t in a.tracks]
  if 2 * count > len(track_ids) or 2 * count > len(albums):
    raise ValueError(
        f'defects={count} needs at least {2 * count} albums and tracks '
        f'(this corpus has {len(albums)} albums, {len(track_ids)} tracks); '
        'lower --defects or raise --albums.')
  tracks = [track_ids[i] for i in rng.permutation(len(track_ids))[:2 * count]]
  picked = rng.permutation(len(albums))[:2 * count]
  album_ids = [albums[i].amazon_id for i in picked]
  return {
      'empty_audio': sorted(tracks[:count]),
      'corrupt_audio': sorted(tracks[count:]),
      'corrupt_image': sorted(album_ids[:count]),
      'empty_reviews': sorted(album_ids[count:]),
  }

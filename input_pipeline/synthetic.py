"""The embedded synthetic corpus: real files in the MuMu / MSD-I formats.

Audio and covers of MuMu and MSD-I are not redistributable (SPEC §1), so every
stage of the project runs by default on a corpus written here. It follows the
layout of docs/data_formats.md §1 and carries the structure the paper's
methods rely on:

  * a two-level genre taxonomy (the 15 MSD-I genres, each with 1-3
    sub-genres) and album multi-labels expanded to every branch, so label
    co-occurrence has real structure for the PPMI factorisation (Sec. 5.1);
  * artists with a consistent genre profile and a fingerprint of their own in
    every modality, several albums each, so that letting an artist into two
    splits would inflate scores (the reason for artist-filtered splits);
  * audio (wav/flac/ogg/mp3, 22.05/44.1/48 kHz, mono/stereo, 10-40 s) whose
    tempo, drum pattern, register, scale and timbre follow the genre; covers
    (jpg/png, 200-600 px, RGB/L/P/RGBA/CMYK) whose palette, shapes and
    texture follow the genre; Amazon-style reviews whose vocabulary follows
    the genre, with entities listed in enrichment.tsv.

How much genre a modality carries is set by its signal in [0, 1]: each genre
attribute of an item (a track's tempo, a cover's palette, a review's genre
word) comes from the item's own label with probability `signal` and from a
uniformly drawn label otherwise, so a signal of 0 makes the modality
independent of the genre. The defaults give text > audio > image, as in the
paper (Table 6).

Everything is drawn from numpy Generators seeded by (seed, stream, index), so
the corpus does not depend on the number of worker processes: the same seed
gives byte-identical metadata files, covers and wav/flac/mp3 audio. (Ogg
files decode to the same samples, but libsndfile puts a random stream serial
number in the container.)

  mmgenre synth --out runs/data/synthetic --albums 500 --seed 0
"""

import argparse
import collections
import concurrent.futures
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import pathlib
import shutil
import sys
import time
import uuid
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw
import scipy.signal
import soundfile
import tqdm

# Bumped when the same seed would give a different corpus.
GENERATOR_VERSION = 1

# --- Taxonomy --------------------------------------------------------------

# The 15 MSD-I genres (paper Table 1, order of SPEC §1) as the top level, each
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

# --- Corpus shape ----------------------------------------------------------

ALBUMS_PER_ARTIST = (1, 4)  # inclusive range
TRACKS_PER_ALBUM = (1, 6)  # inclusive range
REVIEWS_PER_ALBUM = (2, 8)  # inclusive range
DURATION_RANGE_S = (10.0, 40.0)
# MSD-I: 70/15/15 of tracks, whole artists per set (SPEC §1, paper Sec. 6.1).
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

# Signal strengths: probability that a genre attribute follows the item's
# label. Text > audio > image in genre information, as in the paper
# (Table 6: TEXT 0.917 > AUDIO 0.888 > IMAGE 0.743 AUC).
DEFAULT_TEXT_SIGNAL = 0.7
DEFAULT_AUDIO_SIGNAL = 0.5
DEFAULT_IMAGE_SIGNAL = 0.4
# Strength of every artist's fingerprint (signature motif, emblem, name and
# pet words): strong enough that an artist in two splits inflates scores.
DEFAULT_ARTIST_SIGNAL = 0.7

# Kinds of broken inputs written by `defects=K` (K of each).
DEFECT_KINDS = ('empty_audio', 'corrupt_audio', 'corrupt_image',
                'empty_reviews')

# RNG streams: every random draw comes from Generator((seed, stream, index)).
_ARTIST, _ALBUM, _AUDIO, _IMAGE, _TEXT, _SPLIT, _DEFECT = range(11, 18)

_ALNUM = np.array(list('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'))

# --- Genre sound (audio) ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sound:
  """How a genre sounds.

  Attributes:
    bpm: tempo, beats per minute.
    drums: key of DRUM_PATTERNS.
    swing: delay of odd 16th notes, fraction of a 16th.
    register: MIDI note at the centre of the melody.
    scale: key of SCALES.
    brightness: harmonic k has amplitude k**-brightness (low = bright).
    odd: extra weight of odd harmonics (clarinet-like hollow sound).
    decay: note decay time constant, seconds.
    drive: tanh distortion gain (1 = clean).
    noise: level of the broadband noise floor.
    density: melody notes per beat.
  """
  bpm: float
  drums: str
  swing: float
  register: float
  scale: str
  brightness: float
  odd: float
  decay: float
  drive: float
  noise: float
  density: float


SOUNDS = {
    'Blues': Sound(84, 'shuffle', .33, 57, 'blues', 1.3, 0., .5, 1.8, .01, 1),
    'Country': Sound(112, 'two_step', 0, 64, 'major', 1.4, 0., .35, 1, .005,
                     2),
    'Electronic': Sound(128, 'four_floor', 0, 69, 'minor', .7, 0., .12, 1.2,
                        .02, 4),
    'Folk': Sound(96, 'sparse', 0, 62, 'major_penta', 1.9, 0., .9, 1, .003,
                  1),
    'Jazz': Sound(150, 'ride', .33, 65, 'dorian', 2.2, .6, .45, 1, .005, 2),
    'Latin': Sound(104, 'clave', 0, 67, 'phrygian', 1.5, 0., .25, 1, .01, 2),
    'Metal': Sound(176, 'blast', 0, 48, 'harmonic_minor', .5, 0., .2, 8,
                   .05, 4),
    'New Age': Sound(62, 'none', 0, 74, 'major_penta', 3.5, 0., 2.5, 1, 0.,
                     .5),
    'Pop': Sound(118, 'backbeat', 0, 69, 'major', 1.2, 0., .3, 1.3, .008, 2),
    'Punk': Sound(184, 'punk', 0, 60, 'mixolydian', .8, 0., .15, 5, .04, 2),
    'Rap': Sound(90, 'boom_bap', .1, 45, 'minor_penta', 1.7, 0., .2, 1.5,
                 .02, 1),
    'Reggae': Sound(74, 'one_drop', 0, 55, 'major', 1.6, 0., .3, 1, .01, 1),
    'RnB': Sound(96, 'rnb', .15, 62, 'minor', 1.6, .2, .4, 1.2, .008, 2),
    'Rock': Sound(126, 'backbeat', 0, 55, 'minor_penta', .9, 0., .3, 3, .03,
                  2),
    'World': Sound(108, 'odd', 0, 63, 'double_harmonic', 1.3, .3, .5, 1,
                   .01, 2),
}
# 16 steps (16th notes) of one 4/4 bar: kick, snare, hi-hat.
DRUM_PATTERNS = {
    'backbeat': ('x.......x.x.....', '....x.......x...', 'x.x.x.x.x.x.x.x.'),
    'four_floor': ('x...x...x...x...', '....x.......x...',
                   '..x...x...x...x.'),
    'blast': ('xxxxxxxxxxxxxxxx', 'x.x.x.x.x.x.x.x.', 'x.x.x.x.x.x.x.x.'),
    'punk': ('x.x.x.x.x.x.x.x.', '....x.......x...', 'xxxxxxxxxxxxxxxx'),
    'boom_bap': ('x......x..x.....', '....x.......x...', 'x.x.x.x.x.x.x.x.'),
    'one_drop': ('........x.......', '........x.......', '..x...x...x...x.'),
    'two_step': ('x.......x.......', '....x.......x...', 'x...x...x...x...'),
    'ride': ('x.......x.......', '......x.......x.', 'x...x.x.x...x.x.'),
    'shuffle': ('x.......x.......', '....x.......x...', 'x.xxx.xxx.xxx.xx'),
    'clave': ('x..x..x...x.x...', '......x.......x.', 'x.x.x.x.x.x.x.x.'),
    'rnb': ('x..x......x.....', '....x.......x...', 'x.xxx.x.x.xxx.x.'),
    'odd': ('x..x..x.........', '..........x..x..', 'x.x.x.x.x.x.x.x.'),
    'sparse': ('x...............', '................', '....x.......x...'),
    'none': ('................', '................', '................'),
}
SCALES = {
    'major': (0, 2, 4, 5, 7, 9, 11),
    'minor': (0, 2, 3, 5, 7, 8, 10),
    'major_penta': (0, 2, 4, 7, 9),
    'minor_penta': (0, 3, 5, 7, 10),
    'blues': (0, 3, 5, 6, 7, 10),
    'dorian': (0, 2, 3, 5, 7, 9, 10),
    'mixolydian': (0, 2, 4, 5, 7, 9, 10),
    'phrygian': (0, 1, 3, 5, 7, 8, 10),
    'harmonic_minor': (0, 2, 3, 5, 7, 8, 11),
    'double_harmonic': (0, 1, 4, 5, 7, 8, 11),
}
NUM_HARMONICS = 16
WAVETABLE_SIZE = 2048
# 2nd-order Butterworth at 0.75 of the Nyquist frequency, any sample rate.
_LOWPASS = scipy.signal.butter(2, 0.75, output='sos')

# --- Genre look (covers) ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Look:
  """How a genre's covers look.

  Attributes:
    hue: centre hue of the palette, in [0, 1).
    hue_spread: +- range of hues around it.
    saturation: mean HSV saturation, [0, 1].
    value: mean HSV value (brightness), [0, 1].
    shape: what is drawn: key of the shape painters in _draw_shapes.
    texture: background texture: key of the painters in _texture.
  """
  hue: float
  hue_spread: float
  saturation: float
  value: float
  shape: str
  texture: str


LOOKS = {
    'Blues': Look(.62, .05, .6, .45, 'rects', 'grain'),
    'Country': Look(.08, .05, .5, .65, 'polygons', 'grain'),
    'Electronic': Look(.5, .3, .9, .9, 'lines', 'scanlines'),
    'Folk': Look(.25, .06, .4, .7, 'circles', 'paper'),
    'Jazz': Look(.12, .04, .6, .35, 'rects', 'smooth'),
    'Latin': Look(.02, .08, .85, .85, 'dots', 'smooth'),
    'Metal': Look(.0, .03, .7, .2, 'triangles', 'scratches'),
    'New Age': Look(.7, .08, .3, .9, 'rings', 'gradient'),
    'Pop': Look(.92, .1, .6, .95, 'circles', 'smooth'),
    'Punk': Look(.15, .05, .9, .8, 'triangles', 'halftone'),
    'Rap': Look(.0, .5, .1, .4, 'rects', 'grain'),
    'Reggae': Look(.2, .15, .9, .75, 'stripes', 'smooth'),
    'RnB': Look(.78, .05, .6, .5, 'circles', 'gradient'),
    'Rock': Look(.58, .1, .35, .5, 'lines', 'scratches'),
    'World': Look(.1, .1, .7, .7, 'polygons', 'halftone'),
}
SHAPES = ('rects', 'polygons', 'lines', 'circles', 'dots', 'triangles',
          'rings', 'stripes')
TEXTURES = ('grain', 'scanlines', 'paper', 'smooth', 'scratches', 'gradient',
            'halftone')

# --- Genre words (reviews) -------------------------------------------------

GENRE_WORDS = {
    'Blues': 'twelve-bar harmonica slide juke lament bottleneck shuffle '
             'crossroads moan sorrow',
    'Country': 'fiddle twang pedal-steel honky-tonk cowboy rodeo pickup '
               'heartland banjo barn',
    'Electronic': 'synth beats bpm drop sequencer club dancefloor bassline '
                  'remix analog',
    'Folk': 'acoustic ballad storyteller fingerpicked traditional campfire '
            'dulcimer hearth village songcraft',
    'Jazz': 'improvisation saxophone trio sideman swing chord-changes solo '
            'standards quintet brushes',
    'Latin': 'conga clave percussion tropical timbales montuno cumbia '
             'caliente trumpet dancers',
    'Metal': 'riffs shredding distortion headbanging brutal double-kick '
             'growl mosh heavy thunderous',
    'New Age': 'soothing relaxation meditative tranquil calming spa '
               'ethereal healing peaceful serene',
    'Pop': 'catchy hooks chorus radio-friendly singalong chart polished '
           'anthem upbeat hit',
    'Punk': 'raw snotty three-chord diy fast loud rebellious sloppy pogo '
            'anarchic',
    'Rap': 'rhymes flow mc verses beats lyrical mixtape turntables bars '
           'freestyle',
    'Reggae': 'riddim offbeat skank roots rasta island bassline dread '
              'jamaican irie',
    'RnB': 'groove soulful falsetto smooth vocals harmonies slow-jam sultry '
           'gospel-tinged velvet',
    'Rock': 'guitars power-chords drummer amps arena riff-heavy anthemic '
            'stadium fuzz rocking',
    'World': 'kora sitar oud polyrhythms ancestral chant griot tabla '
             'traditional-instruments desert',
}
SUB_WORDS = {
    'Chicago Blues': 'electric southside chess-records amplified',
    'Delta Blues': 'mississippi bottleneck-slide plantation dobro',
    'Bluegrass': 'mandolin breakdown appalachian high-lonesome',
    'Outlaw Country': 'rebel honky-tonkers whiskey renegade',
    'House': 'four-to-the-floor diva garage warehouse',
    'Techno': 'detroit minimal industrial-pulse 909',
    'Ambient': 'drones soundscape textures atmospheric',
    'British Folk': 'pastoral english-ballads morris fairport',
    'Contemporary Folk': 'singer-songwriter introspective coffeehouse '
                         'confessional',
    'Bebop': 'blistering-tempos parker bop virtuosic',
    'Vocal Jazz': 'crooner scat torch-song chanteuse',
    'Smooth Jazz': 'soprano-sax quiet-storm mellow polished-fusion',
    'Salsa': 'son-montuno descarga pianist horns',
    'Bossa Nova': 'brazilian samba-cancao rio nylon-string',
    'Death Metal': 'blast-beats guttural grindcore downtuned',
    'Thrash & Speed Metal': 'thrash speed-picking bay-area breakneck',
    'Meditation': 'mantra mindfulness breathing chakra',
    'Dance Pop': 'club-ready four-minute disco-pop choreography',
    'Teen Pop': 'boyband bubblegum teenage crush',
    'Hardcore': 'breakdowns straight-edge circle-pit gang-vocals',
    'Gangsta & Hardcore': 'street gritty west-coast hardcore-rhymes',
    'Southern Rap': 'crunk dirty-south trap atlanta',
    'Dub': 'echo reverb-drenched studio-as-instrument dubplate',
    'Dance Hall': 'toasting sound-system dancehall-riddim selector',
    'Soul': 'motown stax horn-section heartfelt',
    'Funk': 'slap-bass one-downbeat funky clavinet',
    'Alternative Rock': 'college-radio indie alt jangly',
    'Hard Rock': 'power-ballads big-riffs hair sleaze',
    'Progressive Rock': 'concept-album odd-meters mellotron epic-suites',
    'Africa': 'highlife afrobeat mbira soukous',
}
# Entities of enrichment.tsv: entity -> categories (genre-related), the kind
# of dictionary Babelfy + Wikipedia categories gave the paper (SPEC §2).
ENTITIES = {
    'Blues': (('Maxwell Street', 'Blues venues,Chicago music history'),
              ('Clarksdale', 'Delta blues,Mississippi music')),
    'Country': (('Grand Ole Opry', 'Country music venues,Nashville'),
                ('Bakersfield', 'Country music scenes,Honky-tonk')),
    'Electronic': (('Roland TR-808', 'Drum machines,Electronic music '
                    'instruments'),
                   ('Berghain', 'Techno clubs,Electronic dance music')),
    'Folk': (('Newport Folk Festival', 'Folk festivals,American folk music'),
             ('Cecil Sharp House', 'English folk music,Folk song '
              'collectors')),
    'Jazz': (('Blue Note', 'Jazz record labels,Hard bop'),
             ('Village Vanguard', 'Jazz clubs,Live jazz recordings')),
    'Latin': (('Fania', 'Salsa record labels,Latin music'),
              ('Havana', 'Cuban music,Afro-Cuban jazz')),
    'Metal': (('Wacken', 'Heavy metal festivals,Metal music'),
              ('Marshall stack', 'Guitar amplifiers,Heavy metal '
               'instruments')),
    'New Age': (('Windham Hill', 'New-age music record labels,Ambient '
                 'music'),
                ('Tibetan singing bowl', 'Meditation music,Sound healing')),
    'Pop': (('Billboard Hot 100', 'Pop music charts,Hit singles'),
            ('MTV', 'Music television,Pop music videos')),
    'Punk': (('CBGB', 'Punk rock venues,New York punk'),
             ('Dischord', 'Punk record labels,Hardcore punk')),
    'Rap': (('Def Jam', 'Hip hop record labels,Rap music'),
            ('The Bronx', 'Birthplaces of hip hop,Hip hop culture')),
    'Reggae': (('Studio One', 'Reggae record labels,Jamaican music'),
               ('Trenchtown', 'Roots reggae,Kingston culture')),
    'RnB': (('Motown', 'Soul music record labels,Rhythm and blues'),
            ('Apollo Theater', 'Soul music venues,Harlem music')),
    'Rock': (('Les Paul', 'Electric guitars,Rock music instruments'),
             ('Madison Square Garden', 'Arena rock venues,Rock concerts')),
    'World': (('WOMAD', 'World music festivals,Global music'),
              ('Timbuktu', 'Malian music,Desert blues')),
}
COMMON_SENTENCES = (
    'I bought this as a gift and ended up keeping it.',
    'Shipping was fast and the CD arrived in perfect shape.',
    'The liner notes are a nice touch.',
    'Not every song works, but the good ones are really good.',
    'I have listened to it at least ten times this week.',
    'The sound quality of this remaster is much better than my old copy.',
    'My only complaint is that it is too short.',
    'Worth every penny.',
    'It took a few listens to grow on me.',
    'The second half drags a little.',
    'Great for a long drive.',
    'Highly recommended to anyone who likes good music.',
    'I would give it six stars if I could.',
    'Disappointing compared to the previous record.',
    'The packaging was damaged but the disc plays fine.',
)
FILLER_WORDS = ('really', 'very', 'quite', 'honestly', 'just', 'pretty',
                'totally', 'definitely', 'maybe', 'actually')
ADJECTIVES = ('great', 'wonderful', 'solid', 'amazing', 'decent', 'fine',
              'beautiful', 'strong', 'weak', 'uneven', 'brilliant', 'lovely')
NAME_SYLLABLES = ('ka', 'lo', 'mi', 'ra', 'ven', 'tor', 'el', 'sa', 'dru',
                  'fen', 'ga', 'hol', 'is', 'jo', 'ny', 'pe', 'que', 'sté',
                  'bø', 'ul', 'win', 'xa', 'zo', 'mar', 'lin', 'dé')


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


def _rng(seed: int, stream: int, *index: int) -> np.random.Generator:
  """The generator of one item; independent of every other item's."""
  return np.random.default_rng(np.random.SeedSequence((seed, stream) + index))


def _label_rng(label: str, what: int) -> np.random.Generator:
  # zlib.crc32, not hash(): Python salts str hashes per process.
  return np.random.default_rng((zlib.crc32(label.encode('utf-8')), what))


def _random_id(rng: np.random.Generator, prefix: str, length: int) -> str:
  return prefix + ''.join(rng.choice(_ALNUM, length))


def _uuid4(rng: np.random.Generator) -> str:
  return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _choose(rng: np.random.Generator, table):
  """Draws a row of a table whose rows have their probability second."""
  p = np.array([row[1] for row in table], np.float64)
  return table[rng.choice(len(table), p=p / p.sum())]


# --- Corpus plan (metadata) ------------------------------------------------


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
    harmonics: [NUM_HARMONICS] the artist's timbre.
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


def _invented_word(rng: np.random.Generator, syllables: int) -> str:
  return ''.join(rng.choice(NAME_SYLLABLES, syllables))


def make_artist(seed: int, index: int, genres: Sequence[str]) -> Artist:
  """Draws artist `index` of a corpus; depends only on (seed, index)."""
  rng = _rng(seed, _ARTIST, index)
  weights = np.array([GENRE_WEIGHTS[g] for g in genres])
  primary = genres[rng.choice(len(genres), p=weights / weights.sum())]
  subs = TAXONOMY[primary]
  n_subs = min(len(subs), int(rng.integers(1, 3)))
  preferred = tuple(sorted(rng.choice(len(subs), n_subs, replace=False)))
  others = [g for g in genres if g != primary] or [primary]
  name = ' '.join(_invented_word(rng, int(rng.integers(2, 4))).capitalize()
                  for _ in range(int(rng.integers(1, 3))))
  harmonics = rng.uniform(0, 1, NUM_HARMONICS) / np.arange(
      1, NUM_HARMONICS + 1)**rng.uniform(0.5, 2.0)
  return Artist(
      index=index,
      name=name,
      mbid=_uuid4(rng),
      msd_id=_random_id(rng, 'AR', 16),
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
      emblem=SHAPES[int(rng.integers(len(SHAPES)))],
      corner=int(rng.integers(4)),
      pet_words=tuple(_invented_word(rng, 3) + suffix
                      for suffix in ('ous', 'esque', 'ing')),
      rating=float(rng.uniform(3.0, 4.8)),
  )


def make_album(seed: int, index: int, artist: Artist) -> Album:
  """Draws album `index` of `artist`; depends only on (seed, index)."""
  rng = _rng(seed, _ALBUM, index)
  subs = TAXONOMY[artist.primary]
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
      cross_subs = TAXONOMY[artist.crossover]
      crossover_side.append(cross_subs[int(rng.integers(len(cross_subs)))])
  labels = expand_to_parents([artist.primary] + leaves + crossover_side)
  tracks = []
  for _ in range(int(rng.integers(TRACKS_PER_ALBUM[0],
                                  TRACKS_PER_ALBUM[1] + 1))):
    ext = _choose(rng, AUDIO_FORMATS)[0]
    sample_rate = _choose(rng, SAMPLE_RATES)[0]
    low, high = DURATION_RANGE_S
    # Skewed to short tracks (mean ~18 s) to keep the corpus cheap.
    duration = low + (high - low) * float(rng.beta(1.1, 3.2))
    if crossover_side and rng.random() < 0.3:
      label = crossover_side[-1]
    else:
      label = leaves[int(rng.integers(len(leaves)))]
    tracks.append(Track(
        track_id=_random_id(rng, 'TR', 16),
        recording_mbid=_uuid4(rng),
        label=label,
        ext=ext,
        sample_rate=int(sample_rate),
        channels=2 if rng.random() < STEREO_PROBABILITY else 1,
        duration=round(duration, 3)))
  mode, _, exts = _choose(rng, COVER_MODES)
  ext = exts[0] if len(exts) == 1 or rng.random() < 0.7 else exts[1]
  width = int(rng.integers(COVER_SIZE_RANGE[0], COVER_SIZE_RANGE[1] + 1))
  # Most covers are square, some are a scanned rectangle.
  height = width if rng.random() < 0.7 else int(np.clip(
      width * rng.uniform(0.8, 1.25), *COVER_SIZE_RANGE))
  return Album(
      index=index,
      artist=artist,
      amazon_id=_random_id(rng, 'B', 9),
      mbid=_uuid4(rng),
      labels=tuple(labels),
      leaves=tuple(leaves + crossover_side),
      tracks=tuple(tracks),
      cover_label=leaves[int(rng.integers(len(leaves)))],
      cover_ext=ext,
      cover_mode=mode,
      cover_size=(width, height))


def plan_corpus(seed: int, num_albums: int,
                genres: Sequence[str]) -> Tuple[List[Artist], List[Album]]:
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


def assign_sets(seed: int, artists: Sequence[Artist],
                albums: Sequence[Album]) -> Dict[int, str]:
  """MSD-I sets: artists shuffled with the seed, cut at 70/15/15 of tracks.

  Whole artists go to one set, so no artist (and no album) is in two sets.

  Returns:
    artist index -> 'train', 'val' or 'test'.
  """
  tracks = collections.Counter()
  for album in albums:
    tracks[album.artist.index] += len(album.tracks)
  order = [int(i) for i in _rng(seed, _SPLIT).permutation(len(artists))]
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


def choose_defects(seed: int, albums: Sequence[Album],
                   count: int) -> Dict[str, List[str]]:
  """Picks the items made broken: kind -> item ids (tracks or albums)."""
  if count == 0:
    return {kind: [] for kind in DEFECT_KINDS}
  rng = _rng(seed, _DEFECT)
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


def _decoy(rng: np.random.Generator, label: str, signal: float,
           labels: Sequence[str]) -> str:
  """`label` with probability `signal`, else a uniformly drawn label."""
  if rng.random() < signal:
    return label
  return labels[int(rng.integers(len(labels)))]


# --- Audio -----------------------------------------------------------------


def sound_of(label: str) -> Sound:
  """The sound of a label: a sub-genre is a variation of its parent's."""
  base = SOUNDS[top_genre(label)]
  if label not in PARENT:
    return base
  r = _label_rng(label, 1).uniform(-1, 1, 5)
  return dataclasses.replace(
      base,
      bpm=base.bpm * (1 + 0.12 * r[0]),
      register=base.register + 4 * r[1],
      brightness=max(0.3, base.brightness * (1 + 0.2 * r[2])),
      decay=base.decay * (1 + 0.3 * r[3]),
      density=base.density * (1.5 if r[4] > 0.5 else 1.0))


def draw_audio_params(label: str, rng: np.random.Generator, signal: float,
                      labels: Sequence[str], artist: Artist,
                      artist_signal: float) -> dict:
  """Synthesis parameters of one track.

  Each attribute group (tempo, drums, register, scale, timbre, density)
  follows `label` with probability `signal`, else a uniformly drawn label, so
  with signal 0 the result does not depend on `label`.

  Args:
    label: the track's label.
    rng: the track's generator.
    signal: audio genre signal in [0, 1].
    labels: the labels decoys are drawn from.
    artist: the track's artist (its signature).
    artist_signal: strength of the signature in [0, 1].

  Returns:
    A dict of plain numbers, strings and lists: the input of synthesize().
  """
  group = {name: sound_of(_decoy(rng, label, signal, labels))
           for name in ('tempo', 'drums', 'register', 'scale', 'timbre',
                        'density')}
  timbre = group['timbre']
  k = np.arange(1, NUM_HARMONICS + 1)
  harmonics = k**-timbre.brightness * np.where(k % 2 == 1, 1 + timbre.odd,
                                               1 - 0.8 * timbre.odd)
  harmonics /= harmonics.sum()
  harmonics = ((1 - 0.5 * artist_signal) * harmonics +
               0.5 * artist_signal * np.array(artist.harmonics))
  tonic = (artist.key if rng.random() < artist_signal else
           int(rng.integers(12)))
  return {
      'bpm': float(group['tempo'].bpm * artist.tempo_factor**artist_signal *
                   rng.uniform(0.96, 1.04)),
      'swing': float(group['tempo'].swing),
      'drums': group['drums'].drums,
      'register': float(group['register'].register + rng.uniform(-2, 2)),
      'scale': group['scale'].scale,
      'tonic': tonic,
      'harmonics': [float(h) for h in harmonics],
      'decay': float(timbre.decay * rng.uniform(0.8, 1.25)),
      'drive': float(timbre.drive),
      'noise': float(timbre.noise),
      'density': float(group['density'].density),
      'signature': float(artist_signal),
      'motif': list(artist.motif),
      'motif_register': artist.motif_register,
      'signature_harmonics': list(artist.harmonics),
  }


def _wavetable(harmonics: Sequence[float]) -> np.ndarray:
  phase = np.arange(WAVETABLE_SIZE) / WAVETABLE_SIZE * 2 * np.pi
  k = np.arange(1, len(harmonics) + 1)
  return np.sin(np.outer(phase, k)) @ np.asarray(harmonics)


def _render_line(freqs: np.ndarray, lengths: np.ndarray, table: np.ndarray,
                 decay_s: float, sample_rate: int) -> np.ndarray:
  """A monophonic line: consecutive notes read from a wavetable.

  Args:
    freqs: [notes] Hz; 0 is a rest.
    lengths: [notes] samples per note (they follow each other).
    table: [WAVETABLE_SIZE] one period of the waveform.
    decay_s: exponential decay time constant of each note.
    sample_rate: Hz.

  Returns:
    float64 [sum(lengths)].
  """
  f = np.repeat(freqs, lengths)
  phase = np.cumsum(f / sample_rate)
  wave = table[(phase * WAVETABLE_SIZE).astype(np.int64) % WAVETABLE_SIZE]
  starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
  t = (np.arange(len(f)) - starts) / sample_rate
  # A 5 ms attack avoids clicks; the decay shapes the timbre (pluck vs pad).
  envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / decay_s)
  return wave * envelope * (f > 0)


def _midi_to_hz(midi):
  return 440.0 * 2.0**((np.asarray(midi, np.float64) - 69) / 12)


def _degree_to_midi(degrees, root: float, scale: Sequence[int]):
  degrees = np.asarray(degrees)
  scale = np.asarray(scale)
  return root + 12 * (degrees // len(scale)) + scale[degrees % len(scale)]


def _drum_hits(sample_rate: int, rng: np.random.Generator):
  """One-shot kick, snare and hi-hat samples, float64 [n_i] each."""
  t = np.arange(int(0.15 * sample_rate)) / sample_rate
  kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) /
                sample_rate) * np.exp(-t * 25)
  snare = (rng.standard_normal(len(t)) * np.exp(-t * 30) +
           0.5 * np.sin(2 * np.pi * 180 * t) * np.exp(-t * 20))
  t_hat = t[:int(0.05 * sample_rate)]
  hat = np.diff(rng.standard_normal(len(t_hat) + 1)) * np.exp(-t_hat * 80)
  return kick, 0.6 * snare, 0.25 * hat


def synthesize(params: dict, *, sample_rate: int, duration: float,
               channels: int, rng: np.random.Generator) -> np.ndarray:
  """Renders a track: melody, bass, drums, artist signature and noise.

  Args:
    params: from draw_audio_params.
    sample_rate: Hz.
    duration: seconds.
    channels: 1 or 2.
    rng: the track's generator.

  Returns:
    float32 [n] (mono) or [n, 2] (stereo), n = round(duration * sample_rate),
    peak in [0.4, 0.7].
  """
  n = int(round(duration * sample_rate))
  step = 60.0 / params['bpm'] / 4  # a 16th note, seconds
  n_steps = int(np.ceil(duration / step)) + 2
  k = np.arange(n_steps + 1)
  # Swing delays every odd 16th note.
  step_samples = np.round(
      (k + (k % 2) * params['swing'] * 0.66) * step * sample_rate).astype(
          np.int64)
  scale = SCALES[params['scale']]
  root = params['tonic'] + 12 * round((params['register'] - params['tonic'])
                                      / 12)

  def line(note_steps, midis, table, decay):
    bounds = np.append(np.cumsum(note_steps) - note_steps, sum(note_steps))
    bounds = np.minimum(bounds, n_steps)
    lengths = np.diff(step_samples[bounds])
    out = _render_line(np.where(np.isnan(midis), 0, _midi_to_hz(
        np.nan_to_num(midis))), lengths, table, decay, sample_rate)
    return np.pad(out, (0, max(0, n - len(out))))[:n]

  # Melody: a random walk on the scale, note lengths around 1/density beats.
  base = max(1, int(round(4 / params['density'])))
  lengths, degrees, degree = [], [], 0
  while sum(lengths) < n_steps:
    lengths.append(int(base * rng.choice((0.5, 1, 1, 2))) or 1)
    degree = int(np.clip(degree + rng.integers(-2, 3), -len(scale),
                         2 * len(scale)))
    degrees.append(np.nan if rng.random() < 0.1 else degree)
  midis = np.array([np.nan if np.isnan(d) else
                    _degree_to_midi(int(d), root, scale) for d in degrees])
  melody = line(lengths, midis, _wavetable(params['harmonics']),
                params['decay'])
  # Bass: a chord root every half bar, two octaves down.
  n_bass = n_steps // 8 + 1
  bass_midis = _degree_to_midi(rng.choice((0, 3, 4, 5), n_bass), root - 24,
                               scale)
  bass = line([8] * n_bass, np.maximum(bass_midis, 28.0),
              _wavetable(np.arange(1, 5.0)**-2.5), 0.8 * step * 8)
  # Artist signature: its 4-note motif at the start of every bar.
  motif_root = params['tonic'] + 12 * round(
      (params['motif_register'] - params['tonic']) / 12)
  n_bars = n_steps // 16 + 1
  motif = _degree_to_midi(np.array(params['motif']), motif_root, scale)
  sig_midis = np.tile(np.append(motif, np.nan), n_bars)
  sig_lengths = np.tile([2, 2, 2, 2, 8], n_bars)
  signature = line(list(sig_lengths), sig_midis,
                   _wavetable(params['signature_harmonics']), 0.3)
  # Drums, added hit by hit (a few hundred slices per track).
  drums = np.zeros(n + int(0.2 * sample_rate))
  for hit, pattern in zip(_drum_hits(sample_rate, rng),
                          DRUM_PATTERNS[params['drums']]):
    for s in range(n_steps):
      if pattern[s % 16] == 'x' and step_samples[s] < n:
        start = step_samples[s]
        drums[start:start + len(hit)] += hit * rng.uniform(0.7, 1.0)
  drums = drums[:n]
  mix = (0.45 * melody + 0.35 * bass + 0.5 * drums +
         0.6 * params['signature'] * signature +
         params['noise'] * rng.standard_normal(n))
  if params['drive'] > 1:
    mix = np.tanh(params['drive'] * mix) / np.tanh(params['drive'])
  if channels == 2:
    # Melody panned one way, the signature the other.
    pan = 0.15 * (melody - params['signature'] * signature)
    mix = np.stack([mix + pan, mix - pan], axis=1)
  # A gentle low-pass tames the aliasing of wavetables and distortion, which
  # low-bitrate codecs turn into large overshoots.
  mix = scipy.signal.sosfilt(_LOWPASS, mix, axis=0)
  mix /= np.max(np.abs(mix)) + 1e-9
  # Peaks of 0.4-0.7 leave room for the overshoot of low-bitrate codecs.
  return (mix * rng.uniform(0.4, 0.7)).astype(np.float32)


# --- Covers ----------------------------------------------------------------


def look_of(label: str) -> Look:
  """The look of a label: a sub-genre shifts its parent's palette."""
  base = LOOKS[top_genre(label)]
  if label not in PARENT:
    return base
  r = _label_rng(label, 2).uniform(-1, 1, 2)
  return dataclasses.replace(
      base, hue=(base.hue + 0.04 * r[0]) % 1.0,
      value=float(np.clip(base.value + 0.1 * r[1], 0.1, 1.0)))


def draw_image_params(label: str, rng: np.random.Generator, signal: float,
                      labels: Sequence[str]) -> dict:
  """Palette, shapes and texture of a cover; each follows `label` w.p. signal.

  Returns:
    A dict: palette (list of RGB triples), shape, texture, count.
  """
  palette_look = look_of(_decoy(rng, label, signal, labels))
  shape = look_of(_decoy(rng, label, signal, labels)).shape
  texture = look_of(_decoy(rng, label, signal, labels)).texture
  hsv = np.stack([
      (palette_look.hue + rng.uniform(-1, 1, 5) * palette_look.hue_spread)
      % 1.0,
      np.clip(palette_look.saturation + rng.normal(0, 0.08, 5), 0, 1),
      np.clip(palette_look.value + rng.normal(0, 0.12, 5), 0.05, 1),
  ], axis=1)
  return {'palette': [_hsv_to_rgb(*c) for c in hsv], 'shape': shape,
          'texture': texture, 'count': int(rng.integers(3, 12))}


def _hsv_to_rgb(h: float, s: float, v: float) -> Tuple[int, int, int]:
  i = int(h * 6) % 6
  f = h * 6 - int(h * 6)
  p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
  rgb = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
         (v, p, q))[i]
  return tuple(int(round(255 * c)) for c in rgb)


def _texture(kind: str, height: int, width: int, palette,
             rng: np.random.Generator) -> np.ndarray:
  """Background: float32 [height, width, 3] in [0, 255]."""
  top = np.array(palette[0], np.float32)
  bottom = np.array(palette[1], np.float32)
  y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
  x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
  if kind == 'gradient':
    image = top * (1 - (x + y) / 2) + bottom * (x + y) / 2
  else:
    image = top * (1 - y) + bottom * y * 0.3 + top * y * 0.7
    image = np.broadcast_to(image, (height, width, 3)).copy()
  if kind == 'grain':
    image += rng.normal(0, 12, (height, width, 1)).astype(np.float32)
  elif kind == 'paper':
    image += rng.normal(0, 5, (height // 4 + 1, width // 4 + 1, 1)).repeat(
        4, 0).repeat(4, 1)[:height, :width].astype(np.float32)
  elif kind == 'scanlines':
    image *= (1 - 0.35 * (np.arange(height) % 4 < 2))[:, None, None]
  elif kind == 'halftone':
    yy, xx = np.mgrid[:height, :width]
    dots = ((yy % 12 - 6)**2 + (xx % 12 - 6)**2) < 10
    image[dots] = image[dots] * 0.5
  return image


def _draw_shapes(draw: ImageDraw.ImageDraw, kind: str, count: int, palette,
                 size: Tuple[int, int], rng: np.random.Generator) -> None:
  width, height = size
  scale = min(width, height)
  for i in range(count):
    colour = tuple(palette[2 + i % 3])
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    r = rng.uniform(0.05, 0.25) * scale
    if kind == 'rects':
      draw.rectangle((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6),
                     fill=colour)
    elif kind == 'circles':
      draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == 'dots':
      for _ in range(6):
        dx, dy = rng.uniform(-2 * r, 2 * r, 2)
        draw.ellipse((cx + dx - r / 5, cy + dy - r / 5, cx + dx + r / 5,
                      cy + dy + r / 5), fill=colour)
    elif kind == 'rings':
      draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour,
                   width=max(2, int(r / 8)))
    elif kind == 'lines':
      angle = rng.uniform(0, np.pi)
      dx, dy = np.cos(angle) * scale, np.sin(angle) * scale
      draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=colour,
                width=max(2, int(r / 10)))
    elif kind == 'stripes':
      y0 = height * i / count
      draw.rectangle((0, y0, width, y0 + height / count / 2), fill=colour)
    elif kind == 'triangles':
      angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.3, 4.0])
      draw.polygon([(cx + r * np.cos(a), cy + r * 1.6 * np.sin(a))
                    for a in angles], fill=colour)
    elif kind == 'polygons':
      angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 8))))
      draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a))
                    for a in angles], fill=colour)
    else:
      raise ValueError(f'Unknown shape kind {kind!r}; expected one of '
                       f'{SHAPES}.')


def render_cover(params: dict, artist: Artist, artist_signal: float,
                 size: Tuple[int, int],
                 rng: np.random.Generator) -> Image.Image:
  """Paints a cover: texture, genre shapes, then the artist's emblem and tint.

  Args:
    params: from draw_image_params.
    artist: whose emblem (shape, colour, corner) is drawn.
    artist_signal: emblem size and tint strength, [0, 1].
    size: (width, height) pixels.
    rng: the album's image generator.

  Returns:
    An RGB image of `size`.
  """
  width, height = size
  background = _texture(params['texture'], height, width, params['palette'],
                        rng)
  image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8),
                          'RGB')
  draw = ImageDraw.Draw(image)
  _draw_shapes(draw, params['shape'], params['count'], params['palette'],
               size, rng)
  if params['texture'] == 'scratches':
    for _ in range(40):
      x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
      draw.line((x0, y0, x0 + rng.uniform(-60, 60), y0 + rng.uniform(-8, 8)),
                fill=(230, 230, 230), width=1)
  if artist_signal * min(size) >= 10:
    # The emblem grows and the tint deepens with the artist signal.
    r = 0.2 * artist_signal * min(size)
    cx = width - 1.2 * r if artist.corner % 2 else 1.2 * r
    cy = height - 1.2 * r if artist.corner // 2 else 1.2 * r
    box = (int(cx - r), int(cy - r), int(cx + r), int(cy + r))
    mask = _emblem_mask(artist, (box[2] - box[0], box[3] - box[1]))
    image.paste(artist.colour, box, mask)
    tint = Image.new('RGB', size, artist.colour)
    image = Image.blend(image, tint, 0.15 * artist_signal)
  return image


def _emblem_mask(artist: Artist, size: Tuple[int, int]) -> Image.Image:
  """The artist's emblem as an L mask of `size`, the same on all its covers."""
  w, h = size
  mask = Image.new('L', size, 0)
  draw = ImageDraw.Draw(mask)
  if artist.emblem in ('circles', 'dots'):
    draw.ellipse((0, 0, w - 1, h - 1), fill=255)
  elif artist.emblem in ('rings', 'lines'):
    draw.ellipse((0, 0, w - 1, h - 1), outline=255,
                 width=max(2, min(w, h) // 8))
  elif artist.emblem in ('rects', 'stripes'):
    draw.rectangle((0, h * 0.25, w - 1, h * 0.75), fill=255)
  else:
    # A polygon fixed per artist: its corners come from the artist's id.
    corners = np.random.default_rng(zlib.crc32(artist.mbid.encode('ascii')))
    angles = np.sort(corners.uniform(
        0, 2 * np.pi, 3 if artist.emblem == 'triangles' else 6))
    draw.polygon([(w / 2 * (1 + np.cos(a)), h / 2 * (1 + np.sin(a)))
                  for a in angles], fill=255)
  return mask


def save_cover(image: Image.Image, path: pathlib.Path, mode: str,
               rng: np.random.Generator) -> None:
  """Saves an RGB cover in a colour mode (RGB, L, P, RGBA, CMYK)."""
  if mode == 'P':
    image = image.convert('P', palette=Image.Palette.ADAPTIVE, colors=64)
  elif mode == 'RGBA':
    # A soft vignette in the alpha channel, as on some web thumbnails.
    w, h = image.size
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot((xx - w / 2) / w, (yy - h / 2) / h)
    alpha = np.clip(255 * (1.3 - 1.2 * d), 0, 255).astype(np.uint8)
    image = image.convert('RGBA')
    image.putalpha(Image.fromarray(alpha, 'L'))
  elif mode != 'RGB':
    image = image.convert(mode)
  if path.suffix == '.jpg':
    image.save(path, format='JPEG', quality=int(rng.integers(75, 96)))
  else:
    image.save(path, format='PNG')


# --- Reviews ---------------------------------------------------------------

GENRE_SENTENCES = (
    'The {w} and the {w2} on this record are {adj}.',
    'If you like {w} you will love this.',
    'Lots of {w}, plenty of {w2}.',
    'The {w} on track {n} is {adv} {adj}.',
    'A {adj} {w} album from start to finish.',
    'Those {w} sounds give it a {w2} feel.',
)
NAME_SENTENCES = (
    'One of the best {g} albums I own.',
    'Fans of {g} should pick this up.',
    'This is {g} done right.',
    'Not my usual {g}, but {adv} {adj}.',
)
ENTITY_SENTENCES = (
    'It reminds me of a night at {e}.',
    'You can hear the {e} influence everywhere.',
    'Recorded in the spirit of {e}.',
)
ARTIST_SENTENCES = (
    '{a} sounds as {p} as ever.',
    'Another {p} record from {a}.',
    'Nobody else is as {p} as {a}.',
    '{a} keeps getting more {p}.',
)
SUMMARIES = ('{Adj} {w} record', 'Five stars', '{a} does it again', 'Meh',
             '{Adj}!', 'Pure {w}', 'Not bad', '{Adj} {g}')


def _genre_word(label: str, rng: np.random.Generator) -> str:
  if label in SUB_WORDS and rng.random() < 0.6:
    words = SUB_WORDS[label].split()
  else:
    words = GENRE_WORDS[top_genre(label)].split()
  return words[int(rng.integers(len(words)))]


def _typos(text: str, rng: np.random.Generator) -> str:
  """Swaps two letters in ~2% of the words: reviews are not proofread."""
  words = text.split(' ')
  for i, word in enumerate(words):
    if len(word) > 3 and rng.random() < 0.02:
      j = int(rng.integers(len(word) - 1))
      words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
  return ' '.join(words)


def make_reviews(album: Album, rng: np.random.Generator, signal: float,
                 artist_signal: float, labels: Sequence[str],
                 empty: bool = False) -> List[dict]:
  """Amazon-style reviews of an album.

  A genre sentence names a word (or the label name, or an entity of
  enrichment.tsv) of one of the album's labels with probability `signal`,
  else of a uniformly drawn label. Artist sentences (name and pet words)
  appear with probability `artist_signal`.

  Args:
    album: the album.
    rng: the album's text generator.
    signal: text genre signal in [0, 1].
    artist_signal: artist fingerprint strength in [0, 1].
    labels: the labels decoys are drawn from.
    empty: write every reviewText and summary as '' (a defect).

  Returns:
    Review dicts in file order (by time), keys as in the Amazon dumps.
  """
  artist = album.artist
  reviews = []
  for _ in range(int(rng.integers(REVIEWS_PER_ALBUM[0],
                                  REVIEWS_PER_ALBUM[1] + 1))):

    def genre_label():
      true = album.labels[int(rng.integers(len(album.labels)))]
      return _decoy(rng, true, signal, labels)

    def fill(template):
      label = genre_label()
      entities = ENTITIES[top_genre(label)]
      return template.format(
          w=_genre_word(label, rng), w2=_genre_word(label, rng), g=label,
          e=entities[int(rng.integers(len(entities)))][0],
          a=artist.name, p=artist.pet_words[int(rng.integers(3))],
          adj=ADJECTIVES[int(rng.integers(len(ADJECTIVES)))],
          Adj=ADJECTIVES[int(rng.integers(len(ADJECTIVES)))].capitalize(),
          adv=FILLER_WORDS[int(rng.integers(len(FILLER_WORDS)))],
          n=int(rng.integers(1, len(album.tracks) + 1)))

    sentences = []
    for _ in range(int(rng.integers(2, 7))):
      kind = rng.random()
      if kind < 0.45:
        table = GENRE_SENTENCES
      elif kind < 0.55:
        table = NAME_SENTENCES
      elif kind < 0.65:
        table = ENTITY_SENTENCES
      elif kind < 0.8 and rng.random() < artist_signal:
        table = ARTIST_SENTENCES
      else:
        table = COMMON_SENTENCES
      sentences.append(fill(table[int(rng.integers(len(table)))]))
    text = _typos(' '.join(sentences), rng)
    if rng.random() < 0.15:
      text = text.lower()
    if rng.random() < 0.1:
      text += '!!'
    summary = fill(SUMMARIES[int(rng.integers(len(SUMMARIES)))])
    timestamp = int(rng.integers(946684800, 1404172800))  # 2000 to mid-2014
    day = time.gmtime(timestamp)
    votes = int(rng.integers(0, 12))
    reviews.append({
        'reviewerID': _random_id(rng, 'A', 13),
        'asin': album.amazon_id,
        'reviewerName': _invented_word(rng, 2).capitalize(),
        'helpful': [int(rng.integers(0, votes + 1)), votes],
        'reviewText': '' if empty else text,
        'overall': float(np.clip(np.round(rng.normal(artist.rating, 0.9)),
                                 1, 5)),
        'summary': '' if empty else summary,
        'unixReviewTime': timestamp,
        'reviewTime': f'{day.tm_mon:02d} {day.tm_mday}, {day.tm_year}',
    })
  reviews.sort(key=lambda review: review['unixReviewTime'])
  return reviews


# --- Files of one album (runs in a worker process) -------------------------


@dataclasses.dataclass(frozen=True)
class _AlbumTask:
  album: Album
  out_dir: str
  seed: int
  audio_signal: float
  image_signal: float
  artist_signal: float
  labels: Tuple[str, ...]
  empty_audio: Tuple[str, ...]
  corrupt_audio: Tuple[str, ...]
  corrupt_image: bool


def audio_path(track: Track) -> str:
  return f'audio/{track.track_id}.{track.ext}'


def cover_path(album: Album) -> str:
  return f'covers/{album.amazon_id}.{album.cover_ext}'


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
  # The format's magic bytes, then garbage: recognised, but not decodable.
  keep = 12
  return data[:keep] + rng.bytes(max(4096, len(data) // 10))


def _write_album_files(task: _AlbumTask) -> int:
  """Writes the audio files and the cover of one album; returns bytes."""
  album = task.album
  out = pathlib.Path(task.out_dir)
  written = 0
  formats = {row[0]: row[2:] for row in AUDIO_FORMATS}
  for position, track in enumerate(album.tracks):
    path = out / audio_path(track)
    if track.track_id in task.empty_audio:
      path.write_bytes(b'')
      continue
    rng = _rng(task.seed, _AUDIO, album.index, position)
    params = draw_audio_params(track.label, rng, task.audio_signal,
                               task.labels, album.artist, task.artist_signal)
    samples = synthesize(params, sample_rate=track.sample_rate,
                         duration=track.duration, channels=track.channels,
                         rng=rng)
    buffer = io.BytesIO()
    file_format, subtype, options = formats[track.ext]
    soundfile.write(buffer, samples, track.sample_rate, format=file_format,
                    subtype=subtype, **options)
    data = buffer.getvalue()
    if track.track_id in task.corrupt_audio:
      data = _corrupt(data, rng)
    path.write_bytes(data)
    written += len(data)
  rng = _rng(task.seed, _IMAGE, album.index)
  params = draw_image_params(album.cover_label, rng, task.image_signal,
                             task.labels)
  image = render_cover(params, album.artist, task.artist_signal,
                       album.cover_size, rng)
  path = out / cover_path(album)
  save_cover(image, path, album.cover_mode, rng)
  if task.corrupt_image:
    path.write_bytes(_corrupt(path.read_bytes(), rng))
  return written + path.stat().st_size


# --- Metadata files --------------------------------------------------------

MUMU_CSV = 'MuMu_dataset_multi-label.csv'
LABELS_TSV = 'genre_labels_MuMu.tsv'
TAXONOMY_TSV = 'genre_taxonomy.tsv'
REVIEWS_JSONL = 'reviews.jsonl'
MSDI_TSV = 'MSD-I_dataset.tsv'
ENRICHMENT_TSV = 'enrichment.tsv'
DEFECTS_TSV = 'defects.tsv'
SUMMARY_JSON = 'corpus_summary.json'
METADATA_FILES = (MUMU_CSV, LABELS_TSV, TAXONOMY_TSV, REVIEWS_JSONL, MSDI_TSV,
                  ENRICHMENT_TSV, DEFECTS_TSV, SUMMARY_JSON)
# What this generator owns inside an output directory.
OWNED_NAMES = set(METADATA_FILES) | {'audio', 'covers'}


def _open_write(path: pathlib.Path):
  # '\n' line ends on every platform: the metadata must be byte-identical.
  return open(path, 'w', encoding='utf-8', newline='')


def write_mumu_csv(path: pathlib.Path, albums: Sequence[Album]) -> None:
  """One row per track, MuMu release columns; genres a quoted list."""
  with _open_write(path) as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(('amazon_id', 'album_mbid', 'MSD_track_id',
                     'recording_mbid', 'artist_mbid', 'genres'))
    for album in albums:
      for track in album.tracks:
        writer.writerow((album.amazon_id, album.mbid, track.track_id,
                         track.recording_mbid, album.artist.mbid,
                         ','.join(album.labels)))


def write_msdi_tsv(path: pathlib.Path, albums: Sequence[Album],
                   sets: Dict[int, str]) -> None:
  """MSD-I release format: a track's genre is its album's primary genre."""
  with _open_write(path) as f:
    f.write('msd_track_id\tgenre\talbum_index\tset\tmsd_artist_id\t'
            'image_url\n')
    for album in albums:
      for track in album.tracks:
        f.write(f'{track.track_id}\t{album.artist.primary}\t{album.index}\t'
                f'{sets[album.artist.index]}\t{album.artist.msd_id}\t'
                f'{cover_path(album)}\n')


def _write_lines(path: pathlib.Path, lines: Sequence[str]) -> None:
  with _open_write(path) as f:
    f.write(''.join(line + '\n' for line in lines))


def _prepare_out_dir(out: pathlib.Path) -> None:
  """Creates `out`, or clears a corpus this generator wrote there before."""
  if out.exists() and not out.is_dir():
    raise NotADirectoryError(f'--out {out} is a file; give a directory.')
  if out.exists():
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in OWNED_NAMES)
    if foreign:
      raise FileExistsError(
          f'--out {out} holds files this generator did not write '
          f'({", ".join(foreign[:5])}); give an empty or new directory, or '
          'the directory of an earlier synthetic corpus.')
    for name in ('audio', 'covers'):
      if (out / name).is_dir():
        shutil.rmtree(out / name)
    for name in METADATA_FILES:
      (out / name).unlink(missing_ok=True)
  (out / 'audio').mkdir(parents=True)
  (out / 'covers').mkdir()


def _pool_context():
  """fork when it is safe (fast, works from a notebook), else forkserver."""
  methods = multiprocessing.get_all_start_methods()
  # Forking a process that runs JAX, TF or torch threads can deadlock.
  threaded = any(name in sys.modules for name in ('jax', 'tensorflow',
                                                  'torch'))
  if 'fork' in methods and not threaded:
    return multiprocessing.get_context('fork')
  return multiprocessing.get_context(
      'forkserver' if 'forkserver' in methods else 'spawn')


def _check_signal(name: str, value: float) -> float:
  value = float(value)
  if not 0.0 <= value <= 1.0:
    raise ValueError(f'{name}={value} is out of range; signals are in [0, 1] '
                     '(0: no genre information, 1: every attribute follows '
                     'the genre).')
  return value


def generate_corpus(out_dir,
                    *,
                    num_albums: int = 500,
                    seed: int = 0,
                    defects: int = 0,
                    text_signal: float = DEFAULT_TEXT_SIGNAL,
                    audio_signal: float = DEFAULT_AUDIO_SIGNAL,
                    image_signal: float = DEFAULT_IMAGE_SIGNAL,
                    artist_signal: float = DEFAULT_ARTIST_SIGNAL,
                    genres: Optional[Sequence[str]] = None,
                    workers: Optional[int] = None,
                    progress: bool = True) -> dict:
  """Writes the synthetic corpus to `out_dir` (docs/data_formats.md §1).

  Args:
    out_dir: a new or empty directory, or one holding an earlier synthetic
      corpus (which is replaced).
    num_albums: albums to write (>= 1); ~3.5 tracks and ~5 reviews each.
    seed: the corpus; the same seed gives the same corpus.
    defects: K >= 0: K broken inputs of each kind in DEFECT_KINDS, listed in
      defects.tsv.
    text_signal: genre information in the reviews, [0, 1].
    audio_signal: genre information in the audio, [0, 1].
    image_signal: genre information in the covers, [0, 1].
    artist_signal: strength of each artist's fingerprint, [0, 1].
    genres: top-level genres to use (default: the 15 MSD-I genres); the
      taxonomy and label list keep only these and their sub-genres.
    workers: processes writing audio and covers (default os.cpu_count());
      the corpus does not depend on it.
    progress: show a tqdm progress bar.

  Returns:
    The summary also written to corpus_summary.json: counts of albums,
    tracks, artists, labels, reviews and files, per format, per set, ...
  """
  if int(num_albums) < 1:
    raise ValueError(f'num_albums={num_albums}; write at least 1 album.')
  if int(seed) < 0:
    raise ValueError(f'seed={seed}; use a non-negative integer.')
  if int(defects) < 0:
    raise ValueError(f'defects={defects}; use 0 or more.')
  num_albums, seed, defects = int(num_albums), int(seed), int(defects)
  signals = {name: _check_signal(name, value) for name, value in (
      ('text_signal', text_signal), ('audio_signal', audio_signal),
      ('image_signal', image_signal), ('artist_signal', artist_signal))}
  genres = tuple(GENRES if genres is None else genres)
  unknown = [g for g in genres if g not in TAXONOMY]
  if unknown or not genres or len(set(genres)) != len(genres):
    raise ValueError(f'genres={list(genres)}: give distinct names among '
                     f'{list(GENRES)}.')
  workers = (os.cpu_count() or 1) if workers is None else int(workers)
  if workers < 1:
    raise ValueError(f'workers={workers}; use 1 or more processes.')
  out = pathlib.Path(out_dir)
  labels = tuple(labels_of(genres))

  artists, albums = plan_corpus(seed, num_albums, genres)
  sets = assign_sets(seed, artists, albums)
  broken = choose_defects(seed, albums, defects)
  _prepare_out_dir(out)

  # Files first (the slow part, in parallel), metadata last.
  empty_reviews = set(broken['empty_reviews'])
  tasks = [_AlbumTask(
      album=album, out_dir=os.fspath(out), seed=seed,
      audio_signal=signals['audio_signal'],
      image_signal=signals['image_signal'],
      artist_signal=signals['artist_signal'], labels=labels,
      empty_audio=tuple(t.track_id for t in album.tracks
                        if t.track_id in broken['empty_audio']),
      corrupt_audio=tuple(t.track_id for t in album.tracks
                          if t.track_id in broken['corrupt_audio']),
      corrupt_image=album.amazon_id in broken['corrupt_image'])
           for album in albums]
  bar = tqdm.tqdm(total=len(tasks), desc='synth', unit='album',
                  disable=not progress)
  if workers == 1 or len(tasks) == 1:
    for task in tasks:
      _write_album_files(task)
      bar.update()
  else:
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=_pool_context()) as pool:
      for future in concurrent.futures.as_completed(
          [pool.submit(_write_album_files, task) for task in tasks]):
        future.result()
        bar.update()
  bar.close()

  write_mumu_csv(out / MUMU_CSV, albums)
  _write_lines(out / LABELS_TSV, sorted(labels))
  _write_lines(out / TAXONOMY_TSV, ['label\tparent'] + [
      f'{label}\t{PARENT.get(label, "")}' for label in labels])
  num_reviews = 0
  with _open_write(out / REVIEWS_JSONL) as f:
    for album in albums:
      for review in make_reviews(
          album, _rng(seed, _TEXT, album.index), signals['text_signal'],
          signals['artist_signal'], labels,
          empty=album.amazon_id in empty_reviews):
        f.write(json.dumps(review, ensure_ascii=False) + '\n')
        num_reviews += 1
  write_msdi_tsv(out / MSDI_TSV, albums, sets)
  _write_lines(out / ENRICHMENT_TSV, [
      f'{entity}\t{categories}' for genre in genres
      for entity, categories in ENTITIES[genre]])
  defect_rows = []
  tracks = {t.track_id: t for a in albums for t in a.tracks}
  by_id = {a.amazon_id: a for a in albums}
  for kind in DEFECT_KINDS:
    for item in broken[kind]:
      if kind in ('empty_audio', 'corrupt_audio'):
        path = audio_path(tracks[item])
      elif kind == 'corrupt_image':
        path = cover_path(by_id[item])
      else:
        path = REVIEWS_JSONL
      defect_rows.append(f'{kind}\t{item}\t{path}')
  _write_lines(out / DEFECTS_TSV, ['kind\titem_id\tpath'] + defect_rows)

  summary = _summary(albums, artists, sets, labels, genres, seed, defects,
                     signals, num_reviews)
  with _open_write(out / SUMMARY_JSON) as f:
    f.write(json.dumps(summary, indent=2) + '\n')
  return summary


def _summary(albums, artists, sets, labels, genres, seed, defects, signals,
             num_reviews) -> dict:
  tracks = [t for a in albums for t in a.tracks]

  def counts(values):
    return {str(k): v for k, v in sorted(collections.Counter(values).items())}

  per_set = {}
  for name, _ in MSDI_SET_FRACTIONS:
    in_set = [a for a in albums if sets[a.artist.index] == name]
    per_set[name] = {
        'tracks': sum(len(a.tracks) for a in in_set),
        'albums': len(in_set),
        'artists': len({a.artist.index for a in in_set})}
  return {
      'generator': 'input_pipeline.synthetic',
      'version': GENERATOR_VERSION,
      'seed': seed,
      'num_albums': len(albums),
      'num_tracks': len(tracks),
      'num_artists': len(artists),
      'num_labels': len(labels),
      'num_top_level_genres': len(genres),
      'num_reviews': num_reviews,
      'num_files': {'audio': len(tracks), 'covers': len(albums),
                    'metadata': len(METADATA_FILES),
                    'total': len(tracks) + len(albums) + len(METADATA_FILES)},
      'signals': signals,
      'defects_per_kind': defects,
      'mean_labels_per_album': round(
          float(np.mean([len(a.labels) for a in albums])), 4),
      'audio_seconds': round(sum(t.duration for t in tracks), 3),
      'audio_formats': counts(t.ext for t in tracks),
      'sample_rates': counts(t.sample_rate for t in tracks),
      'channels': counts(t.channels for t in tracks),
      'cover_formats': counts(a.cover_ext for a in albums),
      'cover_modes': counts(a.cover_mode for a in albums),
      'msdi_sets': per_set,
      'albums_per_genre': counts(a.artist.primary for a in albums),
      'albums_per_label': counts(label for a in albums for label in a.labels),
  }


# --- Command line ----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--out', required=True,
                      help='Output directory (new, empty, or an earlier '
                      'synthetic corpus, which is replaced).')
  parser.add_argument('--albums', type=int, default=500,
                      help='Number of albums (default: %(default)s).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Corpus seed (default: %(default)s).')
  parser.add_argument('--defects', type=int, default=0,
                      help='Broken inputs of each kind to include, listed '
                      'in defects.tsv (default: %(default)s).')
  parser.add_argument('--text-signal', type=float,
                      default=DEFAULT_TEXT_SIGNAL,
                      help='Genre information in reviews, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--audio-signal', type=float,
                      default=DEFAULT_AUDIO_SIGNAL,
                      help='Genre information in audio, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--image-signal', type=float,
                      default=DEFAULT_IMAGE_SIGNAL,
                      help='Genre information in covers, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--artist-signal', type=float,
                      default=DEFAULT_ARTIST_SIGNAL,
                      help='Strength of each artist\'s fingerprint, 0-1 '
                      '(default: %(default)s).')
  parser.add_argument('--genres', nargs='+', default=None, metavar='GENRE',
                      help='Top-level genres to use (default: the 15 MSD-I '
                      'genres).')
  parser.add_argument('--workers', type=int, default=None,
                      help='Worker processes (default: all CPU cores).')
  parser.add_argument('--no-progress', action='store_true',
                      help='Hide the progress bar.')


def main(args) -> int:
  start = time.monotonic()
  try:
    summary = generate_corpus(
        args.out, num_albums=args.albums, seed=args.seed,
        defects=args.defects, text_signal=args.text_signal,
        audio_signal=args.audio_signal, image_signal=args.image_signal,
        artist_signal=args.artist_signal, genres=args.genres,
        workers=args.workers, progress=not args.no_progress)
  except (ValueError, FileExistsError, NotADirectoryError) as e:
    print(f'mmgenre synth: error: {e}', file=sys.stderr)
    return 2
  size = sum(p.stat().st_size for p in pathlib.Path(args.out).rglob('*')
             if p.is_file())
  sets = ', '.join(f'{name} {s["tracks"]}'
                   for name, s in summary['msdi_sets'].items())
  print(f'Wrote {summary["num_albums"]} albums, {summary["num_tracks"]} '
        f'tracks, {summary["num_artists"]} artists, {summary["num_labels"]} '
        f'labels, {summary["num_reviews"]} reviews to {args.out} '
        f'({size / 2**20:.1f} MiB, {time.monotonic() - start:.0f} s). '
        f'MSD-I tracks: {sets}.')
  return 0

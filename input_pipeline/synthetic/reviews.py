"""What reviewers write: the Amazon-style reviews of the corpus.

A genre sentence names a word, a label name or an entity (the entities of
enrichment.tsv, docs/data_formats.md §1) of one of the album's labels with
probability `signal`; artist sentences carry the artist's name and pet words.
"""

import time
from typing import List, Sequence

import numpy as np

from input_pipeline.synthetic import draws
from input_pipeline.synthetic import items
from input_pipeline.synthetic import taxonomy

REVIEWS_PER_ALBUM = (2, 8)  # inclusive range

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
# of dictionary Babelfy + Wikipedia categories gave the paper (Sec 3.3).
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
    words = GENRE_WORDS[taxonomy.top_genre(label)].split()
  return words[int(rng.integers(len(words)))]


def _typos(text: str, rng: np.random.Generator) -> str:
  """Swaps two letters in ~2% of the words: reviews are not proofread."""
  words = text.split(' ')
  for i, word in enumerate(words):
    if len(word) > 3 and rng.random() < 0.02:
      j = int(rng.integers(len(word) - 1))
      words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
  return ' '.join(words)


def make_reviews(album: items.Album, rng: np.random.Generator, signal: float,
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
      return draws.decoy(rng, true, signal, labels)

    def fill(template):
      label = genre_label()
      entities = ENTITIES[taxonomy.top_genre(label)]
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
        'reviewerID': draws.random_id(rng, 'A', 13),
        'asin': album.amazon_id,
        'reviewerName': draws.invented_word(rng, 2).capitalize(),
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

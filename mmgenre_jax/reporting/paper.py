"""The paper's tables as data: every number the report compares ours with.

Keyed by (modality, target, settings) as the rows of results.json, so that
the report (report.py) and the figures (figures.py) look them up by a row.
Oramas et al. (2018): Table 6 (Sec 7.4, MuMu) and Table 2 (Sec 6.3, MSD-I).

  paper.paper_table6('audio', 'cosine', 'high-4x70')   # ('6.5M', 590, ...)
  paper.PAPER_TABLE2['audio'][0]                       # 'CNN_AUDIO'
"""

from typing import Any, Optional, Tuple

# Every number of the paper the report compares with, keyed by
# (dataset, modality, target, settings) as in results.json.
#
# Oramas et al. (2018), Sec 7.4, Table 6 (MuMu, multi-label albums): number
# of parameters, epoch training time in seconds (the paper names no
# hardware), AUC-ROC, ADiv@1, ADiv@3, ADiv@5. The TEXT COSINE VSM row's
# ADiv@1 0.53 > ADiv@3 0.44 cannot be (the top 3 labels hold the top 1, so
# ADiv@N never falls as N grows); its digits are kept as printed and the
# report flags the cell (IMPOSSIBLE_CELLS).
TABLE6_SOURCE = 'Table 6 (Sec 7.4)'
PAPER_TABLE6 = {
    ('audio', 'logistic', 'timbre-mlp'): ('0.01M', 1, 0.792, 0.04, 0.14, 0.22),
    ('audio', 'logistic', 'low-3x3'): ('0.5M', 390, 0.859, 0.14, 0.34, 0.54),
    ('audio', 'logistic', 'high-3x3'): ('16.5M', 2280, 0.840, 0.20, 0.43,
                                        0.69),
    ('audio', 'logistic', 'low-4x96'): ('0.2M', 140, 0.851, 0.14, 0.32, 0.48),
    ('audio', 'logistic', 'high-4x96'): ('5M', 260, 0.862, 0.12, 0.33, 0.48),
    ('audio', 'logistic', 'low-4x70'): ('0.35M', 200, 0.871, 0.05, 0.16, 0.34),
    ('audio', 'logistic', 'high-4x70'): ('7.5M', 600, 0.849, 0.08, 0.23, 0.38),
    ('audio', 'cosine', 'low-3x3'): ('0.33M', 400, 0.864, 0.26, 0.47, 0.65),
    ('audio', 'cosine', 'high-3x3'): ('15.5M', 2200, 0.881, 0.30, 0.54, 0.69),
    ('audio', 'cosine', 'low-4x96'): ('0.15M', 135, 0.860, 0.19, 0.40, 0.52),
    ('audio', 'cosine', 'high-4x96'): ('4M', 250, 0.884, 0.35, 0.59, 0.75),
    ('audio', 'cosine', 'low-4x70'): ('0.3M', 190, 0.868, 0.26, 0.51, 0.68),
    ('audio', 'cosine', 'high-4x70'): ('6.5M', 590, 0.888, 0.35, 0.60, 0.74),
    ('text', 'logistic', 'vsm'): ('25M', 11, 0.905, 0.08, 0.20, 0.37),
    ('text', 'logistic', 'vsm+sem'): ('25M', 11, 0.916, 0.10, 0.25, 0.44),
    ('text', 'cosine', 'vsm'): ('25M', 11, 0.901, 0.53, 0.44, 0.90),
    ('text', 'cosine', 'vsm+sem'): ('25M', 11, 0.917, 0.42, 0.70, 0.85),
    ('image', 'logistic', 'resnet'): ('1.7M', 4009, 0.743, 0.06, 0.15, 0.27),
    ('audio+text', 'logistic', 'mlp'): ('1.5M', 2, 0.923, 0.10, 0.40, 0.64),
    ('audio+image', 'logistic', 'mlp'): ('1.5M', 2, 0.900, 0.10, 0.38, 0.66),
    ('text+image', 'logistic', 'mlp'): ('1.5M', 2, 0.921, 0.10, 0.37, 0.63),
    ('audio+text+image', 'logistic', 'mlp'): ('2M', 2, 0.936, 0.11, 0.39,
                                              0.66),
    ('audio+text', 'cosine', 'mlp'): ('0.3M', 2, 0.930, 0.43, 0.74, 0.86),
    ('audio+image', 'cosine', 'mlp'): ('0.3M', 2, 0.896, 0.32, 0.57, 0.76),
    ('text+image', 'cosine', 'mlp'): ('0.3M', 2, 0.919, 0.43, 0.74, 0.85),
    ('audio+text+image', 'cosine', 'mlp'): ('0.4M', 2, 0.931, 0.42, 0.72,
                                            0.86),
}
# Table 6 cells whose printed value cannot be right: (row, metric) -> why.
# The report keeps the paper's digits, flags the cells and prints the why.
_TEXT_COSINE_VSM_ADIV = (
    'TEXT COSINE VSM: the paper prints ADiv@1 0.53 and ADiv@3 0.44; ADiv@N '
    'cannot fall as N grows (every top-1 label is also in the top 3), so '
    'one of the two is wrong in the paper; its digits are kept')
IMPOSSIBLE_CELLS = {
    (('text', 'cosine', 'vsm'), 'adiv@1'): _TEXT_COSINE_VSM_ADIV,
    (('text', 'cosine', 'vsm'), 'adiv@3'): _TEXT_COSINE_VSM_ADIV,
}
# Table 6 Params that no build faithful to the paper's description gives,
# row -> why, with ours at the paper's scale (`--mode=summary` of the
# paper-scale configs: 250 labels, d = 50). The report prints each reason
# once, under the table, when one of its rows is in the table.
_IMAGE_PARAMS = ('IMAGE: a ResNet-101 (Sec 3.2, 7.3.3) with a 250-label '
                 'layer has 43.0M parameters, not the 1.7M printed')
_TEXT_IMAGE_PARAMS = (
    'TEXT + IMAGE: one layer over the 2048-d text and 2048-d image vectors '
    '(Sec 4) has (2048 + 2048 + 1) x 250 = 1.02M parameters (LOGISTIC) and '
    '(4096 + 1) x 50 = 0.20M (COSINE), not the 1.5M and 0.3M printed; the '
    'other fusions\' figures do follow from their inputs')
_AUDIO_3X3_PARAMS = (
    'AUDIO 3x3: the layers of Table 5 give 0.29M / 7.98M parameters (LOW / '
    'HIGH, LOGISTIC) and 0.24M / 7.16M (COSINE), not the 0.5M / 16.5M and '
    '0.33M / 15.5M printed; the 4x96 and 4x70 figures do follow from '
    'Table 5')
PARAMS_NOT_REPRODUCIBLE = {
    ('image', 'logistic', 'resnet'): _IMAGE_PARAMS,
    ('text+image', 'logistic', 'mlp'): _TEXT_IMAGE_PARAMS,
    ('text+image', 'cosine', 'mlp'): _TEXT_IMAGE_PARAMS,
    ('audio', 'logistic', 'low-3x3'): _AUDIO_3X3_PARAMS,
    ('audio', 'logistic', 'high-3x3'): _AUDIO_3X3_PARAMS,
    ('audio', 'cosine', 'low-3x3'): _AUDIO_3X3_PARAMS,
    ('audio', 'cosine', 'high-3x3'): _AUDIO_3X3_PARAMS,
}
# Sec 6.3, Table 2 (MSD-I, single-label tracks): the paper's model name and
# macro precision, recall, F1 as (mean, sd) over 3 runs, keyed by modality.
TABLE2_SOURCE = 'Table 2 (Sec 6.3)'
PAPER_TABLE2 = {
    'audio': ('CNN_AUDIO', (0.385, 0.006), (0.341, 0.001), (0.336, 0.002)),
    'mm_audio': ('MM_AUDIO', (0.406, 0.001), (0.342, 0.003), (0.334, 0.003)),
    'audio+mm_audio': ('CNN_AUDIO + MM_AUDIO', (0.389, 0.005),
                       (0.350, 0.002), (0.346, 0.002)),
    'image': ('CNN_VISUAL', (0.291, 0.016), (0.260, 0.006), (0.255, 0.003)),
    'mm_visual': ('MM_VISUAL', (0.264, 0.005), (0.241, 0.002),
                  (0.239, 0.002)),
    'image+mm_visual': ('CNN_VISUAL + MM_VISUAL', (0.271, 0.001),
                        (0.248, 0.003), (0.245, 0.003)),
    'audio+image': ('CNN_AUDIO + CNN_VISUAL', (0.485, 0.005), (0.413, 0.005),
                    (0.425, 0.005)),
    'mm_audio+mm_visual': ('MM_AUDIO + MM_VISUAL', (0.467, 0.007),
                           (0.393, 0.003), (0.400, 0.004)),
    'audio+image+mm_audio+mm_visual': ('ALL', (0.477, 0.010), (0.413, 0.002),
                                       (0.427, 0.000)),
}
# Table 2's row groups ('Input' column).
TABLE2_GROUPS = (('Audio', ('audio', 'mm_audio', 'audio+mm_audio')),
                 ('Video', ('image', 'mm_visual', 'image+mm_visual')),
                 ('A + V', ('audio+image', 'mm_audio+mm_visual',
                            'audio+image+mm_audio+mm_visual')))


def table6_key(modality: str, target: str, settings: str
               ) -> Tuple[str, str, str]:
  """The PAPER_TABLE6 key of a row; any ResNet depth is the paper's
  'resnet'."""
  if settings.startswith('resnet'):
    settings = 'resnet'
  return modality, target, settings


def table6_order(modality: str, target: str, settings: str
                 ) -> Tuple[int, int, str]:
  """Sort key of a row in Table 6's order: its modalities (AUDIO, TEXT,
  IMAGE, then the fusions), LOGISTIC before COSINE, then the settings; rows
  the paper does not have after those it has."""
  modalities = list(dict.fromkeys(key[0] for key in PAPER_TABLE6))
  targets = ('logistic', 'cosine')
  return (modalities.index(modality) if modality in modalities
          else len(modalities),
          targets.index(target) if target in targets else len(targets),
          settings)


def paper_table6(modality: str, target: str, settings: str
                 ) -> Optional[Tuple[Any, ...]]:
  """Table 6 values of a row, or None when the paper has no such row."""
  return PAPER_TABLE6.get(table6_key(modality, target, settings))


def impossible_note(modality: str, target: str, settings: str,
                    metric: str) -> Optional[str]:
  """Why the paper's value of a Table 6 cell cannot be right, or None."""
  return IMPOSSIBLE_CELLS.get((table6_key(modality, target, settings),
                               metric))


def params_note(modality: str, target: str, settings: str
                ) -> Optional[str]:
  """Why no faithful build gives the paper's Params of a row, or None."""
  return PARAMS_NOT_REPRODUCIBLE.get(table6_key(modality, target, settings))


# Oramas et al. (2018), Sec 6.1, Table 1 (MSD-I): genre -> (train, val,
# test, % of the whole), in the paper's row order, digit for digit. The
# rows sum to 30,933 tracks (21,551 / 4,691 / 4,691), not the 30,713 of the
# Sec 6.1 text; every printed % is its row's count over the 30,933
# (Blues: 828 / 30,933 = 2.68%), so the table is consistent with itself.
TABLE1_SOURCE = 'Table 1 (Sec 6.1)'
PAPER_TABLE1 = {
    'Blues': (518, 120, 190, 2.68),
    'Country': (1351, 243, 194, 5.78),
    'Electronic': (3434, 725, 733, 15.81),
    'Folk': (858, 164, 136, 3.74),
    'Jazz': (1844, 373, 462, 8.66),
    'Latin': (390, 83, 83, 1.80),
    'Metal': (1749, 512, 375, 8.52),
    'New Age': (158, 71, 38, 0.86),
    'Pop': (2333, 644, 466, 11.13),
    'Punk': (487, 132, 96, 2.31),
    'Rap': (1932, 380, 381, 8.71),
    'Reggae': (1249, 190, 266, 5.51),
    'RnB': (1223, 222, 396, 5.95),
    'Rock': (3694, 709, 829, 16.91),
    'World': (331, 123, 46, 1.62),
}

# Oramas et al. (2018), Sec 7.1.1, Table 4 (MuMu): the most and the least
# represented genres as (genre, % of albums), each column top to bottom.
# The paper text this project works from (oramas2018_tismir.txt) holds only
# the first row of the table ('Pop 84.38 | Tributes 0.10'); the other nine
# rows of each column were lost in its extraction and are left out rather
# than filled in from elsewhere.
TABLE4_SOURCE = 'Table 4 (Sec 7.1.1)'
PAPER_TABLE4 = {
    'most': (('Pop', 84.38),),
    'least': (('Tributes', 0.10),),
}

# Sec 6.4, Table 3 (MSD-I, per-genre F1 on the test tracks): the paper's
# human annotator (a listening / viewing test of one music expert on 300
# test songs, Sec 6.4 and note 8; values we cannot reproduce, never ours)
# and its Neural Model columns (the best model of each input, the caption:
# CNN_AUDIO + MM_AUDIO, CNN_VISUAL, ALL), each (Audio, Visual, A + V), digit
# for digit in the paper's genre order. The paper text's extraction splits
# the table in two blocks; the second (Rap .. World) opens with the Average
# row under a garbled header: every Average cell is within 0.01 of its
# column's mean over the 15 genres, so the row is that mean.
TABLE3_SOURCE = 'Table 3 (Sec 6.4)'
# Table 3's input columns: (heading, results.json modality of the model).
TABLE3_COLUMNS = (('Audio', 'audio+mm_audio'), ('Visual', 'image'),
                  ('A + V', 'audio+image+mm_audio+mm_visual'))
# genre -> ((human Audio, Visual, A + V), (neural Audio, Visual, A + V)).
PAPER_TABLE3 = {
    'Blues': ((0, 0.50, 0.67), (0.05, 0.36, 0.42)),
    'Country': ((0.40, 0.60, 0.31), (0.37, 0.21, 0.40)),
    'Electronic': ((0.62, 0.44, 0.67), (0.64, 0.44, 0.68)),
    'Folk': ((0, 0.33, 0), (0.13, 0.23, 0.28)),
    'Jazz': ((0.62, 0.38, 0.67), (0.47, 0.27, 0.49)),
    'Latin': ((0.33, 0.33, 0.40), (0.17, 0.08, 0.13)),
    'Metal': ((0.80, 0.43, 0.71), (0.69, 0.49, 0.73)),
    'New Age': ((0, 0, 0), (0, 0.12, 0.10)),
    'Pop': ((0.43, 0.46, 0.42), (0.39, 0.43, 0.49)),
    'Punk': ((0.44, 0.29, 0.46), (0.04, 0, 0.30)),
    'Rap': ((0.74, 0.29, 0.88), (0.73, 0.39, 0.73)),
    'Reggae': ((0.67, 0, 0.80), (0.51, 0.34, 0.55)),
    'RnB': ((0.55, 0, 0.46), (0.45, 0.31, 0.51)),
    'Rock': ((0.58, 0.40, 0.40), (0.54, 0.20, 0.58)),
    'World': ((0, 0.33, 0), (0, 0, 0.03)),
}
PAPER_TABLE3_AVERAGE = ((0.41, 0.32, 0.46), (0.35, 0.25, 0.43))

# Sec 7.5, Table 7 (MuMu): the top-3 genres predicted for the first 20 test
# albums by the best LOGISTIC and the best COSINE audio approach in AUC
# (the text: LOGISTIC/LOW-4x70 and COSINE/HIGH-4x70), as printed:
# (Amazon ID, LOGISTIC top 3, COSINE top 3), best first.
TABLE7_SOURCE = 'Table 7 (Sec 7.5)'
TABLE7_SETTINGS = {'logistic': 'low-4x70', 'cosine': 'high-4x70'}
PAPER_TABLE7 = (
    ('B00002SWJF', ('Pop', 'Dance & Electronic', 'Rock'),
     ('Dance & Electronic', 'Dance Pop', 'Electronica')),
    ('B00006FX4G', ('Pop', 'Rock', 'Alternative Rock'),
     ('Rock', 'Alternative Rock', 'Pop')),
    ('B000000PLF', ('Pop', 'Jazz', 'Rock'),
     ('Jazz', 'Bebop', 'Modern Postbebop')),
    ('B00005YQOV', ('Pop', 'Jazz', 'Bebop'), ('Jazz', 'Cool Jazz', 'Bebop')),
    ('B0000026BS', ('Jazz', 'Pop', 'Bebop'), ('Jazz', 'Bebop', 'Cool Jazz')),
    ('B0000006PK', ('Pop', 'Jazz', 'Bebop'), ('Jazz', 'Bebop', 'Cool Jazz')),
    ('B0000506NI', ('Pop', 'Rock', 'World Music'),
     ('Blues', 'Traditional Blues', 'Acoustic Blues')),
    ('B000BPYKLY', ('Pop', 'Jazz', 'R&B'),
     ('Smooth Jazz', 'Soul-Jazz & Boogaloo', 'Jazz')),
    ('B000007U2R', ('Pop', 'Dance & Electronic', 'Dance Pop'),
     ('Dance Pop', 'Dance & Electronic', 'Electronica')),
    ('B002LSPVJO', ('Rock', 'Pop', 'Alternative Rock'),
     ('Rock', 'Alternative Rock', 'Metal')),
    ('B000007WE5', ('Pop', 'Rock', 'Country'),
     ('Rock', 'Pop', 'Singer-Songwriters')),
    ('B001IUC4AA', ('Dance & Electronic', 'Pop', 'Dance Pop'),
     ('Dance & Electronic', 'Dance Pop', 'Electronica')),
    ('B000SFJW2O', ('Pop', 'Rock', 'World Music'),
     ('Pop', 'Rock', 'World Music')),
    ('B000002NE8', ('Pop', 'Rock', 'Dance & Electronic'),
     ('Dance & Electronic', 'Dance Pop', 'Electronica')),
    ('B000002GUJ', ('Rock', 'Pop', 'Alternative Rock'),
     ('Alternative Rock', 'Indie & Lo-Fi', 'Indie Rock')),
    ('B00004T0QB', ('Pop', 'Rock', 'Alternative Rock'),
     ('Rock', 'Alternative Rock', 'Pop')),
    ('B0000520XS', ('Pop', 'Rock', 'Folk'),
     ('Singer-Songwriters', 'Contemporary Folk', 'Folk')),
    ('B000EQ47W2', ('Pop', 'Rock', 'Alternative Rock'),
     ('Metal', 'Pop Metal', 'Rock')),
    ('B00000258F', ('Pop', 'Rock', 'Jazz'),
     ('Smooth Jazz', 'Soul-Jazz & Boogaloo', 'Jazz')),
    ('B000003748', ('Pop', 'Rock', 'Alternative Rock'),
     ('Alternative Rock', 'Rock', 'American Alternative')),
)

# Sec 7.5, information gain of words: the genres whose informative words it
# names (the default genres of the report's words-per-genre section), and
# those words, shown beside ours.
WORDS_GENRES = ('Rock', 'Pop', 'Rap', 'Reggae', 'Country', 'Blues')
GENRE_WORDS = {'Rock': ('band',), 'Pop': ('song',),
               'Rap': ('dope', 'rhymes', 'beats'), 'Reggae': ('Jamaica',),
               'Country': ('Nashville',), 'Blues': ('Chicago',)}

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
# Oramas et al. (2018), Sec 7.4, Table 6 (MuMu, multi-label albums):
# params, epoch seconds (2017 GPU), AUC-ROC, ADiv@1, ADiv@3, ADiv@5.
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


def paper_table6(modality: str, target: str, settings: str
                 ) -> Optional[Tuple[Any, ...]]:
  """Table 6 values of a row; any ResNet depth is the paper's 'resnet'."""
  if settings.startswith('resnet'):
    settings = 'resnet'
  return PAPER_TABLE6.get((modality, target, settings))

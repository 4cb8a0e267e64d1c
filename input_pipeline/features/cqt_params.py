"""The log-CQT's parameters (Sec 3.1), shared by every audio front end.

22,050 Hz mono, constant-Q transform with hop 1024, 96 bins of 12 per
octave from C1, Hann window, then power_to_db(ref=the track's maximum,
top_db=80). input_pipeline.features.audio re-exports these; the front ends
(input_pipeline.features.frontends) and the JAX transform (cqt_jax) read
them here, below audio in the import graph.
"""

import librosa

SAMPLE_RATE = 22050
HOP_LENGTH = 1024
N_BINS = 96
BINS_PER_OCTAVE = 12
FMIN_NOTE = 'C1'
FMIN_HZ = float(librosa.note_to_hz(FMIN_NOTE))  # 32.70 Hz.
# librosa.power_to_db's default dynamic range: everything more than 80 dB
# below the track's maximum is clipped, so silence (and the zero padding of
# a short track) sits at this floor.
TOP_DB = 80.0
# librosa.power_to_db's amin: powers below it count as it (log of 0).
AMIN = 1e-10

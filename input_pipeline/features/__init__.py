"""Per-item features: CQT audio patches, cover images, review texts.

Oramas et al. 2018, Sec 3.1 / 3.2 / 3.3 and 7.3.2, one module per modality:

- `audio`: 22,050 Hz mono, constant-Q transform (hop 1024, 96 bins of 12 per
  octave from C1, Hann window), `power_to_db(|C|^2, ref=max, top_db=80)`
  with the maximum over the whole track (the authors' code), as
  [frames, 96]. One seeded random 15 s patch (322 frames) per track for
  training and whole-track windows (15 % dropped at each end, 50 % overlap)
  for prediction, both crops of that track-referenced spectrogram.
- `image`: any PIL mode to RGB, shorter side resized to 256 (for 224), centre
  crop 224 x 224, uint8; ImageNet mean/std applied later.
- `text`: the reviews of an album joined in order, truncated at about 1,500
  characters at a sentence end; optional semantic enrichment (categories of
  linked entities appended as words); tf-idf fitted on the training split.
- `cqt_jax`, `resample_jax`: the audio CQT, its dB step and polyphase
  resampling in JAX, numerically librosa's with res_type='polyphase'
  (the API: mmgenre_jax.frontend).

  from input_pipeline.features import audio as audio_features
  patch = audio_features.audio_patch('T1.wav', seed=0)   # float32 [322, 96]

Every reader raises `FeatureError` (a ValueError, defined here so that the
three modules share it) naming the file and the reason, so `mmgenre prepare`
can skip the item and report why. Importing this package imports none of the
modality libraries (librosa, Pillow, scikit-learn).
"""

import os

from input_pipeline import errors as input_errors


class FeatureError(input_errors.InputError, ValueError):
  """An input file cannot be turned into a feature.

  The message names the file and the reason; `mmgenre prepare` writes it to
  skipped.tsv.
  """


def error(path, reason: str) -> FeatureError:
  """A FeatureError whose message is `path: reason`."""
  return FeatureError(f'{os.fspath(path)}: {reason}')

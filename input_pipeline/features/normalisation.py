"""Input standardisation shared by training and prediction, without TensorFlow.

input_pipeline/records/shard_reader.py (training, tf.data) and
mmgenre_jax/tagging (prediction, which must start without importing TensorFlow)
both read the training-split audio statistics and the image normalisation from
here, so the two can never standardise differently.
"""

from typing import Any, Mapping, Sequence, Tuple, Type

from etils import epath
import numpy as np

# Standard deviations below this (a (frame, bin) cell constant over the train
# patches, e.g. zero padding) are replaced by 1, as sklearn's StandardScaler
# does, so that standardising never divides by ~0.
STD_FLOOR = 1e-6


def read_audio_stats(path, expected_shape: Sequence[int], *,
                     error: Type[Exception] = ValueError
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """Reads audio_stats.npz (training-split patch statistics), std floored.

  Args:
    path: the audio_stats.npz written by `mmgenre prepare`.
    expected_shape: (frames, bins) of a patch, e.g. (322, 96).
    error: the exception class raised for a missing or malformed file.

  Returns:
    mean, std: float32 [frames, bins].
  """
  path = epath.Path(path)  # A local path or a gs:// URL.
  try:
    with path.open('rb') as f, np.load(f) as stats:
      mean = stats['mean'].astype(np.float32)
      std = stats['std'].astype(np.float32)
  except (OSError, KeyError, ValueError) as e:
    raise error(f'{path}: cannot read the audio statistics ({e}); prepare '
                'the shards again.') from e
  expected = tuple(expected_shape)
  if mean.shape != expected or std.shape != expected:
    raise error(f'{path}: mean {mean.shape} / std {std.shape}, expected the '
                f'patch shape {expected}; prepare the shards again.')
  return mean, np.where(std < STD_FLOOR, np.float32(1), std)


def image_normalisation(manifest: Mapping[str, Any]
                        ) -> Tuple[np.ndarray, np.ndarray]:
  """The manifest's ImageNet mean/std as float32 [3] on [0, 1] pixels."""
  mean = np.asarray(manifest['image_mean'], np.float32)
  std = np.asarray(manifest['image_std'], np.float32)
  if mean.max() > 1.0:  # Given in 0-255 pixel units.
    mean, std = mean / 255.0, std / 255.0
  return mean, std

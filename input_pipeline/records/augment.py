"""The covers' crops and training augmentation (paper Sec 3.2), in tf.

What input_pipeline.records.shard_reader applies to each stored [S, S, 3] cover:
the centre C x C crop for evaluation, a random-resized crop with colour jitter,
PCA lighting and flips (ImageAugment) for training.

  augment = augment_lib.ImageAugment.from_mapping(config.data.image_augment)
  view = augment_lib.augment_image(image, seed, 224, augment)  # [224, 224, 3]
"""

import dataclasses
from typing import Any, Mapping, Optional, Tuple

from input_pipeline import startup
from input_pipeline.features import image as image_features

tf = startup.import_tensorflow()

# Luma weights of the grey image that contrast and saturation blend with
# (fb.resnet.torch's grayscale, ITU-R 601).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclasses.dataclass(frozen=True)
class ImageAugment:
  """The training augmentation of covers (paper Sec 3.2).

  The paper trains "the original ResNet" (fb.resnet.torch) with "the scaling
  and aspect ratio augmentation" of Szegedy et al. (2015) and "the
  photometric distortions" of Howard (2013); the defaults are that code's
  ImageNet training transforms, in its order: a random-resized crop (area
  fraction in crop_area of the stored cover, aspect ratio in crop_aspect,
  resized to the C x C input), colour jitter (brightness, contrast,
  saturation: each blends with black / the mean grey / the grey image by a
  factor 1 + U(-x, x); fixed order here, fb.resnet.torch shuffles it), PCA
  lighting noise (alpha ~ N(0, lighting) per ImageNet RGB eigenvector), a
  horizontal flip with probability 1/2 when flip; pixels are clipped to
  [0, 1] before the ImageNet standardisation. 0 turns a distortion off;
  crop_area (1, 1) with crop_aspect (1, 1) resizes the whole stored cover.
  configs/default.py copies these values into config.data.image_augment
  (models/specs.IMAGE_AUGMENT).
  """
  crop_area: Tuple[float, float] = (0.08, 1.0)
  crop_aspect: Tuple[float, float] = (3 / 4, 4 / 3)
  brightness: float = 0.4
  contrast: float = 0.4
  saturation: float = 0.4
  lighting: float = 0.1
  flip: bool = True

  @classmethod
  def from_mapping(cls, values: Optional[Mapping[str, Any]]
                   ) -> 'ImageAugment':
    """An ImageAugment from config.data.image_augment (None: the defaults).

    Raises:
      ValueError: an unknown key or a value out of range, naming it.
    """
    if values is None:
      return cls()
    if isinstance(values, cls):
      return values
    values = dict(values)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise ValueError(f'Unknown image augmentation settings {unknown}; '
                       f'known: {sorted(fields)}.')
    for key in ('crop_area', 'crop_aspect'):
      if key in values:
        values[key] = tuple(float(v) for v in values[key])
    augment = cls(**values)
    low, high = augment.crop_area
    if not 0 < low <= high <= 1:
      raise ValueError(f'image augmentation crop_area {augment.crop_area}: '
                       'give 0 < low <= high <= 1 (fractions of the cover).')
    low, high = augment.crop_aspect
    if not 0 < low <= high:
      raise ValueError(f'image augmentation crop_aspect '
                       f'{augment.crop_aspect}: give 0 < low <= high.')
    for key in ('brightness', 'contrast', 'saturation'):
      if not 0 <= getattr(augment, key) < 1:
        raise ValueError(f'image augmentation {key}={getattr(augment, key)}'
                         ': give a strength in [0, 1) (0 turns it off).')
    if augment.lighting < 0:
      raise ValueError(f'image augmentation lighting={augment.lighting}: '
                       'give a standard deviation >= 0 (0 turns it off).')
    return augment


def centre_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """The evaluation crop: the centre size x size of an [S, S, 3] image.

  Offsets (S - size) // 2, as features.image.centre_crop (tagging).
  """
  stored = int(image.shape[0])
  offset = (stored - size) // 2
  return image[offset:offset + size, offset:offset + size]


def _grey(image: tf.Tensor) -> tf.Tensor:
  """[H, W, 1] luma of an [H, W, 3] image."""
  return tf.reduce_sum(image * tf.constant(LUMA_WEIGHTS, tf.float32), -1,
                       keepdims=True)


def _jitter_factor(strength: float, seed: tf.Tensor) -> tf.Tensor:
  return tf.random.stateless_uniform([], seed, 1.0 - strength,
                                     1.0 + strength)


def augment_image(image: tf.Tensor, seed: tf.Tensor, size: int,
                  augment: ImageAugment) -> tf.Tensor:
  """A training view of a stored cover (ImageAugment), float32 [C, C, 3].

  Args:
    image: float32 [S, S, 3] on [0, 1], the stored cover.
    seed: int64 [2], the stateless seed of this example.
    size: C, the side of the output.
    augment: the settings.

  Returns:
    float32 [size, size, 3] on [0, 1].
  """
  seeds = tf.random.experimental.stateless_split(seed, 7)
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), tf.constant([[[0.0, 0.0, 1.0, 1.0]]], tf.float32),
      seed=seeds[0], min_object_covered=0.0,
      aspect_ratio_range=augment.crop_aspect, area_range=augment.crop_area,
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  image = tf.slice(image, begin, crop_size)
  image = tf.image.resize(image, (size, size), method='bilinear',
                          antialias=True)
  image = tf.ensure_shape(image, (size, size, 3))
  if augment.brightness:
    image = image * _jitter_factor(augment.brightness, seeds[1])
  if augment.contrast:
    alpha = _jitter_factor(augment.contrast, seeds[2])
    image = image * alpha + tf.reduce_mean(_grey(image)) * (1.0 - alpha)
  if augment.saturation:
    alpha = _jitter_factor(augment.saturation, seeds[3])
    image = image * alpha + _grey(image) * (1.0 - alpha)
  if augment.lighting:
    alpha = tf.random.stateless_normal([3], seeds[4],
                                       stddev=augment.lighting)
    eigvec = tf.constant(image_features.IMAGENET_PCA_EIGVEC, tf.float32)
    eigval = tf.constant(image_features.IMAGENET_PCA_EIGVAL, tf.float32)
    image = image + tf.linalg.matvec(eigvec, alpha * eigval)
  if augment.flip:
    image = tf.image.stateless_random_flip_left_right(image, seeds[5])
  return tf.clip_by_value(image, 0.0, 1.0)

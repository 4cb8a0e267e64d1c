"""Cover image features (SPEC §2; paper Sec 6.2, ResNet preprocessing).

Any PIL mode to RGB, shorter side resized to 256 (for 224), centre crop
224 x 224, stored as uint8; `normalize_image` applies the ImageNet mean/std
when the images are read.

`load_image` raises `features.FeatureError` naming the file and the reason.
"""

import os

import numpy as np
from PIL import Image
from PIL import ImageOps

from input_pipeline import features

# path, reason -> a features.FeatureError naming the file.
_error = features.error

IMAGE_SIZE = 224
# ResNet evaluation preprocessing resizes the shorter side to 256 for a 224
# crop: the crop keeps 224/256 of the shorter side.
RESIZE_RATIO = 256 / 224
# ImageNet statistics on [0, 1] RGB (torchvision / the authors' Lua Torch
# fb.resnet code).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Transparent pixels are composited on white: their stored colour is
# arbitrary (often black) and album covers are printed on white.
BACKGROUND = (255, 255, 255)


def _rgb(image: Image.Image, path) -> Image.Image:
  """Any PIL mode -> RGB."""
  mode = image.mode
  if mode == 'RGB':
    return image
  if mode.startswith('I') or mode == 'F':
    # 16/32-bit integer or float grey: PIL's convert clips at 255, so scale
    # by the range the pixel type can hold instead.
    a = np.asarray(image, dtype=np.float64)
    if mode.startswith('I;16'):
      a = a / 257.0
    elif mode == 'F' and a.size and np.nanmax(a) <= 1.0:
      a = a * 255.0
    elif a.size and np.nanmax(a) > 255:
      a = a * (255.0 / (65535.0 if np.nanmax(a) <= 65535 else np.nanmax(a)))
    a = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.stack([a] * 3, axis=-1))
  if mode == 'P':
    image = image.convert('RGBA' if 'transparency' in image.info else 'RGB')
  elif mode in ('LA', 'La', 'PA', 'RGBa'):
    image = image.convert('RGBA')
  if image.mode == 'RGBA':
    background = Image.new('RGBA', image.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, image).convert('RGB')
  try:
    return image.convert('RGB')
  except (ValueError, OSError) as e:
    raise _error(path, f'cannot convert image mode {mode} to RGB ({e})') from e


def load_image(path, *, size: int = IMAGE_SIZE) -> np.ndarray:
  """An album cover as a centre-cropped RGB array (ResNet evaluation crop).

  Applies the EXIF orientation, converts any mode (1, L, P, LA, RGBA, CMYK,
  I;16, I, F, ...) to RGB, resizes the shorter side to round(size * 256 / 224)
  with Pillow's antialiased bilinear filter and crops the centre.

  Args:
    path: jpg, png or any format Pillow reads.
    size: side of the output > 0 [scalar].

  Returns:
    image: np.ndarray [shape=(size, size, 3), dtype=uint8].

  Raises:
    FeatureError: missing, empty, unreadable, truncated or corrupt image.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise _error(path, 'image file not found')
  if os.path.getsize(path) == 0:
    raise _error(path, 'empty image file (0 bytes)')
  short = int(round(size * RESIZE_RATIO))
  try:
    with Image.open(path) as image:
      # JPEG can decode straight at a reduced scale (still >= `short`).
      image.draft(None, (short, short))
      image.load()
      image = ImageOps.exif_transpose(image)
      image = _rgb(image, path)
  except features.FeatureError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
          EOFError) as e:
    raise _error(path, f'unreadable or corrupt image ({e})') from e
  width, height = image.size
  if width == 0 or height == 0:
    raise _error(path, f'image has no pixels ({width} x {height})')
  scale = short / min(width, height)
  new_size = (max(short, int(round(width * scale))),
              max(short, int(round(height * scale))))
  image = image.resize(new_size, Image.Resampling.BILINEAR)
  left = int(round((new_size[0] - size) / 2))
  top = int(round((new_size[1] - size) / 2))
  image = image.crop((left, top, left + size, top + size))
  return np.asarray(image, dtype=np.uint8)


def normalize_image(images_uint8: np.ndarray) -> np.ndarray:
  """ImageNet standardisation of uint8 RGB images.

  Args:
    images_uint8: np.ndarray [shape=(..., H, W, 3), dtype=uint8].

  Returns:
    images: np.ndarray [shape=(..., H, W, 3), dtype=float32],
      (x / 255 - IMAGENET_MEAN) / IMAGENET_STD.
  """
  images = np.asarray(images_uint8)
  if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
    raise ValueError('normalize_image needs uint8 [..., H, W, 3] images; got '
                     f'{images.dtype} {images.shape}.')
  mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
  std = np.asarray(IMAGENET_STD, dtype=np.float32)
  return (images.astype(np.float32) / 255.0 - mean) / std


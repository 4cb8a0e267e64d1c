"""Cover image features (paper Sec 3.2, 6.2; docs/fidelity.md image recipe).

Any PIL mode to RGB, shorter side resized to 256 (for 224), centre square.
`mmgenre prepare --image-size C` stores each cover as that square, S x S
uint8 with S = stored_size(C) = round(C * 256 / 224), so that training can
take random-resized crops from it (input_pipeline.records.shard_reader);
evaluation, extraction and tagging take the centre C x C crop (`centre_crop`,
`evaluation_cover`), the ResNet evaluation crop. `normalize_image` applies the
ImageNet mean/std when the images are read.

`load_image` raises `features.FeatureError` naming the file and the reason.
"""

import os
from typing import Optional

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
# PCA of ImageNet's RGB pixels on [0, 1] (fb.resnet.torch's `pca`, from
# Krizhevsky et al. 2012): the lighting noise of training (Howard 2013) adds
# IMAGENET_PCA_EIGVEC @ (alpha * IMAGENET_PCA_EIGVAL) to every pixel; the
# columns of IMAGENET_PCA_EIGVEC are the eigenvectors.
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                       (-0.5808, -0.0045, -0.8140),
                       (-0.5836, -0.6948, 0.4203))
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


def stored_size(crop_size: int) -> int:
  """S of the covers `prepare` stores for crops of crop_size: the shorter
  side ResNet's evaluation resizes to (256 for 224)."""
  return int(round(int(crop_size) * RESIZE_RATIO))


def load_image(path, *, size: int = IMAGE_SIZE,
               short_side: Optional[int] = None) -> np.ndarray:
  """An album cover as a centre-cropped RGB array (ResNet evaluation crop).

  Applies the EXIF orientation, converts any mode (1, L, P, LA, RGBA, CMYK,
  I;16, I, F, ...) to RGB, resizes the shorter side to `short_side` (default
  round(size * 256 / 224)) with Pillow's antialiased bilinear filter and
  crops the centre. `prepare` stores load_image(path, size=S, short_side=S),
  S = stored_size(crop): the whole centre square.

  Args:
    path: jpg, png or any format Pillow reads.
    size: side of the output > 0 [scalar].
    short_side: the shorter side before the crop, >= size.

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
  short = stored_size(size) if short_side is None else int(short_side)
  if short < size:
    raise ValueError(f'short_side {short} is smaller than the crop {size}.')
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


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  """The centre size x size of an [H, W, C] image (the evaluation crop).

  The offsets are (H - size) // 2 and (W - size) // 2, as the input
  pipeline's evaluation crop (pipeline.py) takes them; size == H == W is the
  image itself.
  """
  height, width = image.shape[:2]
  if size > min(height, width):
    raise ValueError(f'Cannot crop {size} x {size} from a {height} x {width} '
                     'image.')
  top, left = (height - size) // 2, (width - size) // 2
  return image[top:top + size, left:left + size]


def evaluation_cover(path, *, crop_size: int,
                     stored_side: Optional[int] = None) -> np.ndarray:
  """A cover as evaluation sees it in shards with covers stored at S.

  What `prepare` stored (load_image(path, size=S, short_side=S)), then its
  centre crop_size crop, as pipeline.py takes it: tagging feeds a network
  exactly its evaluation input. stored_side None or equal to crop_size
  (shards prepared before covers were stored larger than the crop) is
  load_image(path, size=crop_size), what those shards hold.

  Returns:
    np.ndarray [shape=(crop_size, crop_size, 3), dtype=uint8].
  """
  if stored_side is None or int(stored_side) == int(crop_size):
    return load_image(path, size=crop_size)
  stored = load_image(path, size=int(stored_side),
                      short_side=int(stored_side))
  return centre_crop(stored, int(crop_size))


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


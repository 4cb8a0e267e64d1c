"""How a genre looks: the painting of the corpus's album covers.

A cover's palette, shapes and texture each follow the album's label with
probability `signal` (LOOKS gives every top-level genre its look; a
sub-genre shifts its parent's palette); the artist's emblem and tint go on
top.
"""

import dataclasses
import pathlib
import zlib
from typing import Sequence, Tuple

import numpy as np
from PIL import Image
from PIL import ImageDraw

from input_pipeline.synthetic import draws
from input_pipeline.synthetic import items
from input_pipeline.synthetic import taxonomy


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


def look_of(label: str) -> Look:
  """The look of a label: a sub-genre shifts its parent's palette."""
  base = LOOKS[taxonomy.top_genre(label)]
  if label not in taxonomy.PARENT:
    return base
  r = draws.label_rng(label, 2).uniform(-1, 1, 2)
  return dataclasses.replace(
      base, hue=(base.hue + 0.04 * r[0]) % 1.0,
      value=float(np.clip(base.value + 0.1 * r[1], 0.1, 1.0)))


def draw_image_params(label: str, rng: np.random.Generator, signal: float,
                      labels: Sequence[str]) -> dict:
  """Palette, shapes and texture of a cover; each follows `label` w.p. signal.

  Returns:
    A dict: palette (list of RGB triples), shape, texture, count.
  """
  palette_look = look_of(draws.decoy(rng, label, signal, labels))
  shape = look_of(draws.decoy(rng, label, signal, labels)).shape
  texture = look_of(draws.decoy(rng, label, signal, labels)).texture
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


def render_cover(params: dict, artist: items.Artist, artist_signal: float,
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


def _emblem_mask(artist: items.Artist, size: Tuple[int, int]) -> Image.Image:
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

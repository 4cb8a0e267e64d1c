"""Fixtures of the tagging tests: media files in every supported format."""

import os

import numpy as np
from PIL import Image
import pytest

from helpers import tagging_pipeline


@pytest.fixture(scope='session')
def media(tmp_path_factory):
  """Audio in every format, a cover, reviews and one corrupt file."""
  root = tmp_path_factory.mktemp('media')
  music = root / 'music'
  (music / 'sub').mkdir(parents=True)
  tone = tagging_pipeline.tone
  files = {
      'wav': tone(music / 'a.wav', 20.0, 44100, 440, channels=2),
      'flac': tone(music / 'b.flac', 18.0, 48000, 220),
      'ogg': tone(music / 'sub' / 'c.ogg', 16.0, 22050, 330, channels=2),
      'mp3': tone(music / 'd.mp3', 3.0, 16000, 550, fmt='MP3'),  # < 1 patch
  }
  corrupt = music / 'broken.mp3'
  corrupt.write_bytes(b'ID3' + bytes(range(256)) * 8)
  files['corrupt'] = os.fspath(corrupt)
  cover = root / 'cover.png'
  Image.fromarray(np.full((60, 80, 3), tagging_pipeline.GENRE_COLOURS[1],
                          np.uint8)).save(cover)
  reviews = root / 'reviews.txt'
  reviews.write_text(tagging_pipeline.review('ALx1') + '\n' +
                     tagging_pipeline.review('ALx4'), encoding='utf-8')
  return {'root': root, 'music': music, 'files': files,
          'cover': os.fspath(cover), 'reviews': os.fspath(reviews)}



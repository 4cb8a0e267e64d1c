"""The tiny trained pipeline the tagging tests share, and its media.

Audio, text and image networks, an alignment stage, a fusion of audio +
MM_AUDIO and the final fusion of audio + text + image, each one epoch of
tiny batches, trained with the real machinery on the tiny audio shards
(helpers/tiny.py) plus text and image shards of the same albums.
"""

import os
import pathlib
import shutil

import numpy as np
import soundfile as sf

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.features import image as image_features
from input_pipeline.features import text as text_features
from input_pipeline.records import shard_reader
from input_pipeline.records import tfrecord
from mmgenre_jax.data import label_matrix
from mmgenre_jax.pipelines import runner as pipeline_runner
from mmgenre_jax.pipelines import definition as pipeline_definition

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = {'data.factor_dim': 4, 'train.batch_size': 4, 'train.num_epochs': 1,
        'eval.batch_size': 4}
IMAGE_SIZE = 32
# Words of each tiny genre (album a has genre a % 3, conftest).
GENRE_WORDS = (('guitar', 'riff', 'distortion', 'amplifier'),
               ('saxophone', 'swing', 'improvisation', 'trio'),
               ('chorus', 'catchy', 'dancefloor', 'radio'))
GENRE_COLOURS = ((200, 30, 30), (30, 30, 200), (30, 200, 30))


def genre(album_id: str) -> int:
  return int(album_id[-1]) % 3


def review(album_id: str) -> str:
  words = GENRE_WORDS[genre(album_id)]
  return (f'This record by {album_id} is full of {words[0]} and {words[1]}. '
          f'The {words[2]} is great, a fine {words[3]} album.')


def add_text_and_image(shard_dir: pathlib.Path) -> None:
  """Adds text and image shards of the audio shards' albums."""
  manifest = shard_reader.load_manifest(shard_dir)
  rows = {split: label_matrix.read_album_labels(shard_dir, 'audio', [split])
          for split in ('train', 'val', 'test')}
  vectorizer = text_features.fit_tfidf(
      [review(a) + ' ' + a for a in rows['train'][0]])
  text_features.save_vectorizer(vectorizer,
                                shard_dir / layout.TEXT_VECTORIZER_JSON)
  text_specs = tfrecord.feature_specs('mumu', 'text')
  image_specs = tfrecord.feature_specs('mumu', 'image',
                                       image_size=IMAGE_SIZE)
  rng = np.random.default_rng(1)
  for modality, specs in (('text', text_specs), ('image', image_specs)):
    entry = {'features': tfrecord.specs_to_json(specs), 'counts': {},
             'shards': {}}
    for split, (albums, matrix) in rows.items():
      with tfrecord.ShardedWriter(shard_dir / modality, split,
                                  shard_size=8) as w:
        for album, row in zip(albums, matrix):
          labels = np.flatnonzero(row).tolist()
          if modality == 'text':
            tfidf = vectorizer.transform([review(album)])
            values = {'tfidf_indices': tfidf.indices,
                      'tfidf_values': tfidf.data}
          else:
            image = rng.integers(0, 60, (IMAGE_SIZE, IMAGE_SIZE, 3))
            image += np.asarray(GENRE_COLOURS[genre(album)])
            values = {'image': np.clip(image, 0, 255).astype(np.uint8)}
          w.write(tfrecord.encode_example(
              {'album_id': album, **values, 'labels': labels}, specs))
      entry['shards'][split] = [s.to_json() for s in w.shards]
      n = len(albums)
      entry['counts'][split] = {'read': n, 'written': n, 'skipped': 0}
    manifest['modalities'][modality] = entry
  manifest.update(
      vocab_size=len(vectorizer.vocabulary_),
      text_vectorizer=layout.TEXT_VECTORIZER_JSON, image_size=IMAGE_SIZE,
      image_mean=[float(v) for v in image_features.IMAGENET_MEAN],
      image_std=[float(v) for v in image_features.IMAGENET_STD])
  fileio.write_json_atomic(shard_dir / layout.MANIFEST_JSON, manifest)


def pipeline_config(shard_dir):
  config = pipeline_definition.pipeline_config(
      'tagging', 'tests/mmgenre_jax/tagging/tagger_test.py', dataset='mumu',
      shard_dir=str(shard_dir))
  add = pipeline_definition.add_stage
  add(config, 'audio', config_file='configs/mumu_audio.py',
      config_arg='low-4x70-cosine', overrides=TINY)
  add(config, 'text', config_file='configs/mumu_text.py', config_arg='cosine',
      overrides={**TINY, 'model.hidden_units': (16,),
                 'model.dropout': 0.0})
  add(config, 'image', config_file='configs/mumu_image.py',
      config_arg='cosine-tiny', overrides=TINY)
  add(config, 'align', config_file='configs/msdi_alignment.py',
      overrides={**TINY, 'data.dataset': 'mumu', 'model.hidden_dim': 8,
                 'model.embed_dim': 8},
      inputs={'audio': 'audio', 'image': 'image'})
  add(config, 'fused_am', config_file='configs/mumu_fusion.py',
      config_arg='audio+mm_audio-cosine', overrides=TINY,
      inputs={'audio': 'audio', 'mm_audio': 'align'})
  add(config, 'fused', config_file='configs/mumu_fusion.py',
      config_arg='audio+text+image-cosine', overrides=TINY,
      inputs={'audio': 'audio', 'text': 'text', 'image': 'image'})
  config.final = 'fused'
  pipeline_definition.link_input_dims(config)
  return config


def train_pipeline(shard_dir, root: pathlib.Path) -> pathlib.Path:
  """Trains the tiny pipeline on copies of `shard_dir` plus text and image
  shards; returns its workdir W (ROOT/W beside ROOT/shards)."""
  shards = root / 'shards'
  shutil.copytree(shard_dir, shards)
  add_text_and_image(shards)
  w = root / 'W'
  pipeline_runner.run_pipeline(pipeline_config(shards), w, report=False)
  return w


def tone(path, seconds, rate, hz, channels=1, fmt=None):
  t = np.arange(int(seconds * rate)) / rate
  y = 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * np.random.default_rng(
      int(hz)).standard_normal(t.size)
  if channels == 2:
    y = np.stack([y, 0.5 * y], axis=1)
  sf.write(path, y.astype(np.float32), rate, format=fmt)
  return os.fspath(path)



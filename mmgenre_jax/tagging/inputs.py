"""Raw inputs -> network inputs, standardised exactly as in training.

A modality stage reads its feature metadata from the prepared shards'
manifest (or a bundle's copy of it, docs/tagging.md): the training-split
audio statistics, the tf-idf vectorizer and enrichment dictionary, the image
size and normalisation. From them:

  * audio (SPEC §2): every whole-track window of a file (15 % dropped at
    each end, 50 % overlap; input_pipeline.streaming, memory bounded
    whatever the length), standardised, float32 [k, 322, 96, 1] per block;
  * reviews: the aggregated (and enriched) text as tf-idf, float32 [1, V];
  * a cover: resized, centre-cropped and normalised, float32 [1, S, S, 3].

  data = inputs.load_feature_data(stage)
  for track, windows in inputs.audio_windows(stage, data, ['a.flac']): ...
"""

import dataclasses
import os
import pathlib
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from input_pipeline import layout
from input_pipeline import normalisation
from input_pipeline import streaming
from input_pipeline.features import audio as audio_features
from input_pipeline.features import image as image_features
from input_pipeline.features import text as text_features
from mmgenre_jax.tagging import stages as stages_lib

# How a result's notes name each raw modality (the flag that gives it).
INPUT_NAMES = {'audio': 'audio', 'text': 'reviews', 'image': 'cover'}


@dataclasses.dataclass
class FeatureData:
  """Feature metadata of one modality stage.

  Attributes:
    data_dir: the directory holding manifest.json and the files it names.
    manifest: the shards' manifest.json.
    mean, std: audio standardisation, float32 [322, 96] (audio stages).
    vectorizer: the fitted tf-idf vectorizer (text stages).
    enrichment: entity -> categories, or None when the texts were not
      enriched (text stages).
    enrichment_path: the file `enrichment` was read from, or None.
    image_mean, image_std: float32 [3] on [0, 1] pixels (image stages).
    image_size: S of the S x S network input (image stages).
  """
  data_dir: pathlib.Path
  manifest: Dict[str, Any]
  mean: Optional[np.ndarray] = None
  std: Optional[np.ndarray] = None
  vectorizer: Any = None
  enrichment: Optional[Dict[str, Any]] = None
  enrichment_path: Optional[str] = None
  image_mean: Optional[np.ndarray] = None
  image_std: Optional[np.ndarray] = None
  image_size: Optional[int] = None


def enrichment_path(data_dir: pathlib.Path, manifest) -> Optional[str]:
  """The entity dictionary prepare enriched texts with, if any."""
  if manifest.get('bundled_enrichment'):
    return os.fspath(data_dir / manifest['bundled_enrichment'])
  path = (manifest.get('args') or {}).get('enrichment')
  if not path:
    return None
  if not os.path.isfile(path):
    raise stages_lib.TaggingError(
        f'{data_dir}/{layout.MANIFEST_JSON}: the texts were enriched with '
        f'{path}, which is gone; restore it (predictions need the same '
        'enrichment).')
  return path


def load_feature_data(stage: stages_lib.Stage) -> FeatureData:
  """Reads the feature metadata of a modality stage.

  Raises:
    TaggingError: the shards (or the files the manifest names) are gone.
  """
  data_dir = stage.data_dir
  if data_dir is None or not (data_dir / layout.MANIFEST_JSON).is_file():
    raise stages_lib.TaggingError(
        f'Stage {stage.name!r} ({stage.source}): its prepared shards '
        f'({data_dir}) are gone and it is not a bundle; export the model '
        'while the shards exist (mmgenre export).')
  manifest = stages_lib.read_json(data_dir / layout.MANIFEST_JSON)
  data = FeatureData(data_dir=data_dir, manifest=manifest)
  if stage.kind == 'audio':
    data.mean, data.std = normalisation.read_audio_stats(
        data_dir / manifest['audio_stats'],
        (audio_features.PATCH_FRAMES, audio_features.N_BINS),
        error=stages_lib.TaggingError)
  elif stage.kind == 'text':
    name = manifest.get('text_vectorizer')
    if not name:
      raise stages_lib.TaggingError(
          f'{data_dir}/{layout.MANIFEST_JSON} names no tf-idf vectorizer; '
          'prepare the shards with texts.')
    data.vectorizer = text_features.load_vectorizer(data_dir / name)
    data.enrichment_path = enrichment_path(data_dir, manifest)
    if data.enrichment_path:
      data.enrichment = text_features.read_enrichment(data.enrichment_path)
  else:
    data.image_mean, data.image_std = normalisation.image_normalisation(
        manifest)
    data.image_size = int(stage.config.model.get('image_size') or
                          manifest['image_size'])
  return data


def audio_windows(stage: stages_lib.Stage, data: FeatureData,
                  paths: Sequence[str]) -> Iterator[Tuple[int, np.ndarray]]:
  """Standardised whole-track windows of audio files, a block at a time.

  Args:
    stage: the audio stage (its config.eval track_trim / window_overlap).
    data: its FeatureData.
    paths: the audio files (the tracks of one album).

  Yields:
    (track index into paths, float32 [k, 322, 96, 1]).
  """
  drop = float(stage.config.eval.get('track_trim', audio_features.WINDOW_DROP))
  overlap = float(stage.config.eval.get('window_overlap',
                                        audio_features.WINDOW_OVERLAP))
  for index, path in enumerate(paths):
    for windows in streaming.stream_windows(path, drop=drop, overlap=overlap):
      yield index, ((windows - data.mean) / data.std)[..., None]


def text_input(data: FeatureData, reviews: str) -> np.ndarray:
  """tf-idf of the review text, float32 [1, V].

  Raises:
    TaggingError: the text is empty.
  """
  text = text_features.aggregate_reviews([reviews])
  if not text.strip():
    raise stages_lib.TaggingError('the review text is empty.')
  if data.enrichment:
    text = text_features.enrich(text, data.enrichment)
  return data.vectorizer.transform([text]).toarray().astype(np.float32)


def image_input(data: FeatureData, cover) -> np.ndarray:
  """A cover as the network sees it, float32 [1, S, S, 3].

  Raises:
    FeatureError: the file is missing or not an image.
  """
  image = image_features.load_image(cover, size=data.image_size)
  return ((image.astype(np.float32) / 255.0 - data.image_mean) /
          data.image_std)[None].astype(np.float32)

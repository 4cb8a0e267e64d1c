"""Raw inputs -> network inputs, standardised exactly as in training.

A modality stage reads its feature metadata from the prepared shards'
manifest (or a bundle's copy of it, docs/tagging.md): the training-split
audio statistics, the tf-idf vectorizer and enrichment dictionary, the image
size and normalisation. From them:

  * audio (docs/fidelity.md): every whole-track window of a file (15 %
    dropped at each end, 50 % overlap; input_pipeline.features.streaming,
    memory bounded whatever the length), standardised, float32
    [k, 322, 96, 1] per block;
  * reviews: the aggregated (and enriched) text as tf-idf, float32 [1, V];
  * a cover: resized, centre-cropped and normalised, float32 [1, S, S, 3].

What reading them observed goes into the input's `InputReport`: each
track's AudioInfo (input_pipeline.features.audio_info) and the warnings
about the cover and the reviews. `InputReport.warnings()` words what may
make the scores wrong (too short, truncated, silent, clipped, NaN, ...);
`InputReport.notes()` the normal processing that changes nothing about
them (mono-mixing, resampling), so that a warning on a result means
something (issue 27; docs/tagging.md lists both).

  data = inputs.load_feature_data(stage)
  report = inputs.InputReport(['a.flac'])
  for track, windows in inputs.audio_windows(stage, data, ['a.flac'],
                                             report): ...
  report.duration_s(), report.warnings(), report.notes()
"""

import dataclasses
import os
import pathlib
from typing import (Any, Container, Dict, Iterator, List, Optional,
                    Sequence, Tuple)

import numpy as np
from PIL import Image

from input_pipeline import features
from input_pipeline import layout
from input_pipeline.features import normalisation
from input_pipeline.features import streaming
from input_pipeline.features import audio as audio_features
from input_pipeline.features import audio_info
from input_pipeline.features import frontends
from input_pipeline.features import image as image_features
from input_pipeline.features import text as text_features
from mmgenre_jax import errors
from mmgenre_jax.tagging.model import stages as stages_lib

# How a result's notes name each raw modality (the flag that gives it).
INPUT_NAMES = {'audio': 'audio', 'text': 'reviews', 'image': 'cover'}
# A track with at least this fraction of its samples at full scale was
# clipped (a full-scale sine has 2.8 %, music mastered below 0 dBFS none).
CLIP_WARN_FRACTION = 0.001
# A header promising more than decodes by this much, and by 1 %, is a
# truncated file (mp3 headers estimate lengths to a frame or so).
TRUNCATION_TOLERANCE_S = 0.1
# How warnings name the review text (it is given as text, not a path).
REVIEWS = 'reviews'


def _seconds(value: float) -> str:
  return f'{value:.2f} s' if value >= 0.1 else f'{value:.3f} s'


def audio_warnings(info: audio_info.AudioInfo) -> List[str]:
  """What about a decoded track may make its scores wrong, in a fixed
  order (`audio_notes`: what is only normal processing).

  The wording is listed in docs/tagging.md; tests assert it.
  """
  found = []
  patch = audio_features.PATCH_SECONDS
  if info.duration_s < patch:
    found.append(f'shorter than one {patch:g} s patch '
                 f'({_seconds(info.duration_s)}), padded')
  promised = info.header_duration_s
  if promised is not None and promised - info.duration_s > max(
      TRUNCATION_TOLERANCE_S, 0.01 * promised):
    found.append(f'truncated: the header promises {_seconds(promised)}, '
                 f'only {_seconds(info.duration_s)} decode')
  if info.silent:
    found.append(f'silent (peak {info.peak_dbfs:.1f} dBFS)')
  if info.clipped_fraction >= CLIP_WARN_FRACTION:
    found.append(f'clipped ({100 * info.clipped_fraction:.1f} % of samples '
                 'at full scale)')
  if info.nonfinite:
    found.append(f'NaN/Inf replaced by 0 ({info.nonfinite} samples)')
  return found


def audio_notes(info: audio_info.AudioInfo) -> List[str]:
  """How a decoded track was brought to the network's input format.

  Most real recordings are stereo at 44.1 or 48 kHz: these are notes, not
  warnings (training's `prepare` does the same to every file).
  """
  found = []
  if info.channels > 1:
    found.append(f'mono-mixed from {info.channels} channels')
  if info.source_sr != audio_features.SAMPLE_RATE:
    found.append(f'resampled from {info.source_sr} Hz to '
                 f'{audio_features.SAMPLE_RATE} Hz')
  return found


# What a bad input raises (features.FeatureError and TaggingError are
# ValueErrors); anything else is a bug and stops a catalog run.
INPUT_ERRORS = (features.FeatureError, errors.TaggingError, ValueError,
                OSError)

@dataclasses.dataclass
class InputReport:
  """What reading one input's files observed, for its result.

  Attributes:
    tracks: the input's audio files, in order.
    files: how many files the input has (tracks, cover, review text): its
      warnings name the file they concern when there is more than one.
    audio: track index -> AudioInfo of the tracks read (the first audio
      stage that read them).
    other: (file, warning) about the cover and the reviews.
  """
  tracks: List[str] = dataclasses.field(default_factory=list)
  files: int = 1
  audio: Dict[int, audio_info.AudioInfo] = dataclasses.field(
      default_factory=dict)
  other: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

  def duration_s(self) -> Optional[float]:
    """Seconds of audio decoded, all tracks; None when no audio was read."""
    if not self.audio:
      return None
    return float(sum(info.duration_s for info in self.audio.values()))

  def warnings(self) -> List[str]:
    """The tracks' warnings in track order, then the cover's and reviews'."""
    found = [(self.tracks[i], w) for i in sorted(self.audio)
             for w in audio_warnings(self.audio[i])] + self.other
    return self._named(found)

  def notes(self) -> List[str]:
    """The tracks' processing notes (`audio_notes`) in track order."""
    return self._named([(self.tracks[i], n) for i in sorted(self.audio)
                        for n in audio_notes(self.audio[i])])

  def _named(self, found: Sequence[Tuple[str, str]]) -> List[str]:
    """`path: what` when the input has more than one file, else `what`."""
    return [f'{name}: {w}' if self.files > 1 else w for name, w in found]


def given_inputs(audio, cover, reviews: Optional[str], known: Sequence[str]
                 ) -> Tuple[Dict[str, Any], List[str], InputReport]:
  """What Tagger.predict was given -> what the model reads.

  Args:
    audio: a file, a list of them (one album's tracks) or None.
    cover: an image file or None.
    reviews: the review text or None.
    known: the modalities the model has networks for.

  Returns:
    ({modality: input} of the known ones, notes about the ones ignored, the
    InputReport that computing them fills).

  Raises:
    TaggingError: nothing given, or nothing the model reads.
  """
  if isinstance(audio, (str, os.PathLike)):
    audio = [audio]
  raw = {}
  if audio:
    raw['audio'] = [os.fspath(a) for a in audio]
  if cover is not None:
    raw['image'] = os.fspath(cover)
  if reviews is not None:
    raw['text'] = reviews
  if not raw:
    raise errors.TaggingError(
        'nothing to tag: give audio, a cover or reviews.')
  report = InputReport(
      tracks=list(raw.get('audio', [])),
      files=len(raw.get('audio', [])) + ('image' in raw) + ('text' in raw))
  if 'text' in raw and len(raw) > 1 and not reviews.strip():
    # Empty reviews beside audio or a cover: tag with the others, say so.
    del raw['text']
    report.other.append((REVIEWS, 'empty text, ignored'))
  notes = [f'{INPUT_NAMES[m]} ignored: the model has no {m} network'
           for m in raw if m not in known]
  raw = {m: v for m, v in raw.items() if m in known}
  if not raw:
    raise errors.TaggingError(f'this model reads only {list(known)}; '
                                  f'{"; ".join(notes)}.')
  return raw, notes, report


@dataclasses.dataclass
class FeatureData:
  """Feature metadata of one modality stage.

  Attributes:
    data_dir: the directory holding manifest.json and the files it names.
    manifest: the shards' manifest.json.
    mean, std: audio standardisation, float32 [322, 96] (audio stages).
    frontend: the audio front end the stage was trained on, which computes
      its windows (audio stages; `audio_frontend`).
    vectorizer: the fitted tf-idf vectorizer (text stages).
    enrichment: entity -> categories, or None when the texts were not
      enriched (text stages).
    enrichment_path: the file `enrichment` was read from, or None.
    image_mean, image_std: float32 [3] on [0, 1] pixels (image stages).
    image_size: C of the C x C network input (image stages).
    stored_image_size: S of the covers in the shards, which evaluation
      centre-crops to C (image stages; None in shards from before stored
      covers, where S = C).
  """
  data_dir: pathlib.Path
  manifest: Dict[str, Any]
  mean: Optional[np.ndarray] = None
  std: Optional[np.ndarray] = None
  frontend: Optional[frontends.FrontEnd] = None
  vectorizer: Any = None
  enrichment: Optional[Dict[str, Any]] = None
  enrichment_path: Optional[str] = None
  image_mean: Optional[np.ndarray] = None
  image_std: Optional[np.ndarray] = None
  image_size: Optional[int] = None
  stored_image_size: Optional[int] = None


def enrichment_path(data_dir: pathlib.Path, manifest) -> Optional[str]:
  """The entity dictionary prepare enriched texts with, if any."""
  if manifest.get('bundled_enrichment'):
    return os.fspath(data_dir / manifest['bundled_enrichment'])
  path = (manifest.get('args') or {}).get('enrichment')
  if not path:
    return None
  if not os.path.isfile(path):
    raise errors.TaggingError(
        f'{data_dir}/{layout.MANIFEST_JSON}: the texts were enriched with '
        f'{path}, which is gone; restore it (predictions need the same '
        'enrichment).')
  return path


def audio_frontend(stage: stages_lib.Stage,
                   manifest: Dict[str, Any]) -> frontends.FrontEnd:
  """The front end an audio stage was trained on (its data_facts.json).

  Its shards' manifest (or a bundle's copy) must name the same one: shards
  prepared again with another front end after training have other
  statistics and features.

  Raises:
    frontends.FrontEndMismatch: they differ, naming both and the fix.
  """
  model = stage.facts.audio_frontend()
  frontends.check_same(
      model, frontends.recorded(manifest),
      model_what=f'stage {stage.name!r} ({stage.source})',
      data_what=f'its shards {stage.data_dir} (prepared again since)')
  return model


def load_feature_data(stage: stages_lib.Stage) -> FeatureData:
  """Reads the feature metadata of a modality stage.

  Raises:
    TaggingError: the shards (or the files the manifest names) are gone.
  """
  data_dir = stage.data_dir
  if data_dir is None or not (data_dir / layout.MANIFEST_JSON).is_file():
    raise errors.TaggingError(
        f'Stage {stage.name!r} ({stage.source}): its prepared shards '
        f'({data_dir}) are gone and it is not a bundle; export the model '
        'while the shards exist (mmgenre export).')
  manifest = stages_lib.read_json(data_dir / layout.MANIFEST_JSON)
  data = FeatureData(data_dir=data_dir, manifest=manifest)
  if stage.kind == 'audio':
    data.frontend = audio_frontend(stage, manifest)
    data.mean, data.std = normalisation.read_audio_stats(
        data_dir / manifest['audio_stats'],
        (audio_features.PATCH_FRAMES, audio_features.N_BINS),
        error=errors.TaggingError)
  elif stage.kind == 'text':
    name = manifest.get('text_vectorizer')
    if not name:
      raise errors.TaggingError(
          f'{data_dir}/{layout.MANIFEST_JSON} names no tf-idf vectorizer; '
          'prepare the shards with texts.')
    data.vectorizer = text_features.load_vectorizer(data_dir / name)
    data.enrichment_path = enrichment_path(data_dir, manifest)
    if data.enrichment_path:
      data.enrichment = text_features.read_enrichment(data.enrichment_path)
  else:
    data.image_mean, data.image_std = normalisation.image_normalisation(
        manifest)
    data.image_size = int(stage.facts.image_size or manifest['image_size'])
    stored = manifest.get('stored_image_size')
    data.stored_image_size = int(stored) if stored else None
  return data


def window_settings(stage: stages_lib.Stage) -> Tuple[float, float]:
  """(drop, overlap) of an audio stage's whole-track windows: its
  config.eval track_trim and window_overlap."""
  return (float(stage.config.eval.get('track_trim',
                                      audio_features.WINDOW_DROP)),
          float(stage.config.eval.get('window_overlap',
                                      audio_features.WINDOW_OVERLAP)))


def audio_windows(stage: stages_lib.Stage, data: FeatureData,
                  paths: Sequence[str],
                  report: Optional[InputReport] = None,
                  skip: Container[int] = ()
                  ) -> Iterator[Tuple[int, np.ndarray]]:
  """Standardised whole-track windows of audio files, a block at a time.

  Args:
    stage: the audio stage (`window_settings`).
    data: its FeatureData.
    paths: the audio files (the tracks of one album).
    report: where each track's AudioInfo goes once its windows are read
      (kept from an earlier audio stage if one read the track first).
    skip: indices into paths of tracks not to read (computed elsewhere).

  Yields:
    (track index into paths, float32 [k, 322, 96, 1]).
  """
  drop, overlap = window_settings(stage)
  for index, path in enumerate(paths):
    if index in skip:
      continue
    stream = streaming.WindowStream(path, drop=drop, overlap=overlap,
                                    frontend=data.frontend)
    for windows in stream:
      yield index, ((windows - data.mean) / data.std)[..., None]
    if report is not None:
      report.audio.setdefault(index, stream.info)


def text_input(data: FeatureData, reviews: str,
               report: Optional[InputReport] = None) -> np.ndarray:
  """tf-idf of the review text, float32 [1, V].

  Raises:
    TaggingError: the text is empty.
  """
  text = text_features.aggregate_reviews([reviews])
  if not text.strip():
    raise errors.TaggingError('the review text is empty.')
  if data.enrichment:
    text = text_features.enrich(text, data.enrichment)
  x = data.vectorizer.transform([text]).toarray().astype(np.float32)
  if report is not None and not x.any():
    report.other.append((REVIEWS, "no word of the model's vocabulary "
                         '(the tf-idf vector is all zeros)'))
  return x


def image_input(data: FeatureData, cover,
                report: Optional[InputReport] = None) -> np.ndarray:
  """A cover as the network sees it, float32 [1, C, C, 3].

  The cover as prepare stored it, then evaluation's centre crop
  (features.image.evaluation_cover), so a tagged cover is exactly the
  network's test input.

  Raises:
    FeatureError: the file is missing or not an image.
  """
  image = image_features.evaluation_cover(
      cover, crop_size=data.image_size, stored_side=data.stored_image_size)
  if report is not None:
    _check_cover_size(cover, data.image_size, report)
  return ((image.astype(np.float32) / 255.0 - data.image_mean) /
          data.image_std)[None].astype(np.float32)


def _check_cover_size(cover, size: int, report: InputReport) -> None:
  """Warns when load_image had to enlarge the cover (a blurry input)."""
  with Image.open(cover) as image:  # Reads the header only.
    width, height = image.size
  # evaluation_cover resizes the shorter side to this (the stored side)
  # before its centre crop.
  short = image_features.stored_size(size)
  if min(width, height) < short:
    report.other.append((os.fspath(cover), f'upscaled from {width} x '
                         f'{height} px (its shorter side is resized to '
                         f'{short} px)'))

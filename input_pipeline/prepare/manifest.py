"""The manifest of a `mmgenre prepare` run (docs/data_formats.md §3).

`build` assembles it from what the run wrote (job.py writes it last, so a
run is complete when it exists); `summary` is its table for the terminal.
"""

import datetime
import importlib.metadata
import platform
from typing import Any, Dict

from input_pipeline import layout
from input_pipeline.features import audio as audio_lib
from input_pipeline.features import frontends
from input_pipeline.features import image as image_lib
from input_pipeline.formats import msdi
from input_pipeline.prepare import split_choice
from input_pipeline.records import tfrecord

# Bumped when the manifest or record layout changes (2: audio_windows; 3:
# covers stored at stored_image_size, larger than the image_size crop).
MANIFEST_VERSION = 3
STAGES = ('metadata', 'reviews', 'labels', 'audio', 'image', 'text')
# (frames, bins) of an audio patch or window (Sec 3.1).
PATCH_SHAPE = (audio_lib.PATCH_FRAMES, audio_lib.N_BINS)


def versions() -> Dict[str, str]:
  versions = {'python': platform.python_version()}
  for package in ('mmgenre_jax', 'numpy', 'tensorflow', 'tensorflow-cpu',
                  'librosa', 'soundfile', 'scikit-learn', 'pillow'):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      pass
  return versions


def build(dataset: str, corpus, specs, results, skips, omitted,
          stats_count: int, fractions, *, image_size: int, windows: bool,
          splits: str, seed: int, args: Dict[str, Any]) -> Dict[str, Any]:
  """The manifest of a finished run (docs/data_formats.md §3), no elapsed_s.

  `frontend` names the audio front end that computed the patches and
  windows (input_pipeline.features.frontends; args['frontend']): a model
  trained on these shards is fed by it only.
  """
  modalities = {}
  for modality, result in results.items():
    modalities[modality] = {
        'features': tfrecord.specs_to_json(specs[modality]),
        'counts': result.counts,
        'shards': result.shards,
    }
  return {
      'format_version': MANIFEST_VERSION,
      'complete': True,
      'dataset': dataset,
      'labels': list(corpus.labels),
      'num_labels': len(corpus.labels),
      'label_type': ('multi_hot' if dataset in tfrecord.ALBUM_DATASETS
                     else 'index'),
      # The network's input crop C, and the side S of the stored covers it
      # is cropped from (input_pipeline.records.shard_reader).
      'image_size': image_size,
      'stored_image_size': image_lib.stored_size(image_size),
      'patch_shape': list(PATCH_SHAPE),
      frontends.MANIFEST_KEY: args['frontend'],
      'audio_windows': ({'drop': audio_lib.WINDOW_DROP,
                         'overlap': audio_lib.WINDOW_OVERLAP,
                         'frames': audio_lib.PATCH_FRAMES}
                        if tfrecord.AUDIO_WINDOWS in specs else None),
      'vocab_size': results['text'].vocab_size if 'text' in results else None,
      'image_mean': [float(v) for v in image_lib.IMAGENET_MEAN],
      'image_std': [float(v) for v in image_lib.IMAGENET_STD],
      'splits_dir': layout.SPLITS_DIR,
      'splits_source': (corpus.splits_source or
                        split_choice.splits_source(splits)),
      'splits_from': corpus.splits_from or splits_from(corpus, splits, seed),
      'split_sizes': {name: len(ids) for name, ids in corpus.splits.items()},
      # Only with a track-level set: every other run's manifest keeps its
      # keys.
      **({'track_split_sizes': {name: len(ids) for name, ids in
                                corpus.track_splits.items()}}
         if corpus.track_splits else {}),
      'audio_stats': layout.AUDIO_STATS_NPZ if 'audio' in results else None,
      'audio_stats_count': stats_count,
      'text_vectorizer': (layout.TEXT_VECTORIZER_JSON if 'text' in results
                          else None),
      'modalities': modalities,
      'omitted_modalities': omitted,
      'metadata': {'file': corpus.metadata_file,
                   'counts': corpus.metadata},
      'skipped': {stage: skips.count(stage) for stage in STAGES},
      'skipped_file': layout.SKIPPED_TSV,
      'skip_fractions': {kind: round(n / read, 6) if read else 0.0
                         for kind, (n, read) in fractions.items()},
      'versions': versions(),
      'args': args,
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
  }


def splits_from(corpus, splits: str, seed: int) -> str:
  """The manifest's `splits_from`: what the splits_source was read from."""
  if splits == split_choice.RELEASE_SPLITS:
    column = 'split' if corpus.dataset == 'catalog' else msdi.SET_COLUMN
    return f'{corpus.metadata_file}, column {column!r}'
  if splits == split_choice.COMPUTED_SPLITS:
    return f'artist-filtered, seed {seed}'
  return splits


def summary(manifest: Dict[str, Any]) -> str:
  """A table of written/skipped items per modality and split.

  First the release file: its rows, its albums (MSD-I: tracks) and the
  review lines, where `written` is what was kept (albums / tracks: those in
  the splits); then every record kind and split.
  """
  lines = [f'{manifest["dataset"]}: {manifest["num_labels"]} labels, '
           f'{manifest.get("splits_source", "")} splits '
           f'{manifest["split_sizes"]}, '
           f'{manifest["elapsed_s"]:.1f} s']
  lines.append(f'{"modality":<13} {"split":<6} {"read":>7} {"written":>8} '
               f'{"skipped":>8} {"records":>8} {"shards":>7}')
  metadata = manifest.get('metadata', {}).get('counts', {})
  for kind, c in metadata.items():
    stage, what = (('reviews', 'lines') if kind == 'review_lines' else
                   ('metadata', kind))
    lines.append(f'{stage:<13} {what:<6} {c["read"]:>7} {c["kept"]:>8} '
                 f'{c["skipped"]:>8}')
  for modality, entry in manifest['modalities'].items():
    for split, c in entry['counts'].items():
      lines.append(f'{modality:<13} {split:<6} {c["read"]:>7} '
                   f'{c["written"]:>8} {c["skipped"]:>8} '
                   f'{c.get("records", c["written"]):>8} '
                   f'{len(entry["shards"][split]):>7}')
  skipped = {k: v for k, v in manifest['skipped'].items() if v}
  lines.append(f'skipped: {skipped or "none"}'
               + (f' (reasons in {manifest["skipped_file"]})'
                  if skipped else ''))
  return '\n'.join(lines)

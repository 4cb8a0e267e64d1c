"""input_pipeline.records.shard_reader on shards of a tiny synthetic corpus."""

import collections
import json

import numpy as np
import pytest

from input_pipeline.records import augment as augment_lib
from input_pipeline import layout
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.records import shard_reader
from input_pipeline.prepare import job as prepare_job
from input_pipeline.records import tfrecord
from input_pipeline.features import image as image_features

IMAGE_SIZE = 32


@pytest.fixture(scope='module')
def corpus(synthetic_corpus):
  # conftest's, shared with tests/input_pipeline/tfds/tfds_test.py.
  return synthetic_corpus


@pytest.fixture(scope='module')
def shards(corpus, tmp_path_factory):
  out = tmp_path_factory.mktemp('shards')
  # Small shards: the train split spans several files for process sharding.
  prepare_job.prepare(
      'mumu', corpus, out,
      prepare_job.Settings(image_size=IMAGE_SIZE, shard_size=4, workers=1),
      progress=False)
  return out


def _raw(shards, modality, split):
  manifest = shard_reader.load_manifest(shards)
  entry = manifest['modalities'][modality]
  specs = tfrecord.specs_from_json(entry['features'])
  paths = [shards / s['file'] for s in entry['shards'][split]]
  return [tfrecord.decode_example(r, specs)
          for r in tfrecord.read_records(paths)]


def _all(ds):
  batches = list(shard_reader.as_numpy_batches(ds))
  return {key: np.concatenate([b[key] for b in batches])
          for key in batches[0]}, batches


def test_audio_batches_are_standardised_with_labels(shards, corpus):
  manifest = shard_reader.load_manifest(shards)
  ds = shard_reader.make_dataset(shards, 'audio', 'train', batch_size=4,
                             process_index=0, process_count=1)
  got, batches = _all(ds)
  raw = _raw(shards, 'audio', 'train')
  n, frames, bins = len(raw), *manifest['patch_shape']
  assert got['patch'].shape == (n, frames, bins, 1)
  assert got['patch'].dtype == np.float32
  assert batches[0]['patch'].shape == (4, frames, bins, 1)
  with np.load(shards / layout.AUDIO_STATS_NPZ) as stats:
    mean, std = stats['mean'], stats['std']
  std = np.where(std < shard_reader.STD_FLOOR, 1, std)
  want = (np.stack([r['patch'] for r in raw]) - mean) / std
  np.testing.assert_allclose(got['patch'][..., 0], want, rtol=1e-5,
                             atol=1e-5)
  # Standardised with train statistics: train patches have mean ~0, std ~1
  # in every cell that varies.
  np.testing.assert_allclose(got['patch'].mean(0), 0, atol=1e-3)
  assert got['track_id'].tolist() == [r['track_id'] for r in raw]
  assert got['album_id'].tolist() == [r['album_id'] for r in raw]
  assert np.all(got['mask'] == 1)

  dataset = mumu.load_mumu(corpus / 'MuMu_dataset_multi-label.csv',
                           labels_path=corpus / 'genre_labels_MuMu.tsv',
                           taxonomy_path=corpus / 'genre_taxonomy.tsv')
  assert manifest['labels'] == list(dataset.labels)
  assert got['labels'].dtype == np.float32
  np.testing.assert_array_equal(got['labels'],
                                dataset.label_matrix(got['album_id']))


def test_audio_window_batches_for_whole_track_evaluation(shards):
  manifest = shard_reader.load_manifest(shards)
  raw = _raw(shards, 'audio_windows', 'train')
  n = len(raw)
  assert n == shard_reader.num_examples(shards, 'audio_windows', 'train',
                                    process_index=0, process_count=1)
  assert n == manifest['modalities']['audio_windows']['counts']['train'][
      'records']
  batch_size = 3 if n % 3 else 4
  make = lambda: shard_reader.make_dataset(
      shards, 'audio_windows', 'train', batch_size=batch_size,
      pad_final_batch=True, process_index=0, process_count=1)
  got, batches = _all(make())
  assert all(b['patch'].shape == (batch_size, 322, 96, 1) for b in batches)
  assert got['mask'].sum() == n and not got['mask'][n:].any()
  # Standardised like the audio patches, with the same training statistics.
  with np.load(shards / layout.AUDIO_STATS_NPZ) as stats:
    mean, std = stats['mean'], stats['std']
  std = np.where(std < shard_reader.STD_FLOOR, 1, std)
  want = (np.stack([r['patch'] for r in raw]) - mean) / std
  np.testing.assert_allclose(got['patch'][:n, ..., 0], want, rtol=1e-5,
                             atol=1e-5)
  assert not got['patch'][n:].any()
  # In the written order (deterministic), with the window keys as int32.
  assert got['track_id'][:n].tolist() == [r['track_id'] for r in raw]
  assert got['window'].dtype == np.int32
  assert got['window'][:n].tolist() == [int(r['window']) for r in raw]
  assert got['num_windows'][:n].tolist() == [int(r['num_windows'])
                                             for r in raw]
  assert _same(make(), got)
  # Labels as for the track's audio record; one window row per window.
  audio, _ = _all(shard_reader.make_dataset(shards, 'audio', 'train',
                                        batch_size=64, process_index=0,
                                        process_count=1))
  labels = dict(zip(audio['track_id'], audio['labels']))
  for track, row in zip(got['track_id'][:n], got['labels'][:n]):
    np.testing.assert_array_equal(row, labels[track])
  assert sorted(set(got['track_id'][:n])) == sorted(audio['track_id'])

  # Processes read disjoint shards holding whole tracks.
  files = manifest['modalities']['audio_windows']['shards']['train']
  assert len(files) >= 2
  seen = []
  for index in range(2):
    part, _ = _all(shard_reader.make_dataset(
        shards, 'audio_windows', 'train', batch_size=8, process_index=index,
        process_count=2))
    seen.append(collections.Counter(part['track_id']))
    assert len(part['track_id']) == shard_reader.num_examples(
        shards, 'audio_windows', 'train', process_index=index,
        process_count=2)
    for track, count in seen[-1].items():
      assert count == part['num_windows'][part['track_id'] == track][0]
  assert not set(seen[0]) & set(seen[1])


def _same(ds, got):
  again, _ = _all(ds)
  return all(np.array_equal(again[key], got[key]) for key in got)


def test_missing_windows_error_says_how_to_fix(shards, tmp_path):
  manifest = shard_reader.load_manifest(shards)
  del manifest['modalities']['audio_windows']
  manifest['omitted_modalities'] = {
      'audio_windows': 'prepared with --no-windows'}
  (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
  with pytest.raises(shard_reader.ManifestError) as info:
    shard_reader.make_dataset(tmp_path, 'audio_windows', 'val', batch_size=2,
                          process_index=0, process_count=1)
  message = str(info.value)
  assert str(tmp_path) in message
  assert 'prepared with --no-windows' in message
  assert 'mmgenre prepare' in message and 'without --no-windows' in message
  # Shards from before audio_windows existed: the same advice.
  del manifest['omitted_modalities']
  (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
  with pytest.raises(shard_reader.ManifestError, match='without --no-windows'):
    shard_reader.num_examples(tmp_path, 'audio_windows', 'val', process_index=0,
                          process_count=1)


def _pixels(images, manifest):
  """ImageNet-standardised batch images back on [0, 1]."""
  return (images * np.asarray(manifest['image_std']) +
          np.asarray(manifest['image_mean']))


def _augmented(shards, seed, image_augment=None):
  """The first two training batches (shuffled, augmented) of a seed."""
  ds = shard_reader.make_dataset(shards, 'image', 'train', batch_size=64,
                             shuffle=True, seed=seed, repeat=True,
                             image_augment=image_augment, process_index=0,
                             process_count=1)
  it = shard_reader.as_numpy_batches(ds)
  return next(it), next(it)


def test_image_and_text_batches(shards):
  manifest = shard_reader.load_manifest(shards)
  stored = image_features.stored_size(IMAGE_SIZE)
  assert (manifest['image_size'], manifest['stored_image_size']) == (
      IMAGE_SIZE, stored) == shard_reader.image_sizes(manifest)
  ds = shard_reader.make_dataset(shards, 'image', 'train', batch_size=3,
                             process_index=0, process_count=1)
  got, _ = _all(ds)
  raw = _raw(shards, 'image', 'train')
  assert raw[0]['image'].shape == (stored, stored, 3)
  assert got['image'].shape == (len(raw), IMAGE_SIZE, IMAGE_SIZE, 3)
  # Evaluation: the centre crop of the stored cover.
  want = image_features.normalize_image(np.stack(
      [image_features.centre_crop(r['image'], IMAGE_SIZE) for r in raw]))
  np.testing.assert_allclose(got['image'], want, atol=1e-5)

  # Training augmentation: seeded, new every epoch, on [0, 1] pixels.
  first, second = _augmented(shards, seed=3)
  again, _ = _augmented(shards, seed=3)
  np.testing.assert_array_equal(first['image'], again['image'])
  assert first['album_id'].tolist() == again['album_id'].tolist()
  assert first['image'].shape == (64, IMAGE_SIZE, IMAGE_SIZE, 3)
  pixels = _pixels(first['image'], manifest)
  assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
  assert not np.allclose(first['image'][:len(raw)], want)
  assert sorted(first['album_id'][:len(raw)]) == sorted(got['album_id'])
  assert not np.array_equal(first['image'], second['image'])

  ds = shard_reader.make_dataset(shards, 'text', 'train', batch_size=5,
                             process_index=0, process_count=1)
  got, _ = _all(ds)
  raw = _raw(shards, 'text', 'train')
  assert got['tfidf'].shape == (len(raw), manifest['vocab_size'])
  for row, record in zip(got['tfidf'], raw):
    assert np.flatnonzero(row).tolist() == record['tfidf_indices'].tolist()
    np.testing.assert_allclose(row[record['tfidf_indices']],
                               record['tfidf_values'])


# Every distortion off: the training view is the whole stored cover resized.
NO_AUGMENT = {'crop_area': (1.0, 1.0), 'crop_aspect': (1.0, 1.0),
              'brightness': 0.0, 'contrast': 0.0, 'saturation': 0.0,
              'lighting': 0.0, 'flip': False}


def test_training_view_without_distortions_is_the_resized_cover(shards):
  tf = shard_reader.tf
  manifest = shard_reader.load_manifest(shards)
  raw = {r['album_id']: r['image'] for r in _raw(shards, 'image', 'train')}
  batch, _ = _augmented(shards, seed=0, image_augment=NO_AUGMENT)
  for album_id, image in zip(batch['album_id'][:len(raw)],
                             batch['image'][:len(raw)]):
    want = tf.image.resize(raw[album_id].astype(np.float32) / 255.0,
                           (IMAGE_SIZE, IMAGE_SIZE), method='bilinear',
                           antialias=True).numpy()
    np.testing.assert_allclose(_pixels(image, manifest), want, atol=1e-5)


def _augment(image, seed, **settings):
  tf = shard_reader.tf
  augment = augment_lib.ImageAugment.from_mapping({**NO_AUGMENT, **settings})
  return augment_lib.augment_image(
      tf.constant(image, tf.float32), tf.constant([seed, 7], tf.int64),
      image.shape[0], augment).numpy()


def test_random_resized_crops_and_photometric_distortions():
  rng = np.random.default_rng(0)
  image = rng.uniform(0.2, 0.8, (24, 24, 3)).astype(np.float32)
  # Random-resized crops of the paper (Szegedy et al.): new per seed, the
  # requested size, pixels on [0, 1].
  crops = [_augment(image, seed, crop_area=(0.08, 1.0),
                    crop_aspect=(3 / 4, 4 / 3)) for seed in range(3)]
  for crop in crops:
    assert crop.shape == (24, 24, 3) and crop.dtype == np.float32
    assert 0.0 <= crop.min() and crop.max() <= 1.0
  assert not np.allclose(crops[0], crops[1])
  # Brightness scales every pixel by one factor in [1 - b, 1 + b].
  grey = np.full((8, 8, 3), 0.5, np.float32)
  factors = {float(_augment(grey, seed, brightness=0.4)[0, 0, 0]) / 0.5
             for seed in range(4)}
  assert len(factors) == 4 and all(0.6 <= f <= 1.4 for f in factors)
  bright = _augment(grey, 1, brightness=0.4)
  np.testing.assert_allclose(bright, bright[0, 0, 0], atol=1e-6)
  # Saturation and contrast leave a uniform grey image alone.
  np.testing.assert_allclose(
      _augment(grey, 2, saturation=0.4, contrast=0.4), grey, atol=1e-6)
  # Saturation 0.4 on a colour image changes its colours, not its luma.
  colour = _augment(image, 3, saturation=0.4)
  luma = np.asarray(augment_lib.LUMA_WEIGHTS)
  assert not np.allclose(colour, image)
  np.testing.assert_allclose(colour @ luma, image @ luma, atol=1e-5)
  # PCA lighting noise adds one RGB offset to every pixel.
  lit = _augment(grey, 4, lighting=0.1)
  offset = lit - grey
  np.testing.assert_allclose(offset, np.broadcast_to(offset[:1, :1],
                                                     offset.shape), atol=1e-6)
  assert 0 < np.abs(offset).max() < 0.2
  # Flips mirror the columns (one seed of each outcome among a few).
  flips = [_augment(image, seed, flip=True) for seed in range(6)]
  assert any(np.allclose(f, image[:, ::-1]) for f in flips)
  assert any(np.allclose(f, image) for f in flips)


def test_image_augment_settings_are_checked():
  assert augment_lib.ImageAugment.from_mapping(None) == augment_lib.ImageAugment()
  with pytest.raises(ValueError, match='hue'):
    augment_lib.ImageAugment.from_mapping({'hue': 0.1})
  with pytest.raises(ValueError, match='crop_area'):
    augment_lib.ImageAugment.from_mapping({'crop_area': (0.0, 1.0)})
  with pytest.raises(ValueError, match='brightness'):
    augment_lib.ImageAugment.from_mapping({'brightness': 1.5})


def test_evaluation_and_tagging_take_the_same_centre_crop(shards, corpus):
  manifest = shard_reader.load_manifest(shards)
  ds = shard_reader.make_dataset(shards, 'image', 'test', batch_size=8,
                             process_index=0, process_count=1)
  got, _ = _all(ds)
  for album_id, image in zip(got['album_id'], got['image']):
    path, = (corpus / 'covers').glob(f'{album_id}.*')
    cover = image_features.evaluation_cover(
        path, crop_size=IMAGE_SIZE,
        stored_side=manifest['stored_image_size'])
    np.testing.assert_allclose(
        image, image_features.normalize_image(cover), atol=1e-5)


def test_shards_with_covers_stored_at_the_crop_size_still_work(shards,
                                                               tmp_path):
  # Shards from before stored_image_size: covers stored at the crop size.
  tf = shard_reader.tf
  manifest = shard_reader.load_manifest(shards)
  entry = manifest['modalities']['image']
  old_specs = tfrecord.specs_from_json(entry['features'])
  old_specs['image'] = tfrecord.FeatureSpec('uint8',
                                            (IMAGE_SIZE, IMAGE_SIZE, 3))
  crops = {}
  for split, listed in entry['shards'].items():
    for shard in listed:
      records = [tfrecord.decode_example(r, tfrecord.specs_from_json(
          entry['features'])) for r in tfrecord.read_records(
              [shards / shard['file']])]
      out = tmp_path / shard['file']
      out.parent.mkdir(parents=True, exist_ok=True)
      with tf.io.TFRecordWriter(str(out)) as writer:
        for record in records:
          record['image'] = image_features.centre_crop(record['image'],
                                                       IMAGE_SIZE)
          crops[record['album_id']] = record['image']
          writer.write(tfrecord.encode_example(record, old_specs))
  del manifest['stored_image_size']
  entry['features'] = tfrecord.specs_to_json(old_specs)
  manifest['modalities'] = {'image': entry}
  (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
  assert shard_reader.image_sizes(manifest) == (IMAGE_SIZE, IMAGE_SIZE)
  ds = shard_reader.make_dataset(tmp_path, 'image', 'train', batch_size=4,
                             process_index=0, process_count=1)
  got, _ = _all(ds)
  # The centre crop of a cover stored at the crop size is the cover.
  for album_id, image in zip(got['album_id'], got['image']):
    np.testing.assert_allclose(
        image, image_features.normalize_image(crops[album_id]), atol=1e-5)
  batch, _ = _augmented(tmp_path, seed=1)
  assert batch['image'].shape == (64, IMAGE_SIZE, IMAGE_SIZE, 3)
  pixels = _pixels(batch['image'], manifest)
  assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def test_process_sharding_is_disjoint_and_complete(shards):
  manifest = shard_reader.load_manifest(shards)
  files = manifest['modalities']['audio']['shards']['train']
  assert len(files) >= 2
  seen = []
  for index in range(2):
    ds = shard_reader.make_dataset(shards, 'audio', 'train', batch_size=8,
                               process_index=index, process_count=2)
    ids, _ = _all(ds)
    seen.append(ids['track_id'].tolist())
    assert len(seen[-1]) == shard_reader.num_examples(
        shards, 'audio', 'train', process_index=index, process_count=2)
  assert not set(seen[0]) & set(seen[1])
  everything = [r['track_id'] for r in _raw(shards, 'audio', 'train')]
  assert sorted(seen[0] + seen[1]) == sorted(everything)
  with pytest.raises(ValueError, match='smaller --shard-size'):
    shard_reader.make_dataset(shards, 'audio', 'train', batch_size=8,
                          process_index=len(files), process_count=len(files)
                          + 1)


def test_padding_mask(shards):
  n = shard_reader.num_examples(shards, 'text', 'train', process_index=0,
                            process_count=1)
  batch_size = n - 1 if n > 2 else n + 1
  ds = shard_reader.make_dataset(shards, 'text', 'train', batch_size=batch_size,
                             pad_final_batch=True, process_index=0,
                             process_count=1)
  assert ds.element_spec['tfidf'].shape[0] == batch_size
  batches = list(shard_reader.as_numpy_batches(ds))
  assert all(b['tfidf'].shape[0] == batch_size for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  assert mask.sum() == n
  assert mask[:n].tolist() == [1.0] * n and not mask[n:].any()
  last = batches[-1]
  pad = last['mask'] == 0
  assert pad.any()
  assert not last['tfidf'][pad].any() and not last['labels'][pad].any()
  assert set(last['album_id'][pad]) == {''}

  plain = list(shard_reader.as_numpy_batches(shard_reader.make_dataset(
      shards, 'text', 'train', batch_size=batch_size, process_index=0,
      process_count=1)))
  assert sum(len(b['mask']) for b in plain) == n
  assert all(b['mask'].all() for b in plain)
  dropped = list(shard_reader.as_numpy_batches(shard_reader.make_dataset(
      shards, 'text', 'train', batch_size=batch_size, drop_remainder=True,
      process_index=0, process_count=1)))
  assert sum(len(b['mask']) for b in dropped) == (n // batch_size) * (
      batch_size)


def test_manifest_errors_are_clear(shards, tmp_path):
  with pytest.raises(shard_reader.ManifestError, match='mmgenre prepare'):
    shard_reader.load_manifest(tmp_path)
  manifest = shard_reader.load_manifest(shards)
  (tmp_path / 'manifest.json').write_text(json.dumps(
      {**manifest, 'complete': False}))
  with pytest.raises(shard_reader.ManifestError, match='incomplete'):
    shard_reader.load_manifest(tmp_path)
  (tmp_path / 'manifest.json').write_text('{"dataset": "mumu"}')
  with pytest.raises(shard_reader.ManifestError, match='lacks the keys'):
    shard_reader.load_manifest(tmp_path)
  (tmp_path / 'manifest.json').write_text('{"dataset": ')
  with pytest.raises(shard_reader.ManifestError, match='not valid JSON'):
    shard_reader.load_manifest(tmp_path)
  with pytest.raises(ValueError, match="no 'audio' split 'dev'"):
    shard_reader.make_dataset(shards, 'audio', 'dev', batch_size=2,
                          process_index=0, process_count=1)
  assert shard_reader.verify_shards(shards) == sum(
      len(s) for e in manifest['modalities'].values()
      for s in e['shards'].values())


def test_msdi_labels_are_class_indices(corpus, tmp_path):
  out = tmp_path / 'msdi'
  manifest = prepare_job.prepare(
      'msdi', corpus, out, prepare_job.Settings(image_size=IMAGE_SIZE,
                                                workers=1), progress=False)
  ds = shard_reader.make_dataset(out, 'image', 'train', batch_size=16,
                             process_index=0, process_count=1)
  got, _ = _all(ds)
  assert got['labels'].dtype == np.int32 and got['labels'].ndim == 1
  tracks = msdi.load_msdi(corpus / 'MSD-I_dataset.tsv').tracks
  want = [manifest['labels'].index(tracks[t].genre) for t in got['track_id']]
  assert got['labels'].tolist() == want
  assert got['album_id'].tolist() == [tracks[t].album_index
                                      for t in got['track_id']]
  # MSD-I has whole-track windows too, with the track's class index.
  windows, _ = _all(shard_reader.make_dataset(
      out, 'audio_windows', 'train', batch_size=4, pad_final_batch=True,
      process_index=0, process_count=1))
  n = shard_reader.num_examples(out, 'audio_windows', 'train', process_index=0,
                            process_count=1)
  assert n == int(windows['mask'].sum()) > 0
  assert windows['labels'].dtype == np.int32
  assert windows['labels'][:n].tolist() == [
      manifest['labels'].index(tracks[t].genre)
      for t in windows['track_id'][:n]]

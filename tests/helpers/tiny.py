"""Tiny MuMu audio shards and the trainer config the tests share."""

import pathlib

# ------------------------------------------------- tiny audio shards (train)
# One tiny set of MuMu audio shards (written directly with
# input_pipeline.records.tfrecord, in the layout of `mmgenre prepare`) serves
# the trainer tests (tests/mmgenre_jax/train/loop_test.py,
# tests/mmgenre_jax/data/representations_test.py).

TINY_PATCH_SHAPE = (322, 96)
TINY_LABELS = ('Rock', 'Indie Rock', 'Jazz', 'Vocal Jazz', 'Pop', 'Dance Pop')
# Albums per split; two tracks each. Album a has genre a % 3 (labels 2g and,
# for odd albums, the sub-genre 2g + 1), so every split has each label on
# some but not all items.
TINY_ALBUMS = {'train': 8, 'val': 4, 'test': 6}
TINY_TRACKS_PER_ALBUM = 2


def tiny_num_windows(album: int, track: int) -> int:
  """Whole-track windows of a tiny track: 1 to 3, so averages differ."""
  return 1 + (album + track) % 3


def write_tiny_audio_shards(out: pathlib.Path,
                            windows: bool = True) -> pathlib.Path:
  """Writes tiny MuMu audio (+ audio_windows) shards and their manifest."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from input_pipeline.records import shard_reader
  from input_pipeline import fileio
  from input_pipeline.records import tfrecord
  # pylint: enable=g-import-not-at-top
  rng = np.random.default_rng(0)
  specs = tfrecord.feature_specs('mumu', 'audio',
                                 patch_shape=TINY_PATCH_SHAPE)
  window_specs = tfrecord.feature_specs('mumu', tfrecord.AUDIO_WINDOWS,
                                        patch_shape=TINY_PATCH_SHAPE)
  entries = {'audio': ({}, {}), tfrecord.AUDIO_WINDOWS: ({}, {})}
  train_patches = []
  for split, num_albums in TINY_ALBUMS.items():
    track_records, window_groups = [], []
    for a in range(num_albums):
      genre = a % 3
      labels = [2 * genre] + ([2 * genre + 1] if a % 2 else [])
      for t in range(TINY_TRACKS_PER_ALBUM):
        ids = {'track_id': f'TR{split}{a}{t}', 'album_id': f'AL{split}{a}'}
        group = []
        count = tiny_num_windows(a, t)
        for w in range(count):
          # Each genre has its own frequency band, so the network can learn.
          patch = rng.normal(-40.0, 5.0, TINY_PATCH_SHAPE).astype(np.float32)
          patch[:, 30 * genre:30 * genre + 20] += 20.0
          if w == 0:
            # The training patch is the track's first window.
            if split == 'train':
              train_patches.append(patch)
            track_records.append(tfrecord.encode_example(
                {**ids, 'patch': patch, 'labels': labels}, specs))
          group.append(tfrecord.encode_example(
              {**ids, 'window': w, 'num_windows': count, 'patch': patch,
               'labels': labels}, window_specs))
        window_groups.append(group)
    with tfrecord.ShardedWriter(out / 'audio', split, shard_size=4) as w:
      for record in track_records:
        w.write(record)
    entries['audio'][0][split] = [s.to_json() for s in w.shards]
    n = len(track_records)
    entries['audio'][1][split] = {'read': n, 'written': n, 'skipped': 0}
    if windows:
      with tfrecord.ShardedWriter(out / tfrecord.AUDIO_WINDOWS, split,
                                  shard_size=6) as w:
        for group in window_groups:
          w.write_group(group)
      entries[tfrecord.AUDIO_WINDOWS][0][split] = [
          s.to_json() for s in w.shards]
      n = sum(len(g) for g in window_groups)
      entries[tfrecord.AUDIO_WINDOWS][1][split] = {
          'read': n, 'written': n, 'skipped': 0}
  stack = np.stack(train_patches)
  np.savez(out / 'audio_stats.npz', mean=stack.mean(0), std=stack.std(0),
           count=np.int64(len(stack)))
  modalities = {'audio': {'features': tfrecord.specs_to_json(specs),
                          'counts': entries['audio'][1],
                          'shards': entries['audio'][0]}}
  if windows:
    modalities[tfrecord.AUDIO_WINDOWS] = {
        'features': tfrecord.specs_to_json(window_specs),
        'counts': entries[tfrecord.AUDIO_WINDOWS][1],
        'shards': entries[tfrecord.AUDIO_WINDOWS][0]}
  manifest = {
      'format_version': 2, 'complete': True, 'dataset': 'mumu',
      'labels': list(TINY_LABELS), 'num_labels': len(TINY_LABELS),
      'label_type': 'multi_hot', 'image_size': 32,
      'patch_shape': list(TINY_PATCH_SHAPE), 'vocab_size': None,
      'audio_stats': 'audio_stats.npz', 'modalities': modalities,
      'omitted_modalities': ({} if windows else
                             {tfrecord.AUDIO_WINDOWS: 'test without'}),
  }
  fileio.write_json_atomic(out / shard_reader.MANIFEST, manifest)
  return out


# Global batch of the trainer tests (divisible by 8 simulated devices).
TINY_BATCH = 8


def tiny_train_config(shard_dir, **train_overrides):
  """configs/test.py on the tiny shards, batch TINY_BATCH."""
  # pylint: disable=g-import-not-at-top
  from configs import test as test_config
  # pylint: enable=g-import-not-at-top
  config = test_config.get_config()
  config.data.shard_dir = str(shard_dir)
  config.train.batch_size = TINY_BATCH
  config.eval.batch_size = TINY_BATCH
  for key, value in train_overrides.items():
    config.train[key] = value
  return config


def latest_params(config, workdir):
  """(params, step, checkpoints.Progress) of a workdir's latest checkpoint."""
  # pylint: disable=g-import-not-at-top
  import jax
  from mmgenre_jax.train import checkpoints
  from mmgenre_jax.train import setup
  from mmgenre_jax.train import train_state
  # pylint: enable=g-import-not-at-top
  stage = setup.setup(config, workdir)
  latest, best = checkpoints.managers(workdir, read_only=True)
  state, progress = checkpoints.restore(
      latest, latest.latest_step(),
      train_state.abstract_train_state(config, stage.model, stage.mesh,
                                       facts=stage.facts))
  latest.close()
  best.close()
  return jax.device_get(state.params), int(state.step), progress



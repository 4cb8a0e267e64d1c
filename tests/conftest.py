"""Shared pytest set-up: CPU only, quiet TensorFlow, a small synthetic corpus."""

import os

# Before any import of TF/JAX: keep TF off GPUs and quiet; JAX on the CPU.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import pathlib  # noqa: E402

import pytest  # noqa: E402

# Copies of the genuine MuMu release files (see data/mumu/PROVENANCE.md).
MUMU_RELEASE_DIR = pathlib.Path(__file__).resolve().parent / 'data' / 'mumu'


@pytest.fixture(scope='session')
def mumu_release_dir() -> pathlib.Path:
  """The genuine MuMu release files shipped beside the project."""
  if not (MUMU_RELEASE_DIR / 'MuMu_dataset_single-label.csv').exists():
    raise FileNotFoundError(
        f'Genuine MuMu release files not found in {MUMU_RELEASE_DIR}.')
  return MUMU_RELEASE_DIR


@pytest.fixture(scope='session')
def synthetic_corpus(tmp_path_factory) -> pathlib.Path:
  """The 8-album synthetic corpus (seed 0), written once per session.

  Read-only: a test that changes a corpus makes its own.
  """
  # pylint: disable-next=g-import-not-at-top
  from input_pipeline import synthetic
  root = tmp_path_factory.mktemp('synthetic_corpus')
  synthetic.generate_corpus(root, num_albums=8, seed=0, workers=1,
                            progress=False)
  return root


# ------------------------------------------------- tiny audio shards (train)
# One tiny set of MuMu audio shards (written directly with
# input_pipeline.tfrecord, in the layout of `mmgenre prepare`) serves the
# trainer tests (train_test.py, representations_test.py).

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
  from input_pipeline import pipeline
  from input_pipeline import fileio
  from input_pipeline import tfrecord
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
  fileio.write_json_atomic(out / pipeline.MANIFEST, manifest)
  return out


@pytest.fixture(scope='session')
def shard_dir(tmp_path_factory) -> pathlib.Path:
  """Tiny MuMu audio shards with whole-track windows."""
  return write_tiny_audio_shards(tmp_path_factory.mktemp('shards'))


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
  """(params, step, checkpoint meta) of a workdir's latest checkpoint."""
  # pylint: disable=g-import-not-at-top
  import jax
  from mmgenre_jax import checkpoints
  from mmgenre_jax import train
  from mmgenre_jax import train_state
  # pylint: enable=g-import-not-at-top
  config, mesh, model, _ = train.setup(config, workdir)
  latest, best = checkpoints.managers(workdir, read_only=True)
  state, meta = checkpoints.restore(
      latest, latest.latest_step(),
      train_state.abstract_train_state(config, model, mesh))
  latest.close()
  best.close()
  return jax.device_get(state.params), int(state.step), meta


@pytest.fixture(scope='session')
def full_run(shard_dir, tmp_path_factory):
  """An uninterrupted 2-epoch tiny audio run: (workdir, test metrics)."""
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax import train
  # pylint: enable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp('full')
  return workdir, train.train_and_evaluate(tiny_train_config(shard_dir),
                                           workdir)


@pytest.fixture(scope='session')
def tagging_workdir(shard_dir, tmp_path_factory):
  """The tiny trained pipeline of tagging_test.py (audio, text and image
  networks, an alignment stage, two fusions), shared by the tagging tests
  so that it is trained once."""
  # pylint: disable-next=g-import-not-at-top
  import tagging_test
  return tagging_test.train_pipeline(shard_dir, tmp_path_factory)

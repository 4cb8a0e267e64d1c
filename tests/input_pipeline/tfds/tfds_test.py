"""Tests of the TFDS builders (input_pipeline/tfds) and the TFDS source.

The 8-album synthetic corpus of conftest is prepared with `mmgenre prepare`
(the reference shards, from the process pool). The mumu builder builds its
four configs from the corpus (one preparation of its own), mumu/text also
from the reference shards, and `mmgenre tfds` builds msdi/image from the
corpus with the Beam pipeline. Every dataset must hold the reference
shards' records: the same ids, labels and arrays, in the same order.
input_pipeline.tfds.reader must give the shard reader's batches, and a tiny
audio network trained from the TFDS datasets (--config.data.source=tfds) the
metrics and parameters of one trained from the shards.
"""

import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from helpers import tiny
import input_pipeline.tfds  # pylint: disable=unused-import  # Registers.
from input_pipeline import layout
from input_pipeline.records import shard_reader
from input_pipeline.prepare import job as prepare_job
from input_pipeline.tfds import reader as tfds_data
from input_pipeline.records import tfrecord
from input_pipeline.tfds import prepared
from mmgenre_jax import cli
from mmgenre_jax.data import sources as data_sources
from mmgenre_jax import errors
from mmgenre_jax.train import loop as train_loop

KINDS = ('audio', 'audio_windows', 'image', 'text')


@pytest.fixture(scope='module')
def mumu_shards(synthetic_corpus, tmp_path_factory):
  """The reference: `mmgenre prepare` of the corpus, default settings."""
  out = tmp_path_factory.mktemp('mumu_shards')
  prepare_job.prepare('mumu', synthetic_corpus, out,
                      prepare_job.Settings(workers=1), progress=False)
  return out


@pytest.fixture(scope='module')
def data_dir(synthetic_corpus, tmp_path_factory):
  """A TFDS data_dir with mumu's four configs, built from the corpus."""
  data_dir = tmp_path_factory.mktemp('tfds')
  download_config = tfds.download.DownloadConfig(
      manual_dir=os.fspath(synthetic_corpus))
  for kind in KINDS:
    tfds.builder(f'mumu/{kind}', data_dir=data_dir,
                 workers=1).download_and_prepare(
                     download_config=download_config)
  return data_dir


def _shard_records(shard_dir, kind, split):
  """The decoded records of one kind and split of the shards, in order."""
  entry = shard_reader.load_manifest(shard_dir)['modalities'][kind]
  specs = tfrecord.specs_from_json(entry['features'])
  return [tfrecord.decode_example(record, specs) for record in
          tfrecord.iter_records(shard_reader.shard_files(
              shard_dir, entry['shards'][split]))]


def _assert_same_examples(name, data_dir, shard_dir):
  """tfds.load(name) holds the shards' records of every split, in order."""
  kind = name.split('/')[1]
  builder = tfds.builder(name, data_dir=data_dir)
  assert sorted(builder.info.splits) == ['test', 'train', 'val']
  for split in builder.info.splits:
    want = _shard_records(shard_dir, kind, split)
    got = list(tfds.as_numpy(tfds.load(name, split=split,
                                       data_dir=data_dir)))
    assert len(got) == len(want) > 0, (name, split)
    for example, record in zip(got, want):
      assert sorted(example) == sorted(record)
      for key, value in record.items():
        if isinstance(value, str):
          assert example[key].decode('utf-8') == value, (name, key)
        else:
          assert example[key].dtype == value.dtype, (name, key)
          np.testing.assert_array_equal(example[key], value, err_msg=key)


def test_mumu_datasets_hold_the_records_of_the_shards(data_dir,
                                                      mumu_shards):
  for kind in KINDS:
    _assert_same_examples(f'mumu/{kind}', data_dir, mumu_shards)
  # The four configs were built from one preparation.
  cache = data_dir / 'downloads' / prepared.PREPARE_CACHE_DIR
  assert len(list(cache.iterdir())) == 1
  # The manifest and statistics the trainer needs travel with the data.
  shard_manifest = shard_reader.load_manifest(mumu_shards)
  builder = tfds.builder('mumu/text', data_dir=data_dir)
  manifest = builder.info.metadata[tfds_data.MANIFEST_KEY]
  assert manifest['labels'] == shard_manifest['labels']
  assert manifest['vocab_size'] == shard_manifest['vocab_size']
  assert list(manifest['modalities']) == ['text']
  assert 'shards' not in manifest['modalities']['text']
  for name in (layout.AUDIO_STATS_NPZ, layout.TEXT_VECTORIZER_JSON,
               layout.SKIPPED_TSV, 'splits/items_index_train.tsv'):
    assert ((builder.data_path / name).read_bytes() ==
            (mumu_shards / name).read_bytes()), name


@pytest.mark.parametrize('beam', [None, 'runner=DirectRunner,'
                                  'direct_num_workers=2,'
                                  'direct_running_mode=multi_threading'],
                         ids=['generator', 'beam'])
def test_mumu_built_from_prepared_shards(synthetic_corpus, tmp_path, beam):
  # Shards of 2 records (a setting the builder does not look at), so the
  # train split is several shards: with Beam, each is a task of its own.
  shards = tmp_path / 'shards'
  prepare_job.prepare('mumu', synthetic_corpus, shards,
                      prepare_job.Settings(workers=1, shard_size=2),
                      progress=False)
  entry = shard_reader.load_manifest(shards)['modalities']['text']
  assert len(entry['shards']['train']) > 2
  download_config = tfds.download.DownloadConfig(manual_dir=shards)
  builder = tfds.builder('mumu/text', data_dir=tmp_path / 'tfds',
                         beam_pipeline_options=beam)
  builder.download_and_prepare(download_config=download_config)
  _assert_same_examples('mumu/text', tmp_path / 'tfds', shards)
  assert not (tmp_path / 'tfds' / 'downloads' /
              prepared.PREPARE_CACHE_DIR).exists()
  # With Beam, TFDS wrote the examples with Beam too (its counter of the
  # records read), in the shards' order all the same.
  examples = sum(info.num_examples for info in builder.info.splits.values())
  assert builder.beam_examples == (None if beam is None else examples)


def test_msdi_built_with_beam(synthetic_corpus, tmp_path, capsys):
  shards = tmp_path / 'msdi_shards'  # The reference, from the pool.
  prepare_job.prepare('msdi', synthetic_corpus, shards,
                      prepare_job.Settings(workers=1), progress=False)
  data_dir = tmp_path / 'tfds'
  assert cli.main(['tfds', 'msdi/image', '--manual-dir',
                   str(synthetic_corpus), '--data-dir', str(data_dir),
                   '--beam_pipeline_options',
                   'runner=DirectRunner,direct_num_workers=1']) == 0
  assert 'msdi/image' in capsys.readouterr().out
  _assert_same_examples('msdi/image', data_dir, shards)
  cache, = (data_dir / 'downloads' / prepared.PREPARE_CACHE_DIR).iterdir()
  assert shard_reader.load_manifest(cache)['executor'] == 'beam:DirectRunner'
  # Single-label tracks: one genre index each.
  example = next(iter(tfds.as_numpy(tfds.load(
      'msdi/image', split='train', data_dir=data_dir))))
  assert example['labels'].shape == (1,)
  assert example['track_id'] and example['album_id']
  # Shards prepared with other settings than the config's are refused.
  other = prepared.PreparedConfig(name='image_32', kind='image',
                                  image_size=32)
  with pytest.raises(ValueError, match='prepared with image_size 224'):
    tfds.builder('msdi', config=other, data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=shards))
  # A manual dir that is neither a corpus nor shards is named.
  (tmp_path / 'empty' / 'x').mkdir(parents=True)
  assert cli.main(['tfds', 'msdi/audio', '--manual-dir',
                   str(tmp_path / 'empty'), '--data-dir',
                   str(data_dir)]) == 2
  assert 'MSD-I_dataset.tsv' in capsys.readouterr().err


@pytest.mark.parametrize('kind', ['audio_windows', 'image', 'text'])
def test_tfds_batches_are_the_shard_batches(data_dir, mumu_shards, kind):
  shards = shard_reader.ShardData(mumu_shards)
  data = tfds_data.TfdsData('mumu', data_dir)
  for shuffle in (False, True):  # Shuffled images are augmented too.
    want, got = [list(shard_reader.as_numpy_batches(source.make_dataset(
        kind, 'train', batch_size=4, shuffle=shuffle, seed=3,
        pad_final_batch=True, process_index=0, process_count=1)))
                 for source in (shards, data)]
    assert len(got) == len(want) > 0
    for batch, expected in zip(got, want):
      assert sorted(batch) == sorted(expected)
      for key in expected:
        np.testing.assert_array_equal(batch[key], expected[key],
                                      err_msg=f'{kind} {key}')


def test_tfds_processes_read_disjoint_shares(data_dir):
  data = tfds_data.TfdsData('mumu', data_dir)
  ids = []
  for index in range(2):
    ds = data.make_dataset('audio', 'train', batch_size=64,
                           process_index=index, process_count=2)
    part = np.concatenate([b['track_id']
                           for b in shard_reader.as_numpy_batches(ds)])
    assert len(part) == data.num_examples('audio', 'train',
                                          process_index=index,
                                          process_count=2)
    ids.append(part.tolist())
  assert not set(ids[0]) & set(ids[1])
  assert len(ids[0]) + len(ids[1]) == data.num_examples(
      'audio', 'train', process_index=0, process_count=1)


def test_tfds_source_errors_name_the_fix(tmp_path, data_dir):
  config = tiny.tiny_train_config('')
  config.data.source = 'tfds'
  config.data.tfds_data_dir = str(tmp_path)
  with pytest.raises(shard_reader.ManifestError, match='mmgenre tfds mumu'):
    data_sources.open_data(config)
  config.data.source = 'parquet'
  with pytest.raises(errors.ConfigError, match="'shards', 'tfds'"):
    data_sources.open_data(config)
  with pytest.raises(shard_reader.ManifestError, match='No msdi dataset'):
    tfds_data.TfdsData('msdi', data_dir=data_dir)
  with pytest.raises(ValueError, match='no split'):
    tfds_data.TfdsData('mumu', data_dir).num_examples('text', 'holdout')


@pytest.fixture
def fast_compile():
  """Less XLA optimisation: both trainings compile in a few seconds."""
  old = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', old)


def test_training_from_tfds_matches_training_from_shards(
    data_dir, mumu_shards, tmp_path, fast_compile):
  del fast_compile  # Used for its effect.
  reports, params = {}, {}
  for source in ('shards', 'tfds'):
    config = tiny.tiny_train_config(mumu_shards, num_epochs=1)
    config.data.source = source
    if source == 'tfds':
      config.data.shard_dir = ''  # Nothing is read from the shards.
      config.data.tfds_data_dir = str(data_dir)
    workdir = tmp_path / source
    reports[source] = train_loop.train_and_evaluate(config, workdir)
    params[source] = tiny.latest_params(config, workdir)[0]
  timing = ('epoch_s',)
  assert ({k: v for k, v in reports['tfds'].items() if k not in timing} ==
          {k: v for k, v in reports['shards'].items() if k not in timing})
  assert reports['tfds']['train_steps'] > 0
  # Album-level test metrics from the whole-track windows of mumu/audio_windows.
  assert reports['tfds']['aggregation'] == 'album_mean_of_track_scores'
  jax.tree_util.tree_map(np.testing.assert_array_equal, params['tfds'],
                         params['shards'])

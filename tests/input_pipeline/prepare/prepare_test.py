"""Tests of input_pipeline.records.tfrecord and input_pipeline.prepare.

A hand-made MuMu corpus with one defect of each kind checks the skip report
and the train-only statistics; the synthetic corpus checks the whole command.
"""

import collections
import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
import pytest

from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.records import shard_reader
from input_pipeline.prepare import job as prepare_job
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import release_items
from input_pipeline.prepare import workers as prepare_workers
from input_pipeline.formats import splits as splits_lib
from input_pipeline import synthetic
from input_pipeline.records import tfrecord
from input_pipeline.features import audio as audio_features
from input_pipeline.features import image as image_features
from input_pipeline.features import text as text_features
from mmgenre_jax import cli

from helpers import mumu_corpus

@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  root = tmp_path_factory.mktemp('corpus')
  split_dir = mumu_corpus.make_corpus(root)
  out = tmp_path_factory.mktemp('shards')
  manifest = prepare_job.prepare(
      'mumu', root, out,
      prepare_job.Settings(splits=split_dir, image_size=mumu_corpus.IMAGE_SIZE,
                           shard_size=2, workers=1,
                           max_skip_fraction=mumu_corpus.BUDGET),
      progress=False)
  return root, out, manifest


def test_shard_round_trip(tmp_path):
  specs = tfrecord.feature_specs('mumu', 'audio', patch_shape=(4, 3))
  rng = np.random.default_rng(1)
  written = [{'track_id': f'T{i}', 'album_id': f'Ä{i // 2}',
              'patch': rng.normal(size=(4, 3)).astype(np.float32),
              'labels': list(range(i % 3))} for i in range(7)]
  with tfrecord.ShardedWriter(tmp_path / 'audio', 'train',
                              shard_size=3) as writer:
    for values in written:
      writer.write(tfrecord.encode_example(values, specs))
  assert [s.records for s in writer.shards] == [3, 3, 1]
  assert [s.file for s in writer.shards] == [
      f'audio/train-0000{i}-of-00003.tfrecord' for i in range(3)]
  assert sorted(p.name for p in (tmp_path / 'audio').iterdir()) == [
      f'train-0000{i}-of-00003.tfrecord' for i in range(3)]
  for shard in writer.shards:
    assert tfrecord.sha256_file(tmp_path / shard.file) == shard.sha256
  read = [tfrecord.decode_example(r, specs) for r in tfrecord.read_records(
      [tmp_path / s.file for s in writer.shards])]
  assert len(read) == 7
  for want, got in zip(written, read):
    assert got['track_id'] == want['track_id']
    assert got['album_id'] == want['album_id']
    np.testing.assert_array_equal(got['patch'], want['patch'])
    assert got['labels'].tolist() == want['labels']


def test_records_are_the_same_bytes_in_every_process():
  # Map order of a tf.train.Example follows the string hash, which differs
  # between processes unless serialisation is deterministic.
  values = ('{"track_id": "T", "album_id": "A", "window": 0, '
            '"num_windows": 1, "patch": np.ones((2, 3)), "labels": [1]}')
  specs = tfrecord.feature_specs('mumu', 'audio_windows', patch_shape=(2, 3))
  record = eval(values)  # pylint: disable=eval-used
  here = tfrecord.encode_example(record, specs).hex()
  code = ('from input_pipeline.records import tfrecord; '
          'import numpy as np; '
          'specs = tfrecord.feature_specs("mumu", "audio_windows", '
          f'patch_shape=(2, 3)); print(tfrecord.encode_example({values}, '
          'specs).hex())')
  seed = '1' if os.environ.get('PYTHONHASHSEED') != '1' else '2'
  there = subprocess.run(
      [sys.executable, '-c', code], check=True, capture_output=True,
      text=True, env={**os.environ, 'PYTHONHASHSEED': seed},
      cwd=pathlib.Path(__file__).resolve().parents[3]).stdout.strip()
  assert there == here


def test_rewriting_a_split_replaces_its_shards(tmp_path):
  specs = {'album_id': tfrecord.FeatureSpec('bytes')}
  for n in (5, 1, 0):
    with tfrecord.ShardedWriter(tmp_path / 'text', 'val',
                                shard_size=2) as writer:
      for i in range(n):
        writer.write(tfrecord.encode_example({'album_id': f'A{i}'}, specs))
    names = sorted(p.name for p in (tmp_path / 'text').iterdir())
    count = max(1, -(-n // 2))
    assert names == [f'val-{i:05d}-of-{count:05d}.tfrecord'
                     for i in range(count)]
    assert sum(s.records for s in writer.shards) == n


def test_writer_abort_leaves_nothing(tmp_path):
  specs = {'album_id': tfrecord.FeatureSpec('bytes')}
  with pytest.raises(KeyError):
    with tfrecord.ShardedWriter(tmp_path, 'train', shard_size=1,
                                root=tmp_path) as writer:
      for i in range(3):
        writer.write(tfrecord.encode_example({'album_id': f'A{i}'}, specs))
      raise KeyError('boom')
  assert not list(tmp_path.iterdir())


def test_encode_names_the_bad_key():
  specs = tfrecord.feature_specs('mumu', 'image', image_size=4)
  good = {'album_id': 'A', 'image': np.zeros((4, 4, 3), np.uint8),
          'labels': [1]}
  with pytest.raises(tfrecord.ShardFormatError, match="'image'.*shape"):
    tfrecord.encode_example({**good, 'image': np.zeros((4, 5, 3), np.uint8)},
                            specs)
  with pytest.raises(tfrecord.ShardFormatError, match="'image' must be uint8"):
    tfrecord.encode_example({**good, 'image': np.zeros((4, 4, 3))}, specs)
  with pytest.raises(tfrecord.ShardFormatError, match=r"missing \['labels'\]"):
    tfrecord.encode_example({'album_id': 'A', 'image': good['image']}, specs)


def test_skip_report_and_counts_reconcile(prepared):
  root, out, manifest = prepared
  reasons = {
      (r['stage'], r['item_id']): r for r in mumu_corpus.skipped_rows(out)
  }
  assert set(reasons) == {('audio', 'T3'), ('audio', 'T5'), ('image', 'A4'),
                          ('text', 'A5'), ('labels', 'Zydeco'),
                          ('labels', 'A6')}
  assert reasons['audio', 'T3']['path'].endswith('T3.wav')
  assert reasons['audio', 'T3']['split'] == 'train'
  assert 'missing file' in reasons['audio', 'T5']['reason']
  assert reasons['audio', 'T5']['path'] == 'audio/T5.{wav,flac,ogg,mp3}'
  assert reasons['image', 'A4']['path'].endswith('A4.png')
  assert 'empty review text' in reasons['text', 'A5']['reason']
  assert 'no usable label' in reasons['labels', 'A6']['reason']
  assert reasons['labels', 'A6']['split'] == 'test'
  assert 'unknown label' in reasons['labels', 'Zydeco']['reason']
  assert manifest['skipped'] == {'metadata': 0, 'reviews': 0, 'labels': 2,
                                 'audio': 2, 'image': 1, 'text': 1}
  # 8 CSV rows, 6 albums: 5 in the splits and A6 (no usable label).
  assert manifest['metadata'] == {
      'file': 'MuMu_dataset_multi-label.csv',
      'counts': {'rows': {'read': 8, 'kept': 8, 'skipped': 0},
                 'albums': {'read': 6, 'kept': 5, 'skipped': 1},
                 'review_lines': {'read': 7, 'kept': 7, 'skipped': 0}}}
  assert manifest['skip_fractions'] == {
      'rows': 0.0, 'review_lines': 0.0, 'audio': round(2 / 7, 6),
      'image': 0.2, 'text': 0.2}
  assert manifest['args']['max_skip_fraction'] == mumu_corpus.BUDGET
  counts = {m: e['counts'] for m, e in manifest['modalities'].items()}
  assert counts == {
      'audio': {'train': {'read': 5, 'written': 3, 'skipped': 2,
                          'records': 3},
                'val': {'read': 1, 'written': 1, 'skipped': 0, 'records': 1},
                'test': {'read': 1, 'written': 1, 'skipped': 0,
                         'records': 1}},
      # The same tracks (a track is skipped once, for both), one record per
      # window: T6 (val) has 3, every other track 1.
      'audio_windows': {
          'train': {'read': 5, 'written': 3, 'skipped': 2, 'records': 3},
          'val': {'read': 1, 'written': 1, 'skipped': 0, 'records': 3},
          'test': {'read': 1, 'written': 1, 'skipped': 0, 'records': 1}},
      'image': {'train': {'read': 3, 'written': 3, 'skipped': 0,
                          'records': 3},
                'val': {'read': 1, 'written': 0, 'skipped': 1, 'records': 0},
                'test': {'read': 1, 'written': 1, 'skipped': 0,
                         'records': 1}},
      'text': {'train': {'read': 3, 'written': 3, 'skipped': 0,
                         'records': 3},
               'val': {'read': 1, 'written': 1, 'skipped': 0, 'records': 1},
               'test': {'read': 1, 'written': 0, 'skipped': 1,
                        'records': 0}},
  }
  # Skips are reported once, under 'audio', not again for the windows.
  assert not [r for r in mumu_corpus.skipped_rows(out)
              if r['stage'] not in prepare_job.STAGES]
  assert manifest['labels'] == list(mumu_corpus.LABELS)
  assert manifest['split_sizes'] == {'train': 3, 'val': 1, 'test': 1}
  assert splits_lib.read_splits(out / 'splits') == {
      'train': ['A1', 'A2', 'A3'], 'val': ['A4'], 'test': ['A5']}
  summary = prepare_job.summary(manifest)
  assert ('audio         train        5        3        2        3'
          in summary)
  assert 'metadata      albums       6        5        1' in summary
  assert 'reviews       lines        7        7        0' in summary
  assert ('audio_windows val          1        1        0        3'
          in summary)


def test_records_hold_features_and_labels(prepared):
  root, out, manifest = prepared
  audio = mumu_corpus.read_records(out, manifest, 'audio', 'train')
  assert [r['track_id'] for r in audio] == ['T1', 'T2', 'T4']
  assert [r['album_id'] for r in audio] == ['A1', 'A1', 'A3']
  # Label indices into mumu_corpus.LABELS; the unknown 'Zydeco' of A3 is
  # dropped.
  assert [r['labels'].tolist() for r in audio] == [[0, 2], [0, 2], [3]]
  for record in audio:
    want = audio_features.audio_patch(
        root / 'audio' / f'{record["track_id"]}.wav',
        seed=prepare_workers.track_seed(0, record['track_id']))
    np.testing.assert_array_equal(record['patch'], want)
  images = mumu_corpus.read_records(out, manifest, 'image', 'test')
  assert [r['album_id'] for r in images] == ['A5']
  # Covers are stored at the larger side S = round(C * 256 / 224), the whole
  # centre square, for random-resized crops; the manifest has both sizes.
  stored = image_features.stored_size(mumu_corpus.IMAGE_SIZE)
  assert stored == round(
      mumu_corpus.IMAGE_SIZE * 256 / 224) > mumu_corpus.IMAGE_SIZE
  assert (manifest['image_size'], manifest['stored_image_size']) == (
      mumu_corpus.IMAGE_SIZE, stored)
  np.testing.assert_array_equal(
      images[0]['image'],
      image_features.load_image(root / 'covers' / 'A5.png', size=stored,
                                short_side=stored))
  # Its centre crop is what load_image crops at size C (the ResNet
  # evaluation crop), up to a pixel of rounding in the offsets.
  crop = image_features.centre_crop(images[0]['image'], mumu_corpus.IMAGE_SIZE)
  direct = image_features.load_image(root / 'covers' / 'A5.png',
                                     size=mumu_corpus.IMAGE_SIZE)
  assert crop.shape == direct.shape == (mumu_corpus.IMAGE_SIZE,
                                        mumu_corpus.IMAGE_SIZE, 3)
  assert mumu_corpus.read_records(out, manifest, 'image', 'val') == []
  assert manifest['modalities']['image']['features']['image'] == {
      'dtype': 'uint8', 'shape': [stored, stored, 3]}
  assert manifest['patch_shape'] == [audio_features.PATCH_FRAMES,
                                     audio_features.N_BINS]


def test_audio_windows_are_the_whole_track_windows(prepared):
  root, out, manifest = prepared
  assert manifest['audio_windows'] == {'drop': 0.15, 'overlap': 0.5,
                                       'frames': 322}
  assert manifest['args']['windows'] is True
  specs = manifest['modalities']['audio_windows']['features']
  assert list(specs) == ['track_id', 'album_id', 'window', 'num_windows',
                         'patch', 'labels']
  assert specs['patch'] == {'dtype': 'float32', 'shape': [322, 96]}
  for split in ('train', 'val', 'test'):
    windows = mumu_corpus.read_records(out, manifest, 'audio_windows', split)
    tracks = mumu_corpus.read_records(out, manifest, 'audio', split)
    # Every written track, in the audio records' order, window by window.
    assert list(dict.fromkeys(w['track_id'] for w in windows)) == [
        t['track_id'] for t in tracks]
    for track in tracks:
      mine = [w for w in windows if w['track_id'] == track['track_id']]
      want = audio_features.track_windows(audio_features.track_spectrogram(
          root / 'audio' / f'{track["track_id"]}.wav'))
      assert len(mine) == len(want)
      assert [int(w['window']) for w in mine] == list(range(len(want)))
      assert {int(w['num_windows']) for w in mine} == {len(want)}
      for got, expected in zip(mine, want):
        np.testing.assert_array_equal(got['patch'], expected)
        assert got['album_id'] == track['album_id']
        assert got['labels'].tolist() == track['labels'].tolist()
  assert [len(mumu_corpus.read_records(out, manifest, 'audio_windows',
                                       'val'))] == [3]
  # shard_size is 2, but T6's 3 windows stay together in one shard, so a
  # process reading whole shards sees whole tracks.
  shards = manifest['modalities']['audio_windows']['shards']['val']
  assert [s['records'] for s in shards] == [3]
  assert shard_reader.verify_shards(out, manifest) == sum(
      len(s) for e in manifest['modalities'].values()
      for s in e['shards'].values())


def test_no_windows_skips_them_and_keeps_the_rest(prepared, tmp_path):
  root, out, manifest = prepared
  # Prepared again over the windowed output: the stale windows go too.
  again = tmp_path / 'shards'
  shutil.copytree(out, again)
  assert cli.main([
      'prepare', '--dataset', 'mumu', '--data',
      str(root), '--out',
      str(again), '--splits',
      str(root / 'splits'), '--image-size',
      str(mumu_corpus.IMAGE_SIZE), '--shard-size', '2', '--workers', '1',
      '--no-windows', '--no-progress', '--max-skip-fraction',
      str(mumu_corpus.BUDGET)
  ]) == 0
  plain = json.loads((again / layout.MANIFEST_JSON).read_text())
  assert 'audio_windows' not in plain['modalities']
  assert plain['omitted_modalities'] == {
      'audio_windows': 'prepared with --no-windows'}
  assert plain['audio_windows'] is None and not plain['args']['windows']
  assert not list((again / 'audio_windows').glob('*.tfrecord'))
  assert plain['skipped'] == manifest['skipped']
  # The audio records (and statistics) do not depend on the windows.
  for split in ('train', 'val', 'test'):
    assert plain['modalities']['audio']['counts'][split] == manifest[
        'modalities']['audio']['counts'][split]
    for a, b in zip(mumu_corpus.read_records(again, plain, 'audio', split),
                    mumu_corpus.read_records(out, manifest, 'audio', split)):
      assert a['track_id'] == b['track_id']
      np.testing.assert_array_equal(a['patch'], b['patch'])
  for name in ('mean', 'std'):
    np.testing.assert_array_equal(np.load(again / layout.AUDIO_STATS_NPZ)[name],
                                  np.load(out / layout.AUDIO_STATS_NPZ)[name])
  with pytest.raises(shard_reader.ManifestError,
                     match=f'{again}.*--no-windows.*without --no-windows'):
    shard_reader.make_dataset(again, 'audio_windows', 'test', batch_size=2,
                          process_index=0, process_count=1)
  with pytest.raises(shard_reader.ManifestError, match='without --no-windows'):
    shard_reader.num_examples(again, 'audio_windows', 'test', process_index=0,
                          process_count=1)


def test_statistics_and_tfidf_come_from_train_only(prepared):
  root, out, manifest = prepared
  train = np.stack([audio_features.audio_patch(
      root / 'audio' / f'{t}.wav', seed=prepare_workers.track_seed(0, t))
                    for t in ('T1', 'T2', 'T4')]).astype(np.float64)
  with np.load(out / layout.AUDIO_STATS_NPZ) as stats:
    assert stats['mean'].dtype == np.float32
    assert stats['mean'].shape == (audio_features.PATCH_FRAMES,
                                   audio_features.N_BINS)
    np.testing.assert_allclose(stats['mean'], train.mean(0), atol=1e-4)
    np.testing.assert_allclose(stats['std'], train.std(0), atol=1e-3)
    assert int(stats['count']) == 3
  every = np.concatenate([
      train,
      [
          r['patch']
          for s in ('val', 'test')
          for r in mumu_corpus.read_records(out, manifest, 'audio', s)
      ]
  ])
  assert not np.allclose(every.mean(0), train.mean(0), atol=1e-2)

  vectorizer = text_features.load_vectorizer(out / layout.TEXT_VECTORIZER_JSON)
  vocabulary = vectorizer.vocabulary_
  assert 'saxophone' in vocabulary and 'harmonica' in vocabulary
  assert 'xylophonic' not in vocabulary  # A val-only word.
  assert manifest['vocab_size'] == len(vocabulary)
  val = mumu_corpus.read_records(out, manifest, 'text', 'val')[0]
  want = vectorizer.transform(
      [text_features.aggregate_reviews(mumu_corpus.REVIEWS['A4'])])
  np.testing.assert_array_equal(val['tfidf_indices'], np.sort(want.indices))
  train_rows = mumu_corpus.read_records(out, manifest, 'text', 'train')
  for row in train_rows:
    assert np.isclose(np.linalg.norm(row['tfidf_values']), 1.0, atol=1e-5)


def test_outputs_are_atomic_and_checksummed(prepared, tmp_path):
  root, out, manifest = prepared
  leftovers = [p for p in out.rglob('*') if p.name.endswith('.tmp')]
  assert not leftovers
  listed = {}
  for entry in manifest['modalities'].values():
    for shards in entry['shards'].values():
      for shard in shards:
        listed[shard['file']] = shard['sha256']
  on_disk = {p.relative_to(out).as_posix()
             for p in out.rglob('*.tfrecord')}
  assert set(listed) == on_disk
  for name, digest in listed.items():
    assert tfrecord.sha256_file(out / name) == digest

  # Shards, manifest and statistics keep the user's umask (0644 under 022),
  # not a temporary file's 0600: a team shares runs/.
  modes = {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777)
           for p in out.rglob('*') if p.is_file()}
  assert layout.MANIFEST_JSON in modes and len(modes) > len(listed)
  assert set(modes.values()) == {oct(fileio.FILE_MODE)}, modes

  # A run that fails (no usable training audio) leaves no manifest behind.
  copy = tmp_path / 'shards'
  shutil.copytree(out, copy)
  bad_splits = tmp_path / 'bad_splits'
  splits_lib.write_splits({'train': ['A2'], 'val': ['A4'], 'test': ['A5']},
                          bad_splits)
  with pytest.raises(prepare_job.PrepareError, match='No training track'):
    prepare_job.prepare(
        'mumu', root, copy,
        prepare_job.Settings(splits=bad_splits,
                             image_size=mumu_corpus.IMAGE_SIZE, workers=1),
        progress=False)
  assert not (copy / layout.MANIFEST_JSON).exists()
  assert not [p for p in copy.rglob('*') if p.name.endswith('.tmp')]


def test_cli_end_to_end_on_synthetic_corpus(tmp_path, capsys):
  corpus = tmp_path / 'corpus'
  synthetic.generate_corpus(corpus, num_albums=8, seed=0, defects=1,
                            workers=1, progress=False)
  out = tmp_path / 'shards'
  assert cli.main(['prepare', '--dataset', 'mumu', '--data', str(corpus),
                   '--out', str(out), '--workers', '2', '--shard-size', '8',
                   '--image-size', '48', '--enrichment',
                   str(corpus / 'enrichment.tsv'), '--no-windows',
                   '--no-progress']) == 0
  assert 'skipped' in capsys.readouterr().out
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  assert manifest['args']['enrichment'].endswith('enrichment.tsv')
  in_splits = set().union(*splits_lib.read_splits(out / 'splits').values())
  skipped = {(r['stage'], r['item_id']) for r in mumu_corpus.skipped_rows(out)}
  with open(corpus / 'defects.tsv', newline='') as f:
    defects = list(csv.DictReader(f, delimiter='\t'))
  stage = {'empty_audio': 'audio', 'corrupt_audio': 'audio',
           'corrupt_image': 'image', 'empty_reviews': 'text'}
  track_album = mumu.load_mumu(
      corpus / 'MuMu_dataset_multi-label.csv').track_album
  for defect in defects:
    album = track_album.get(defect['item_id'], defect['item_id'])
    if album in in_splits:
      assert (stage[defect['kind']], defect['item_id']) in skipped, defect
  total = {m: sum(c['read'] for c in e['counts'].values())
           for m, e in manifest['modalities'].items()}
  assert total['image'] == total['text'] == len(in_splits)
  assert total['audio'] == sum(
      1 for t, a in track_album.items() if a in in_splits)
  for entry in manifest['modalities'].values():
    for c in entry['counts'].values():
      assert c['read'] == c['written'] + c['skipped']
  # --no-windows (the windows of this corpus are checked on MSD-I below).
  assert 'audio_windows' not in manifest['modalities']
  assert not (out / 'audio_windows').exists()

  # MSD-I from the same corpus, with one row given an unknown genre.
  tsv = corpus / 'MSD-I_dataset.tsv'
  lines = tsv.read_text().splitlines()
  fields = lines[1].split('\t')
  fields[1] = 'Polka'
  lines[1] = '\t'.join(fields)
  tsv.write_text('\n'.join(lines) + '\n')
  out_msdi = tmp_path / 'msdi'
  manifest = prepare_job.prepare('msdi', corpus, out_msdi,
                                 prepare_job.Settings(image_size=32, workers=1),
                                 progress=False)
  assert manifest['label_type'] == 'index'
  assert set(manifest['modalities']) == {'audio', 'audio_windows', 'image'}
  # The synthetic corpus's `set` column is the split used (./run.sh).
  assert manifest['splits_source'] == 'release'
  released = msdi.load_msdi(tsv, on_unknown_genre=lambda *row: None)
  assert splits_lib.read_splits(out_msdi / 'splits') == (
      released.release_splits())
  rows = mumu_corpus.skipped_rows(out_msdi)
  assert {('labels', fields[0])} <= {(r['stage'], r['item_id']) for r in rows}
  records = mumu_corpus.read_records(out_msdi, manifest, 'image', 'train')
  assert records and all(r['track_id'] for r in records)
  assert all(0 <= r['labels'][0] < manifest['num_labels'] for r in records)
  assert sum(c['read'] for c in manifest['modalities']['audio'][
      'counts'].values()) == len(lines) - 2
  _check_windows_match_audio(out_msdi, manifest)


def _check_windows_match_audio(out, manifest):
  """Windows of exactly the written tracks, counted in tracks and records."""
  for split, counts in manifest['modalities']['audio']['counts'].items():
    windows = manifest['modalities']['audio_windows']['counts'][split]
    assert {k: windows[k] for k in ('read', 'written', 'skipped')} == {
        k: counts[k] for k in ('read', 'written', 'skipped')}
    records = mumu_corpus.read_records(out, manifest, 'audio_windows', split)
    assert len(records) == windows['records'] >= windows['written']
    tracks = [
        r['track_id']
        for r in mumu_corpus.read_records(out, manifest, 'audio', split)
    ]
    assert list(dict.fromkeys(r['track_id'] for r in records)) == tracks
    per_track = collections.Counter(r['track_id'] for r in records)
    assert all(per_track[r['track_id']] == r['num_windows'] for r in records)


def test_worker_pool_survives_a_crashing_worker():
  # signal.raise_signal(SIGCHLD) returns None (the default action is to
  # ignore it); SIGKILL kills the worker process, as a decoder crash would.
  ok = signal.SIGCHLD
  jobs = [prepare_corpus.Item('train', f'T{i}', {}, [], path=signum)
          for i, signum in enumerate([ok, ok, signal.SIGKILL, ok, ok, ok])]
  pool = prepare_workers.WorkerPool(2)
  try:
    results = list(pool.map(signal.raise_signal, jobs, lambda job: {}))
  finally:
    pool.close()
  assert [job.item_id for job, _, _ in results] == [j.item_id for j in jobs]
  errors = [error for _, _, error in results]
  assert [e is None for e in errors] == [True, True, False, True, True, True]
  assert 'crashed' in str(errors[2])


def test_text_is_omitted_when_tfidf_cannot_fit(tmp_path):
  root = tmp_path / 'corpus'
  split_dir = mumu_corpus.make_corpus(root)
  # Identical training texts: max_df=0.5 prunes every term.
  with open(root / 'reviews.jsonl', 'w') as f:
    for album in mumu_corpus.ALBUMS:
      f.write(json.dumps({'asin': album, 'reviewText': 'Same words.'}) + '\n')
  out = tmp_path / 'shards'
  # Every album skipped for text is over the default failure budget.
  with pytest.raises(prepare_job.PrepareError,
                     match=r'5 of 5 album texts \(100.0%\)'):
    prepare_job.prepare(
        'mumu', root, out,
        prepare_job.Settings(splits=split_dir, image_size=8, workers=1,
                             windows=False,
                             max_skip_fraction=mumu_corpus.BUDGET),
        progress=False)
  assert not (out / layout.MANIFEST_JSON).exists()
  manifest = prepare_job.prepare(
      'mumu', root, out,
      prepare_job.Settings(splits=split_dir, image_size=8, workers=1,
                           windows=False, max_skip_fraction=1.0),
      progress=False)
  assert set(manifest['modalities']) == {'audio', 'image'}
  assert set(manifest['omitted_modalities']) == {'text', 'audio_windows'}
  assert manifest['vocab_size'] is None
  assert not (out / layout.TEXT_VECTORIZER_JSON).exists()
  text_rows = [r for r in mumu_corpus.skipped_rows(out) if r['stage'] == 'text']
  assert sorted(r['item_id'] for r in text_rows) == ['A1', 'A2', 'A3', 'A4',
                                                     'A5']
  assert manifest['skipped']['text'] == 5


def _cli_args(root, out, *extra):
  """`mmgenre prepare` with the settings of the `prepared` fixture."""
  return ['prepare', '--dataset', 'mumu', '--data', str(root), '--out',
          str(out), '--splits', str(root / 'splits'), '--image-size',
          str(mumu_corpus.IMAGE_SIZE), '--shard-size', '2', '--no-progress',
          '--max-skip-fraction', str(mumu_corpus.BUDGET), *extra]


def test_complete_run_is_recognised_by_its_settings(prepared, tmp_path):
  root, out, manifest = prepared
  args = manifest['args']
  assert args == prepare_job.run_args(
      'mumu', root, out,
      prepare_job.Settings(splits=root / 'splits',
                           image_size=mumu_corpus.IMAGE_SIZE, shard_size=2,
                           workers=1, max_skip_fraction=mumu_corpus.BUDGET))
  assert prepare_job.is_complete(out, args)
  # Neither the worker count nor where the directory is change the output,
  # nor a looser failure budget; a stricter one than its skips (2 of 7
  # tracks) is not met.
  assert prepare_job.is_complete(out, {**args, 'workers': 8, 'out': 'moved',
                                   'max_skip_fraction': 0.9})
  assert not prepare_job.is_complete(out, {**args, 'max_skip_fraction': 0.2})
  # A manifest from before the budget: the fractions come from its counts.
  older = tmp_path / 'older'
  shutil.copytree(out, older)
  old_manifest = {k: v for k, v in manifest.items() if k != 'skip_fractions'}
  (older / layout.MANIFEST_JSON).write_text(json.dumps(old_manifest))
  assert prepare_job.is_complete(older, args)
  assert not prepare_job.is_complete(older, {**args, 'max_skip_fraction': 0.2})
  for key, other in (('image_size', 16), ('shard_size', 3), ('seed', 1),
                     ('windows', False), ('enrichment', 'enrichment.tsv'),
                     ('splits', None), ('data', str(tmp_path)),
                     ('dataset', 'msdi'), ('min_albums', 2),
                     ('frontend', 'librosa_soxr_hq')):
    assert not prepare_job.is_complete(out, {**args, key: other}), key
  # The manifest names the front end; one from before the record was made
  # by librosa soxr_hq: complete for that front end, not for JAX's.
  assert manifest['frontend'] == args['frontend'] == 'jax_polyphase'
  unrecorded = tmp_path / 'unrecorded'
  shutil.copytree(out, unrecorded)
  (unrecorded / layout.MANIFEST_JSON).write_text(json.dumps(
      {**{k: v for k, v in manifest.items() if k != 'frontend'},
       'args': {k: v for k, v in args.items() if k != 'frontend'}}))
  assert prepare_job.is_complete(
      unrecorded, {**args, 'frontend': 'librosa_soxr_hq'})
  assert not prepare_job.is_complete(unrecorded, args)
  assert not prepare_job.is_complete(tmp_path / 'nothing', args)
  # A copy lacking a listed file, or of another manifest version, is not.
  for damage in ('shard', 'stats', 'version', 'incomplete'):
    copy = tmp_path / damage
    shutil.copytree(out, copy)
    if damage == 'shard':
      (copy / manifest['modalities']['image']['shards']['test'][0][
          'file']).unlink()
    elif damage == 'stats':
      (copy / layout.AUDIO_STATS_NPZ).unlink()
    else:
      changed = dict(manifest)
      if damage == 'version':
        changed['format_version'] = prepare_job.MANIFEST_VERSION - 1
      else:
        changed['complete'] = False
      (copy / layout.MANIFEST_JSON).write_text(json.dumps(changed))
    assert not prepare_job.is_complete(copy, args), damage


def test_cli_skips_a_complete_run_unless_forced(prepared, tmp_path, capsys):
  root, out, _ = prepared
  again = tmp_path / 'shards'
  shutil.copytree(out, again)
  manifest_path = again / layout.MANIFEST_JSON
  # Marks the manifest: a skipped run leaves it, a forced one rewrites it.
  marked = json.loads(manifest_path.read_text())
  marked['created'] = 'marked'
  manifest_path.write_text(json.dumps(marked))
  capsys.readouterr()
  assert cli.main(_cli_args(root, again, '--workers', '2')) == 0
  assert capsys.readouterr().out == (
      f'[prepare] {again} already holds these shards (manifest.json '
      'complete, same settings), skipped\n')
  assert json.loads(manifest_path.read_text())['created'] == 'marked'

  assert cli.main(_cli_args(root, again, '--workers', '1', '--force')) == 0
  printed = capsys.readouterr().out
  assert 'already holds' not in printed
  assert printed.endswith(f'Shards and manifest written to {again}\n')
  forced = json.loads(manifest_path.read_text())
  assert forced['created'] != 'marked' and forced['complete'] is True
  # The same corpus and settings: the same shards, byte for byte.
  assert forced['modalities'] == marked['modalities']
  assert (again / layout.SKIPPED_TSV).read_bytes() == (
      out / layout.SKIPPED_TSV).read_bytes()
  assert prepare_job.is_complete(again, forced['args'])


def test_msdi_unknown_genres_are_skipped_without_a_temp_file(tmp_path,
                                                             monkeypatch):
  header = '\t'.join(['msd_track_id', 'genre', 'album_index', 'set',
                      'msd_artist_id', 'image_url'])
  rows = [['TRA', 'Rock', '1', 'train', 'AR1', 'covers/1.jpg'],
          ['TRB', 'Polka', '2', 'train', 'AR2', 'covers/2.jpg'],
          ['TRC', 'jazz', '3', 'val', 'AR3', 'http://example.org/3.jpg'],
          ['TRD', ' Disco ', '4', 'test', 'AR4', ''],
          ['TRE', 'Pop', '5', 'test', 'AR5', '']]
  root = tmp_path / 'corpus'
  root.mkdir()
  (root / layout.MSDI_TSV).write_text(
      header + '\n' + ''.join('\t'.join(r) + '\n' for r in rows))
  splits_lib.write_splits({'train': ['TRA', 'TRB'], 'val': ['TRC'],
                           'test': ['TRD', 'TRE']}, tmp_path / 'splits')

  def no_temp_files(*args, **kwargs):
    raise AssertionError('the MSD-I rows are filtered in memory')

  for name in ('mkstemp', 'NamedTemporaryFile', 'TemporaryFile'):
    monkeypatch.setattr(tempfile, name, no_temp_files)
  skips = prepare_corpus.SkipLog()
  corpus = release_items.load_msdi_corpus(
      root, splits=tmp_path / 'splits', skips=skips)
  assert corpus.labels == ('Jazz', 'Pop', 'Rock')
  assert corpus.splits == {'train': ['TRA'], 'val': ['TRC'], 'test': ['TRE']}
  tsv = os.fspath(root / layout.MSDI_TSV)
  genres = list(msdi.MSDI_GENRES)
  # Each unknown genre once, from the corpus, then the split entries of the
  # tracks left out.
  assert skips.rows[:2] == [
      ('labels', '', 'TRB', tsv,
       f"unknown label 'Polka' (line 3); MSD-I genres are {genres}"),
      ('labels', '', 'TRD', tsv,
       f"unknown label 'Disco' (line 5); MSD-I genres are {genres}")]
  assert [(r[0], r[1], r[2]) for r in skips.rows[2:]] == [
      ('labels', 'train', 'TRB'), ('labels', 'test', 'TRD')]
  assert [i.item_id for i in corpus.items['audio']['train']] == ['TRA']
  assert corpus.items['image']['val'][0].missing.startswith(
      'remote image_url http://example.org/3.jpg')


# MSD-I: track -> (genre, set value). The set values are the release split,
# spelled as a file may (case, 'validation'); TRI and TRJ have none.
MSDI_ROWS = {'TRA': ('Rock', 'train'), 'TRB': ('Jazz', 'train'),
             'TRC': ('Pop', 'Train'), 'TRD': ('Rock', 'train'),
             'TRE': ('Jazz', 'val'), 'TRF': ('Pop', 'validation'),
             'TRG': ('Rock', 'test'), 'TRH': ('Jazz', 'test'),
             'TRI': ('Pop', 'dev'), 'TRJ': ('Rock', '')}


def make_msdi_corpus(root: pathlib.Path, with_set: bool = True):
  """An MSD-I corpus of MSDI_ROWS, one artist and album per track."""
  (root / 'audio').mkdir(parents=True)
  (root / 'covers').mkdir()
  columns = [c for c in msdi.MSDI_COLUMNS if with_set or c != 'set']
  lines = ['\t'.join(columns)]
  rng = np.random.default_rng(0)
  for i, (track, (genre, split)) in enumerate(MSDI_ROWS.items()):
    values = {'msd_track_id': track, 'genre': genre, 'album_index': str(i),
              'set': split, 'msd_artist_id': f'AR{i}',
              'image_url': f'covers/{i}.png'}
    lines.append('\t'.join(values[c] for c in columns))
    mumu_corpus.write_tone(root / 'audio' / f'{track}.wav', 1.0, 16000,
                           100.0 + 50 * i)
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
        root / 'covers' / f'{i}.png')
  (root / layout.MSDI_TSV).write_text('\n'.join(lines) + '\n')


def _msdi_cli(root, out, *extra):
  return [
      'prepare', '--dataset', 'msdi', '--data',
      str(root), '--out',
      str(out), '--image-size', '8', '--workers', '1', '--no-windows',
      '--no-progress', '--max-skip-fraction',
      str(mumu_corpus.BUDGET), *extra
  ]


def test_msdi_release_split_is_the_default(tmp_path, capsys):
  root = tmp_path / 'corpus'
  make_msdi_corpus(root)
  out = tmp_path / 'shards'
  assert cli.main(_msdi_cli(root, out)) == 0
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  assert manifest['splits_source'] == 'release'
  assert manifest['splits_from'] == "MSD-I_dataset.tsv, column 'set'"
  assert manifest['args']['splits'] == 'release'
  # The splits are the `set` column, row for row, in file order.
  with open(root / layout.MSDI_TSV, newline='') as f:
    rows = list(csv.DictReader(f, delimiter='\t'))
  want = {name: [] for name in splits_lib.SPLIT_NAMES}
  names = {'train': 'train', 'val': 'val', 'validation': 'val',
           'test': 'test'}
  for row in rows:
    if row['set'].lower() in names:
      want[names[row['set'].lower()]].append(row['msd_track_id'])
  assert splits_lib.read_splits(out / 'splits') == want == {
      'train': ['TRA', 'TRB', 'TRC', 'TRD'], 'val': ['TRE', 'TRF'],
      'test': ['TRG', 'TRH']}
  assert manifest['split_sizes'] == {'train': 4, 'val': 2, 'test': 2}
  for split, tracks in want.items():
    assert [
        r['track_id']
        for r in mumu_corpus.read_records(out, manifest, 'image', split)
    ] == tracks
  # The rows without a set are bad rows, reported with file, line and why.
  tsv = os.fspath(root / layout.MSDI_TSV)
  assert [tuple(r.values()) for r in mumu_corpus.skipped_rows(out)] == [
      ('metadata', '', 'TRI', tsv,
       "line 10: column 'set': unknown set 'dev'; expected one of "
       "['train', 'val', 'test'] (the release split)"),
      ('metadata', '', 'TRJ', tsv,
       "line 11: column 'set': empty value; every row needs one")]
  assert manifest['metadata']['counts']['rows'] == {
      'read': 10, 'kept': 8, 'skipped': 2}
  assert 'release splits' in capsys.readouterr().out
  # Asking for it by name is the same run; a computed split is another one.
  args = manifest['args']
  for splits in (None, 'release'):
    assert prepare_job.is_complete(
        out,
        prepare_job.run_args(
            'msdi', root, out,
            prepare_job.Settings(splits=splits, image_size=8, workers=1,
                                 windows=False,
                                 max_skip_fraction=mumu_corpus.BUDGET))), splits
  assert not prepare_job.is_complete(out, {**args, 'splits': 'computed'})
  # Shards from before the release split (args `splits` None: computed)
  # are not complete for it, so ./run.sh prepares them again.
  legacy = tmp_path / 'legacy'
  shutil.copytree(out, legacy)
  old = {**manifest, 'args': {**args, 'splits': None}}
  (legacy / layout.MANIFEST_JSON).write_text(json.dumps(old))
  assert not prepare_job.is_complete(legacy, args)
  assert prepare_job.is_complete(legacy, {**args, 'splits': 'computed'})


def test_msdi_computed_split_on_request(tmp_path, capsys):
  root = tmp_path / 'corpus'
  make_msdi_corpus(root)
  out = tmp_path / 'shards'
  assert cli.main(_msdi_cli(root, out, '--splits', 'compute')) == 0
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  assert manifest['splits_source'] == 'computed'
  assert manifest['splits_from'] == 'artist-filtered, seed 0'
  assert manifest['args']['splits'] == 'computed'
  # The set column is not used: no row is left out for it.
  assert not mumu_corpus.skipped_rows(out)
  dataset = msdi.load_msdi(root / layout.MSDI_TSV, require_set=False)
  assert splits_lib.read_splits(out / 'splits') == splits_lib.msdi_splits(
      dataset, 0)
  assert sum(manifest['split_sizes'].values()) == len(MSDI_ROWS)
  # The default (release) split over these shards is a new run.
  capsys.readouterr()
  assert cli.main(_msdi_cli(root, out)) == 0
  assert 'already holds' not in capsys.readouterr().out
  assert json.loads((out / layout.MANIFEST_JSON).read_text())[
      'splits_source'] == 'release'
  # A directory of split files is named so.
  assert cli.main(_msdi_cli(root, tmp_path / 'from_dir', '--splits',
                            str(out / 'splits'))) == 0
  from_dir = json.loads((tmp_path / 'from_dir' / layout.MANIFEST_JSON)
                        .read_text())
  assert from_dir['splits_source'] == 'directory'
  assert from_dir['splits_from'] == os.fspath(out / 'splits')


def test_msdi_release_split_needs_the_set_column(tmp_path, capsys):
  root = tmp_path / 'corpus'
  make_msdi_corpus(root, with_set=False)
  out = tmp_path / 'shards'
  assert cli.main(_msdi_cli(root, out)) == 2
  err = capsys.readouterr().err
  assert (f"{root / layout.MSDI_TSV}, line 1: the header has no 'set' column"
          in err) and '--splits compute' in err
  assert not (out / layout.MANIFEST_JSON).exists()
  assert cli.main(_msdi_cli(root, out, '--splits', 'compute')) == 0
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  assert manifest['splits_source'] == 'computed'
  assert sum(manifest['split_sizes'].values()) == len(MSDI_ROWS)


def test_mumu_release_split_is_the_authors_files(prepared, tmp_path,
                                                 capsys):
  root, _, manifest = prepared
  assert manifest['splits_source'] == 'directory'
  assert manifest['splits_from'] == os.fspath(root / 'splits')
  assert prepare_job.run_args('mumu', root, tmp_path)['splits'] == 'computed'
  assert cli.main(['prepare', '--dataset', 'mumu', '--data', str(root),
                   '--out', str(tmp_path / 'out'), '--splits', 'release',
                   '--no-progress']) == 2
  err = capsys.readouterr().err
  assert 'the MuMu release file has no train/val/test column' in err
  assert 'items_index_{train,val,test}_<dataset>.tsv (zenodo 831189)' in err

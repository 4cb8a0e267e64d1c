"""The generic catalog format: synth writes it, prepare reads it, pipelines
train on it and the tagger predicts from it.

One small synthetic corpus (`mmgenre synth --format catalog`) is written
once; its catalog is prepared beside the MuMu release files of the same
corpus, so the two shard sets can be compared record for record.
"""

import csv
import json
import pathlib
import shutil

import numpy as np
import pytest

from input_pipeline.formats import catalog
from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.prepare import job as prepare_job
from input_pipeline.formats import splits as splits_lib
from input_pipeline.records import tfrecord
from mmgenre_jax import cli
from mmgenre_jax import main_modes
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.pipelines import definition
from mmgenre_jax.tagging import items as tagging_catalog
from mmgenre_jax.tagging import tagger as tagger_lib
from configs import catalog_cosine

ALBUMS = 24
IMAGE_SIZE = 32


@pytest.fixture(scope='module')
def corpus(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp('catalog') / 'corpus'
  assert cli.main(['synth', '--format', 'catalog', '--out', str(root),
                   '--albums', str(ALBUMS), '--seed', '3', '--workers', '2',
                   '--no-progress']) == 0
  return root


def _prepare(csv_path, out, **kwargs):
  return prepare_job.prepare(
      'catalog', csv_path, out,
      prepare_job.Settings(image_size=IMAGE_SIZE, workers=2, **kwargs),
      progress=False)


def _records(out, manifest, modality, split):
  entry = manifest['modalities'][modality]
  specs = tfrecord.specs_from_json(entry['features'])
  return [tfrecord.decode_example(r, specs) for r in tfrecord.read_records(
      [out / s['file'] for s in entry['shards'][split]])]


def _skipped(out):
  with open(out / layout.SKIPPED_TSV, newline='') as f:
    return list(csv.DictReader(f, delimiter='\t'))


def _rewrite(src: pathlib.Path, dst: pathlib.Path, columns, edit=None,
             absolute: bool = False):
  """dst: src's catalog rows with only `columns`, edited by edit(rows);
  absolute: media paths made absolute (dst is in another folder)."""
  with open(src, newline='') as f:
    rows = list(csv.DictReader(f))
  if absolute:
    for row in rows:
      for key in ('audio', 'cover', 'reviews'):
        row[key] = ';'.join(str(src.parent / p)
                            for p in row[key].split(';') if p)
  rows = edit(rows) if edit else rows
  with open(dst, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore',
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
  return dst


@pytest.fixture(scope='module')
def shards(corpus, tmp_path_factory):
  out = tmp_path_factory.mktemp('catalog_shards')
  _prepare(corpus / layout.CATALOG_CSV, out)
  return out


def test_synth_writes_a_catalog_of_the_corpus(corpus):
  rows, columns, read = catalog.read_rows(corpus / layout.CATALOG_CSV)
  assert columns == catalog.COLUMNS[:-1]  # No split column.
  release = mumu.load_mumu(corpus / layout.MUMU_MULTI_LABEL_CSV)
  assert read == len(rows) == len(release.albums) == ALBUMS
  for row in rows:
    album = release.albums[row.album_id]
    assert [pathlib.Path(p).stem for p in row.audio] == list(album.track_ids)
    assert all(pathlib.Path(p).is_file() for p in row.audio)
    assert pathlib.Path(row.cover).is_file()
    assert row.artist_ids == album.artist_ids
    assert row.labels == album.labels
  assert (corpus / layout.CATALOG_TAXONOMY_TSV).read_bytes() == (
      corpus / layout.MUMU_TAXONOMY_TSV).read_bytes()
  # The tagging commands read the same file.
  items = tagging_catalog.read_manifest(corpus / layout.CATALOG_CSV)
  assert [i.key for i in items] == [r.album_id for r in rows]
  assert items[0].audio == list(rows[0].audio)


def test_catalog_shards_equal_the_mumu_shards_of_the_same_albums(
    corpus, shards, tmp_path):
  mumu_out = tmp_path / 'mumu'
  mine = json.loads((shards / layout.MANIFEST_JSON).read_text())
  theirs = prepare_job.prepare(
      'mumu', corpus, mumu_out,
      prepare_job.Settings(image_size=IMAGE_SIZE, workers=2), progress=False)
  assert mine['dataset'] == 'catalog' and mine['label_type'] == 'multi_hot'
  assert mine['labels'] == theirs['labels']
  # No split column: the same artist-filtered split as MuMu's, same seed.
  assert mine['splits_source'] == 'computed'
  assert splits_lib.read_splits(shards / 'splits') == splits_lib.read_splits(
      mumu_out / 'splits')
  assert mine['metadata']['counts']['albums'] == {
      'read': ALBUMS, 'kept': ALBUMS, 'skipped': 0}
  track_of = {}  # catalog track id -> MSD track id
  for row in catalog.read_rows(corpus / layout.CATALOG_CSV)[0]:
    for n, path in enumerate(row.audio, start=1):
      track_of[catalog.track_id(row.album_id, n)] = pathlib.Path(path).stem
  for split in ('train', 'val', 'test'):
    for modality in ('image', 'text'):
      a = _records(shards, mine, modality, split)
      b = _records(mumu_out, theirs, modality, split)
      assert [r['album_id'] for r in a] == [r['album_id'] for r in b]
      for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
          np.testing.assert_array_equal(x[key], y[key])
    # Whole-track windows do not depend on the track id (crops do).
    a = _records(shards, mine, 'audio_windows', split)
    b = _records(mumu_out, theirs, 'audio_windows', split)
    assert [(track_of[r['track_id']], r['window']) for r in a] == [
        (r['track_id'], r['window']) for r in b]
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x['patch'], y['patch'])
      np.testing.assert_array_equal(x['labels'], y['labels'])


def test_missing_optional_columns_and_the_split_column(corpus, tmp_path):
  src = corpus / layout.CATALOG_CSV
  # No reviews, no artist_id: audio and image only, a computed split.
  bare = _rewrite(src, tmp_path / 'bare.csv',
                  ('album_id', 'audio', 'cover', 'labels'), absolute=True)
  manifest = _prepare(bare, tmp_path / 'bare')
  assert set(manifest['modalities']) == {'audio', 'audio_windows', 'image'}
  assert manifest['omitted_modalities'] == {
      'text': "bare.csv has no 'reviews' column"}
  assert manifest['text_vectorizer'] is None
  assert sum(manifest['split_sizes'].values()) == ALBUMS
  # A split column is the split used.
  names = ['train'] * 16 + ['val'] * 4 + ['test'] * 4

  def with_split(rows):
    for row, name in zip(rows, names):
      row['split'] = name.upper() if row is rows[0] else name
    return rows
  split_csv = _rewrite(src, tmp_path / 'split.csv', catalog.COLUMNS,
                       with_split, absolute=True)
  manifest = _prepare(split_csv, tmp_path / 'split')
  assert manifest['splits_source'] == 'release'
  assert manifest['splits_from'] == "split.csv, column 'split'"
  assert manifest['split_sizes'] == {'train': 16, 'val': 4, 'test': 4}
  assert manifest['args']['splits'] == 'release'
  # --splits release on a catalog without the column says how to fix it.
  with pytest.raises(prepare_job.PrepareError, match='no `split` column'):
    _prepare(bare, tmp_path / 'x', splits='release')


def test_bad_rows_are_reported_and_the_rest_prepared(corpus, tmp_path):
  src = corpus / layout.CATALOG_CSV
  (tmp_path / 'media').symlink_to(corpus, target_is_directory=True)
  bad = {}

  def damage(rows):
    for row in rows:
      for key in ('audio', 'cover', 'reviews'):
        row[key] = ';'.join(f'media/{p}' for p in row[key].split(';') if p)
    rows[1]['labels'] = ''
    bad['no_labels'] = rows[1]['album_id']
    rows[2]['split'] = 'holdout'
    bad['bad_split'] = rows[2]['album_id']
    rows[3]['cover'] = ''
    bad['no_cover'] = rows[3]['album_id']
    rows[4]['audio'] = 'media/audio/gone.wav;' + rows[4]['audio']
    rows[5]['reviews'] = 'media/reviews/missing.txt'
    bad['no_text'] = rows[5]['album_id']
    for row in rows:
      row['split'] = row.get('split') or ('test' if row is rows[6] else
                                          'train' if row is not rows[7]
                                          else 'val')
    return rows + [dict(rows[0])]  # A repeated album_id.
  path = _rewrite(src, tmp_path / 'catalog.csv', catalog.COLUMNS, damage)
  with open(path, 'a') as f:
    f.write('short,row\n')
  manifest = _prepare(path, tmp_path / 'out', max_skip_fraction=1.0)
  skipped = _skipped(tmp_path / 'out')
  reasons = {(r['stage'], r['item_id']): r['reason'] for r in skipped}
  assert 'empty value' in reasons['metadata', bad['no_labels']]
  assert "split 'holdout'" in reasons['metadata', bad['bad_split']]
  assert 'repeats album_id' in reasons['metadata', rows_first(path)]
  assert 'fields where the header has' in reasons['metadata', 'short']
  assert 'the cover cell' in reasons['image', bad['no_cover']]
  assert any(r['stage'] == 'audio' and r['path'].endswith('gone.wav')
             and 'missing file' in r['reason'] for r in skipped)
  assert ('reviews', bad['no_text']) in reasons
  assert ('text', bad['no_text']) in reasons
  counts = manifest['metadata']['counts']
  assert counts['rows'] == {'read': ALBUMS + 2, 'kept': ALBUMS - 2,
                            'skipped': 4}
  for entry in manifest['modalities'].values():
    for c in entry['counts'].values():
      assert c['read'] == c['written'] + c['skipped']
  assert manifest['skipped']['metadata'] == 4


def rows_first(path) -> str:
  with open(path, newline='') as f:
    return next(csv.DictReader(f))['album_id']


def test_for_shards_leaves_out_what_the_shards_cannot_feed():
  config = catalog_cosine.get_config('cpu')
  manifest = {'modalities': {'audio': {}, 'audio_windows': {}, 'image': {}},
              'omitted_modalities': {'text': "c.csv has no 'reviews' column"},
              'labels': [f'l{i}' for i in 9 * 'x']}
  adapted = definition.for_shards(config, manifest)
  assert adapted.stage_order == ('audio', 'image', 'audio_album',
                                 'audio_image')
  assert adapted.final == 'audio_image'
  assert set(adapted.dropped_stages) == {'text', 'audio_text', 'text_image',
                                         'audio_text_image'}
  assert "no 'reviews' column" in adapted.dropped_stages['text']
  assert 'reads stage(s) text' in adapted.dropped_stages['audio_text']
  # d = 16 of the CPU variant, 9 labels: d becomes 9.
  for name in definition.cosine_stages(adapted):
    assert adapted.stages[name].config.data.factor_dim == 9
    assert adapted.stages[name].config.model.num_outputs == 9
  definition.validate(adapted)
  assert config.final == 'audio_text_image'  # The original is unchanged.
  assert definition.for_shards(config, None) is config


def test_a_catalog_without_reviews_trains_and_predicts(corpus, tmp_path,
                                                       capsys):
  def with_split(rows):  # 24 albums of a few artists: split by hand.
    for i, row in enumerate(rows):
      row['split'] = 'test' if i % 4 == 1 else 'val' if i % 8 == 3 else (
          'train')
    return rows
  bare = _rewrite(corpus / layout.CATALOG_CSV, tmp_path / 'catalog.csv',
                  ('album_id', 'audio', 'cover', 'artist_id', 'labels',
                   'split'), with_split)
  shutil.copy(corpus / layout.CATALOG_TAXONOMY_TSV, tmp_path)
  for name in (layout.AUDIO_DIR, layout.COVERS_DIR):
    (tmp_path / name).symlink_to(corpus / name, target_is_directory=True)
  out = tmp_path / 'shards'
  # In this process: the pool's shards are the same bytes (prepare_test),
  # and 2 worker processes would each start JAX for the front end.
  assert cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                   str(bare), '--out', str(out), '--image-size',
                   str(IMAGE_SIZE), '--workers', '1', '--no-progress']) == 0
  config = catalog_cosine.get_config('cpu')
  config.data.shard_dir = str(out)
  for name in config.stage_order:
    config.stages[name].config.train.num_epochs = 1
  workdir = tmp_path / 'W'
  main_modes.run(config, str(workdir), mode='train')
  assert 'stage text left out' in capsys.readouterr().out
  record = workdir_lib.read_pipeline(workdir)
  assert record['dataset'] == 'catalog'
  assert record['final'] == 'audio_image'
  assert [s['name'] for s in record['stages']] == [
      'audio', 'image', 'audio_album', 'audio_image']
  assert 'text' in record['dropped_stages']
  report = (workdir / 'report.md').read_text()
  assert '### Catalog (multi-label albums)' in report
  results = json.loads((workdir / 'results.json').read_text())
  assert {r['dataset'] for r in results} == {'catalog'}
  # Predict one catalog album from its row, with the catalog's taxonomy.
  tagger = tagger_lib.Tagger.from_workdir(workdir)
  assert tagger.labels == json.loads(
      (out / layout.MANIFEST_JSON).read_text())['labels']
  assert tagger.taxonomy_source.endswith(layout.CATALOG_TAXONOMY_TSV)
  item = tagging_catalog.read_manifest(bare)[0]
  result = tagger.predict(audio=item.audio, cover=item.cover, top_k=3)
  assert len(result['labels']) == 3
  assert 'audio_image' in result['model']
  taxonomy = mumu.read_taxonomy(corpus / layout.CATALOG_TAXONOMY_TSV)
  for label in result['decisions']:
    parent = taxonomy.get(label)
    assert parent is None or parent not in tagger.labels or (
        parent in result['decisions'])


def test_prepare_cli_names_the_flag_each_dataset_needs(corpus, tmp_path,
                                                       capsys):
  out = str(tmp_path / 'out')
  assert cli.main(['prepare', '--dataset', 'catalog', '--data', str(corpus),
                   '--out', out]) == 2
  assert '--manifest FILE' in capsys.readouterr().err
  assert cli.main(['prepare', '--dataset', 'mumu', '--manifest',
                   str(corpus / layout.CATALOG_CSV), '--out', out]) == 2
  assert 'give --data DIR' in capsys.readouterr().err
  assert cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                   str(tmp_path / 'none.csv'), '--out', out]) == 2
  assert 'is not a file' in capsys.readouterr().err
  header_only = tmp_path / 'c.csv'
  header_only.write_text('album_id,labels\na1,Rock\n')
  assert cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                   str(header_only), '--out', out]) == 2
  assert 'no media column' in capsys.readouterr().err

"""`mmgenre prepare --splits DIR` of the authors' split files.

The authors ship their split as items_index_{train,val,test}_<dataset>.tsv
(MuMu: zenodo 831189, `splits/`; an album-level and a track-level set).
Here such files are made from the synthetic corpus's own computed split and
read back as they would ship: the manifest says `release`, the splits are
the files' ids, and every id missing on either side is in skipped.tsv.
"""

import json
import os

import pytest

from input_pipeline import layout
from input_pipeline.formats import release_format
from input_pipeline.formats import splits as splits_lib
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import job as prepare_job
from input_pipeline.prepare import release_items
from mmgenre_jax import cli

from helpers import mumu_corpus

# An id the corpus does not have, in the authors' test file.
EXTRA = 'B0NOTINCORPUS'


def computed_split(corpus):
  """The corpus's own computed split (the MuMu default): (albums, Corpus)."""
  read = release_items.load_mumu_corpus(corpus,
                                        skips=prepare_corpus.SkipLog())
  return {name: list(ids) for name, ids in read.splits.items()}, read


def write_set(directory, splits, suffix):
  """Writes splits as the authors name them: items_index_{split}_<suffix>."""
  directory.mkdir(parents=True, exist_ok=True)
  for name, ids in splits.items():
    (directory / f'items_index_{name}_{suffix}.tsv').write_text(
        ''.join(f'{i}\n' for i in ids))


def prepare_cli(corpus, out, splits_dir):
  return ['prepare', '--dataset', 'mumu', '--data', str(corpus), '--out',
          str(out), '--splits', str(splits_dir), '--image-size', '16',
          '--workers', '1', '--no-windows', '--no-progress']


def skipped(out):
  return {(r['stage'], r['split'], r['item_id']): r
          for r in mumu_corpus.skipped_rows(out)}


def test_authors_files_are_the_release_split(synthetic_corpus, tmp_path,
                                             capsys):
  albums, _ = computed_split(synthetic_corpus)
  files = {name: list(ids) for name, ids in albums.items()}
  left_out = files['train'].pop(0)
  files['test'].append(EXTRA)
  release = tmp_path / 'splits'
  write_set(release, files, 'mumu')
  out = tmp_path / 'shards'
  assert cli.main(prepare_cli(synthetic_corpus, out, release)) == 0
  assert 'release splits' in capsys.readouterr().out
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  assert manifest['splits_source'] == 'release'
  assert manifest['splits_from'] == (
      f'{release}/items_index_{{train,val,test}}_mumu.tsv (album ids)')
  assert manifest['args']['splits'] == os.fspath(release)
  # Exactly the files' ids that the corpus has, in file order.
  want = {**files, 'test': files['test'][:-1]}
  assert splits_lib.read_splits(out / 'splits') == want
  assert manifest['split_sizes'] == {n: len(ids) for n, ids in want.items()}
  for split, ids in want.items():
    assert [r['album_id'] for r in mumu_corpus.read_records(
        out, manifest, 'image', split)] == ids
  # No track-level set: audio follows the albums, no track files.
  assert 'track_split_sizes' not in manifest
  assert not list((out / 'splits').glob('tracks_index_*'))
  # Both sides of the difference are reported, naming the files.
  rows = skipped(out)
  assert set(rows) == {('labels', 'test', EXTRA),
                       ('metadata', '', left_out)}
  assert rows['labels', 'test', EXTRA]['path'] == os.fspath(
      release / 'items_index_test_mumu.tsv')
  assert rows['labels', 'test', EXTRA]['reason'] == (
      'album is in items_index_test_mumu.tsv but not in '
      'MuMu_dataset_multi-label.csv')
  assert rows['metadata', '', left_out]['path'] == os.fspath(
      release / 'items_index_{train,val,test}_mumu.tsv')
  assert ('in none of items_index_{train,val,test}_mumu.tsv' in
          rows['metadata', '', left_out]['reason'])
  n_albums = sum(map(len, albums.values()))
  assert manifest['metadata']['counts']['albums'] == {
      'read': n_albums, 'kept': n_albums - 1, 'skipped': 1}
  assert manifest['skipped']['metadata'] == 1
  assert manifest['skipped']['labels'] == 1
  # The same files again: the same run.
  assert prepare_job.is_complete(out, manifest['args'])


def test_a_track_level_set_moves_audio(synthetic_corpus, tmp_path):
  albums, read = computed_split(synthetic_corpus)
  track_split = {name: [i.item_id for i in items]
                 for name, items in read.items['audio'].items()}
  album_of = {i.item_id: i.keys['album_id']
              for items in read.items['audio'].values() for i in items}
  moved = track_split['train'].pop(0)
  track_split['test'].append(moved)
  dropped = track_split['train'].pop(0)
  track_split['val'].append('TRNOTINCORPUS')
  release = tmp_path / 'splits'
  write_set(release, albums, 'MuMu-albums')
  write_set(release, track_split, 'MuMu-tracks')
  skips = prepare_corpus.SkipLog()
  corpus = release_items.load_mumu_corpus(synthetic_corpus, splits=release,
                                          skips=skips)
  assert corpus.splits == albums
  assert corpus.splits_source == 'release'
  assert corpus.splits_from == (
      f'{release}/items_index_{{train,val,test}}_MuMu-albums.tsv (album ids)'
      f'; {release}/items_index_{{train,val,test}}_MuMu-tracks.tsv '
      '(track ids)')
  # Audio follows the track-level set, in its file order; the moved track
  # keeps its album and labels.
  kept_tracks = {**track_split, 'val': track_split['val'][:-1]}
  assert corpus.track_splits == kept_tracks
  audio = {name: [i.item_id for i in items]
           for name, items in corpus.items['audio'].items()}
  assert audio == kept_tracks
  item = next(i for i in corpus.items['audio']['test'] if i.item_id == moved)
  assert item.keys == {'track_id': moved, 'album_id': album_of[moved]}
  assert album_of[moved] in albums['train']
  # Album modalities still follow the album-level set.
  for modality in ('image', 'text'):
    assert {name: [i.item_id for i in items] for name, items in
            corpus.items[modality].items()} == albums
  rows = {(r[0], r[1], r[2]): r for r in skips.rows}
  assert set(rows) == {('labels', 'val', 'TRNOTINCORPUS'),
                       ('metadata', '', dropped)}
  assert rows['labels', 'val', 'TRNOTINCORPUS'][3] == os.fspath(
      release / 'items_index_val_MuMu-tracks.tsv')
  assert rows['metadata', '', dropped][4].startswith(
      f'track of album {album_of[dropped]!r} is in '
      'MuMu_dataset_multi-label.csv but in none of '
      'items_index_{train,val,test}_MuMu-tracks.tsv')
  n_tracks = len(album_of)
  assert corpus.metadata['tracks'] == {'read': n_tracks,
                                       'kept': n_tracks - 1, 'skipped': 1}

  # Prepared: the manifest and OUT/splits record both sets.
  out = tmp_path / 'shards'
  manifest = prepare_job.prepare(
      'mumu', synthetic_corpus, out,
      prepare_job.Settings(splits=release, image_size=16, workers=1,
                           windows=False), progress=False)
  assert manifest['splits_source'] == 'release'
  assert splits_lib.read_splits(out / 'splits') == albums
  assert {name: (out / 'splits' / f'tracks_index_{name}.tsv').read_text()
          .split() for name in splits_lib.SPLIT_NAMES} == kept_tracks
  assert manifest['track_split_sizes'] == {
      name: len(ids) for name, ids in kept_tracks.items()}
  assert manifest['metadata']['counts']['tracks'] == corpus.metadata['tracks']
  assert {name: [r['track_id'] for r in mumu_corpus.read_records(
      out, manifest, 'audio', name)] for name in kept_tracks} == kept_tracks
  assert prepare_job.is_complete(out, manifest['args'])
  (out / 'splits' / 'tracks_index_val.tsv').unlink()
  assert not prepare_job.is_complete(out, manifest['args'])
  # A run without the track-level set leaves no stale track files.
  (release / 'items_index_train_MuMu-tracks.tsv').unlink()
  (release / 'items_index_val_MuMu-tracks.tsv').unlink(missing_ok=True)
  (release / 'items_index_test_MuMu-tracks.tsv').unlink()
  manifest = prepare_job.prepare(
      'mumu', synthetic_corpus, out,
      prepare_job.Settings(splits=release, image_size=16, workers=1,
                           windows=False), progress=False)
  assert 'track_split_sizes' not in manifest
  assert not list((out / 'splits').glob('tracks_index_*'))


def _load(corpus, splits_dir):
  return release_items.load_mumu_corpus(corpus, splits=splits_dir,
                                        skips=prepare_corpus.SkipLog())


def test_malformed_sets_give_clear_errors(synthetic_corpus, tmp_path,
                                          capsys):
  albums, read = computed_split(synthetic_corpus)
  tracks = {name: [i.item_id for i in items]
            for name, items in read.items['audio'].items()}

  # Train and test but no val: named, and no manifest.
  incomplete = tmp_path / 'incomplete'
  write_set(incomplete, albums, 'mumu')
  (incomplete / 'items_index_val_mumu.tsv').unlink()
  out = tmp_path / 'out'
  assert cli.main(prepare_cli(synthetic_corpus, out, incomplete)) == 2
  err = capsys.readouterr().err
  assert ('items_index_val_mumu.tsv not found beside '
          'items_index_test_mumu.tsv, items_index_train_mumu.tsv' in err)
  assert not (out / layout.MANIFEST_JSON).exists()

  # A set of ids the corpus does not have.
  stranger = tmp_path / 'stranger'
  write_set(stranger, {'train': ['X1'], 'val': ['X2'], 'test': []}, 'msdi')
  with pytest.raises(prepare_corpus.PrepareError,
                     match=r'items_index_\{train,val,test\}_msdi.tsv holds '
                     r'none of the corpus ids \(of 2 ids\)'):
    _load(synthetic_corpus, stranger)

  # Album and track ids in one set.
  mixed = tmp_path / 'mixed'
  write_set(mixed, {**albums, 'test': tracks['test']}, 'mumu')
  n_albums = len(albums['train']) + len(albums['val'])
  with pytest.raises(prepare_corpus.PrepareError,
                     match=f'_mumu.tsv holds {n_albums} album ids and '
                     f'{len(tracks["test"])} track ids'):
    _load(synthetic_corpus, mixed)

  # Two album-level sets.
  twice = tmp_path / 'twice'
  write_set(twice, albums, 'mumu')
  write_set(twice, albums, 'MuMu-albums')
  with pytest.raises(prepare_corpus.PrepareError,
                     match=r'_MuMu-albums.tsv and .*_mumu.tsv both hold '
                     'album ids'):
    _load(synthetic_corpus, twice)

  # A track-level set alone: the album modalities have no split.
  tracks_only = tmp_path / 'tracks_only'
  write_set(tracks_only, tracks, 'MuMu-tracks')
  with pytest.raises(prepare_corpus.PrepareError,
                     match='hold track ids but no set holds album ids'):
    _load(synthetic_corpus, tracks_only)

  # The authors' files beside our own: which is meant is not guessed.
  both = tmp_path / 'both'
  write_set(both, albums, 'mumu')
  splits_lib.write_splits(albums, both)
  with pytest.raises(prepare_corpus.PrepareError,
                     match="holds the authors' split files .* and our own"):
    _load(synthetic_corpus, both)

  # An id in two files of the set: the file and line.
  repeated = tmp_path / 'repeated'
  write_set(repeated, {**albums, 'test': albums['test'] + albums['train'][:1]},
            'mumu')
  with pytest.raises(release_format.DataFormatError,
                     match=r'items_index_test_mumu.tsv, line 2: .* is already '
                     r'in items_index_train_mumu.tsv line 1'):
    _load(synthetic_corpus, repeated)


MSDI_HEADER = ('msd_track_id', 'genre', 'album_index', 'set',
               'msd_artist_id', 'image_url')


def test_msdi_authors_files(tmp_path):
  root = tmp_path / 'corpus'
  root.mkdir()
  rows = [('TRA', 'Rock', 'train'), ('TRB', 'Jazz', 'train'),
          ('TRC', 'Pop', 'val'), ('TRD', 'Rock', 'test'),
          ('TRE', 'Jazz', 'test')]
  (root / layout.MSDI_TSV).write_text('\n'.join(
      ['\t'.join(MSDI_HEADER)] +
      ['\t'.join((t, g, str(i), s, f'AR{i}', ''))
       for i, (t, g, s) in enumerate(rows)]) + '\n')
  release = tmp_path / 'splits'
  write_set(release, {'train': ['TRB', 'TRA'], 'val': ['TRC', 'TRX'],
                      'test': ['TRD']}, 'msdi')
  skips = prepare_corpus.SkipLog()
  corpus = release_items.load_msdi_corpus(root, splits=release,
                                          skips=skips)
  # The files, not the `set` column: TRE is in none of them.
  assert corpus.splits == {'train': ['TRB', 'TRA'], 'val': ['TRC'],
                           'test': ['TRD']}
  assert corpus.splits_source == 'release'
  assert [(r[0], r[1], r[2], os.path.basename(r[3])) for r in skips.rows] == [
      ('metadata', '', 'TRE', 'items_index_{train,val,test}_msdi.tsv'),
      ('labels', 'val', 'TRX', 'items_index_val_msdi.tsv')]
  assert corpus.metadata['tracks'] == {'read': 5, 'kept': 4, 'skipped': 1}
  # One set of track ids only.
  write_set(release, {'train': ['TRA'], 'val': [], 'test': []}, 'other')
  with pytest.raises(prepare_corpus.PrepareError,
                     match='both hold track ids'):
    release_items.load_msdi_corpus(root, splits=release,
                                   skips=prepare_corpus.SkipLog())

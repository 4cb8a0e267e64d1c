"""Tests of the artist-filtered splits and the `mmgenre splits` command."""

import csv
import os

import pytest

from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax import cli

NAMES = splits_lib.SPLIT_NAMES


@pytest.fixture(scope='module')
def genuine(mumu_release_dir):
  return mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv')


def assert_mumu_guarantees(dataset, splits):
  """Checks the split rules straight from the albums, not the group keys."""
  items = [a for name in NAMES for a in splits[name]]
  assert sorted(items) == sorted(dataset.albums)  # Every album exactly once.
  for attribute in ('artist_ids', 'track_ids'):
    owner = {}
    for name in NAMES:
      for album_id in splits[name]:
        for value in getattr(dataset.albums[album_id], attribute):
          assert owner.setdefault(value, name) == name, (attribute, value)
  mbids = {}
  for name in NAMES:
    for album_id in splits[name]:
      mbid = dataset.albums[album_id].album_mbid
      assert mbids.setdefault(mbid, name) == name, mbid


def test_genuine_mumu_split(genuine):
  splits = splits_lib.mumu_splits(genuine, seed=0)
  assert_mumu_guarantees(genuine, splits)
  for name, target in zip(NAMES, splits_lib.MUMU_PROPORTIONS):
    fraction = len(splits[name]) / len(genuine.albums)
    assert abs(fraction - target) <= 0.02, (name, fraction)
  # Each split keeps the CSV order of its albums.
  order = {album_id: i for i, album_id in enumerate(genuine.albums)}
  for name in NAMES:
    positions = [order[a] for a in splits[name]]
    assert positions == sorted(positions)
  # The 297 'Various Artists' compilations form one component, in train.
  various = [a.album_id for a in genuine.albums.values()
             if splits_lib.VARIOUS_ARTISTS_MBID in a.artist_ids]
  assert len(various) == 297
  assert set(various) <= set(splits['train'])


def test_genuine_mumu_split_is_deterministic_by_seed(genuine):
  first = splits_lib.mumu_splits(genuine, seed=0)
  assert splits_lib.mumu_splits(genuine, seed=0) == first
  other = splits_lib.mumu_splits(genuine, seed=1)
  assert_mumu_guarantees(genuine, other)
  assert set(other['test']) != set(first['test'])
  assert set(other['val']) != set(first['val'])


def write_mumu_csv(path, rows):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(mumu.MUMU_COLUMNS)
    for album, track, artist, genres in rows:
      writer.writerow([album, f'mbid-{album}', track, f'rec-{track}', artist,
                       genres])
  return path


def test_multi_artist_album_stays_with_its_artists(tmp_path):
  # BIG has tracks by X and Y; Y also has SOLO_Y, X also has SOLO_X. A hundred
  # single-album artists give the splits room, so the three-album component
  # is small enough to land in val or test too.
  rows = [('BIG', 'T1', 'X', 'Rock'), ('BIG', 'T2', 'Y', 'Rock'),
          ('SOLO_Y', 'T3', 'Y', 'Pop'), ('SOLO_X', 'T4', 'X', 'Jazz')]
  rows += [(f'F{i}', f'TF{i}', f'artist{i}', 'Rock') for i in range(100)]
  dataset = mumu.load_mumu(write_mumu_csv(tmp_path / 'mumu.csv', rows))
  assert dataset.albums['BIG'].artist_ids == ('X', 'Y')
  components = splits_lib.connected_components(
      splits_lib.mumu_item_groups(dataset))
  assert ['BIG', 'SOLO_Y', 'SOLO_X'] in components
  assert len(components) == 101
  homes = set()
  for seed in range(12):
    splits = splits_lib.mumu_splits(dataset, seed=seed)
    assert_mumu_guarantees(dataset, splits)
    where = {a: name for name in NAMES for a in splits[name]}
    assert where['BIG'] == where['SOLO_Y'] == where['SOLO_X']
    homes.add(where['BIG'])
    sizes = [len(splits[n]) for n in NAMES]
    assert abs(sizes[0] - 83.2) <= 3 and min(sizes[1:]) >= 9, sizes
  assert homes - {'train'}, 'the component never left train'


def test_connected_components_chain():
  groups = {'a': ['k1'], 'b': ['k1', 'k2'], 'c': ['k2'], 'd': ['k3'], 'e': []}
  assert splits_lib.connected_components(groups) == [['a', 'b', 'c'], ['d'],
                                                     ['e']]
  # Joined only by the last item: both earlier roots must merge.
  groups = {'a': ['k1'], 'b': ['k2'], 'c': ['k1', 'k2']}
  assert splits_lib.connected_components(groups) == [['a', 'b', 'c']]


def test_small_inputs_fill_every_split():
  groups = {f'i{k}': [f'artist:{k}'] for k in range(10)}
  splits = splits_lib.artist_filtered_split(groups, (0.8, 0.1, 0.1), seed=3)
  assert [len(splits[n]) for n in NAMES] == [8, 1, 1]
  # A component bigger than the small splits can take goes to train.
  groups.update({f'v{k}': ['artist:various'] for k in range(5)})
  for seed in range(5):
    splits = splits_lib.artist_filtered_split(groups, (0.6, 0.2, 0.2), seed)
    assert {f'v{k}' for k in range(5)} <= set(splits['train'])
    assert [len(splits[n]) for n in NAMES] == [9, 3, 3]
  assert splits_lib.artist_filtered_split({}, (0.8, 0.1, 0.1)) == {
      'train': [], 'val': [], 'test': []}


@pytest.mark.parametrize('proportions', [(0.8, 0.1), (0.8, 0.3, 0.1),
                                         (0.9, -0.1, 0.2), (0, 0.5, 0.5)])
def test_bad_proportions(proportions):
  with pytest.raises(ValueError, match='proportions'):
    splits_lib.artist_filtered_split({'a': []}, proportions)


def write_msdi_tsv(path, n_tracks=400):
  """Tracks by 120 artists, 1-3 tracks per album, some albums with 2 artists."""
  lines = ['\t'.join(msdi.MSDI_COLUMNS)]
  for i in range(n_tracks):
    album = i // 2 if i % 5 else i // 3
    artist = (album * 7) % 120 if i % 11 else (i * 13) % 120
    genre = msdi.MSDI_GENRES[album % 15]
    lines.append('\t'.join([f'TR{i:05d}', genre, str(album), 'train',
                            f'AR{artist:03d}', f'covers/{album}.jpg']))
  path.write_text('\n'.join(lines) + '\n')
  return path


def test_msdi_split(tmp_path):
  dataset = msdi.load_msdi(write_msdi_tsv(tmp_path / 'MSD-I_dataset.tsv'))
  splits = splits_lib.msdi_splits(dataset, seed=0)
  items = [t for n in NAMES for t in splits[n]]
  assert sorted(items) == sorted(dataset.tracks)
  for attribute in ('artist_id', 'album_index'):
    owner = {}
    for name in NAMES:
      for track_id in splits[name]:
        value = getattr(dataset.tracks[track_id], attribute)
        assert owner.setdefault(value, name) == name, (attribute, value)
  components = splits_lib.connected_components(
      splits_lib.msdi_item_groups(dataset))
  assert max(len(c) for c in components) > 2  # Albums join artists.
  for name, target in zip(NAMES, splits_lib.MSDI_PROPORTIONS):
    assert abs(len(splits[name]) / len(items) - target) <= 0.05
  assert splits_lib.msdi_splits(dataset, seed=0) == splits
  assert splits_lib.msdi_splits(dataset, seed=1) != splits


def test_write_and_read_splits(tmp_path):
  splits = {'train': ['a', 'b', 'c'], 'val': ['d'], 'test': []}
  out = tmp_path / 'deep' / 'splits'
  splits_lib.write_splits(splits, out)
  assert sorted(os.listdir(out)) == [
      'items_index_test.tsv', 'items_index_train.tsv', 'items_index_val.tsv']
  assert (out / 'items_index_train.tsv').read_text() == 'a\nb\nc\n'
  assert (out / 'items_index_test.tsv').read_text() == ''
  assert splits_lib.read_splits(out) == splits
  # Overwriting replaces the files whole.
  splits_lib.write_splits({'train': ['x'], 'val': [], 'test': ['y']}, out)
  assert splits_lib.read_splits(out) == {'train': ['x'], 'val': [],
                                         'test': ['y']}
  with pytest.raises(ValueError, match="'a' is in split 'train' and in split"):
    splits_lib.write_splits({'train': ['a'], 'val': ['a'], 'test': []}, out)
  with pytest.raises(ValueError, match="no 'test' entry"):
    splits_lib.write_splits({'train': ['a'], 'val': []}, out)
  assert splits_lib.read_splits(out) == {'train': ['x'], 'val': [],
                                         'test': ['y']}


def test_read_splits_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='items_index_train.tsv'):
    splits_lib.read_splits(tmp_path)
  (tmp_path / 'items_index_train.tsv').write_text('a\nb\n')
  (tmp_path / 'items_index_val.tsv').write_text('c\n')
  (tmp_path / 'items_index_test.tsv').write_text('d\nb\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'items_index_test.tsv, line 2: .*'
                     r'items_index_train.tsv line 2'):
    splits_lib.read_splits(tmp_path)


def test_cli_mumu_round_trip(mumu_release_dir, genuine, tmp_path, capsys):
  out = tmp_path / 'splits'
  rc = cli.main([
      'splits', '--dataset', 'mumu', '--metadata',
      str(mumu_release_dir / 'MuMu_dataset_single-label.csv'), '--labels',
      str(mumu_release_dir / 'genre_labels_MuMu.tsv'), '--out', str(out),
      '--seed', '0'])
  assert rc == 0
  written = splits_lib.read_splits(out)
  assert written == splits_lib.mumu_splits(genuine, seed=0)
  stdout = capsys.readouterr().out
  assert 'train' in stdout and '80.' in stdout and 'artists' in stdout
  assert [f for f in os.listdir(out) if f.endswith('.tmp')] == []


def test_cli_msdi_round_trip(tmp_path, capsys):
  metadata = write_msdi_tsv(tmp_path / 'MSD-I_dataset.tsv')
  out = tmp_path / 'splits'
  assert cli.main(['splits', '--dataset', 'msdi', '--metadata', str(metadata),
                   '--out', str(out), '--seed', '2']) == 0
  dataset = msdi.load_msdi(metadata)
  assert splits_lib.read_splits(out) == splits_lib.msdi_splits(dataset, 2)
  assert 'val' in capsys.readouterr().out


def test_cli_msdi_split_needs_no_set_column(tmp_path):
  # A computed split ignores the release split (the `set` column): the
  # column may be absent or hold values that are not sets.
  metadata = write_msdi_tsv(tmp_path / 'MSD-I_dataset.tsv')
  assert cli.main(['splits', '--dataset', 'msdi', '--metadata', str(metadata),
                   '--out', str(tmp_path / 'with'), '--seed', '1']) == 0
  rows = [line.split('\t') for line in metadata.read_text().splitlines()]
  at = rows[0].index('set')
  no_set = tmp_path / 'no_set.tsv'
  no_set.write_text(''.join('\t'.join(r[:at] + r[at + 1:]) + '\n'
                            for r in rows))
  bad_sets = tmp_path / 'bad_sets.tsv'
  bad_sets.write_text(''.join(
      '\t'.join(r[:at] + [['dev', ''][i % 2] if i else r[at]] + r[at + 1:])
      + '\n' for i, r in enumerate(rows)))
  for name, path in (('without', no_set), ('bad', bad_sets)):
    assert cli.main(['splits', '--dataset', 'msdi', '--metadata', str(path),
                     '--out', str(tmp_path / name), '--seed', '1']) == 0
    assert splits_lib.read_splits(tmp_path / name) == splits_lib.read_splits(
        tmp_path / 'with'), name


def test_msdi_release_sets_are_the_split_names():
  assert msdi.MSDI_SETS == NAMES


def test_cli_reports_malformed_file(tmp_path, capsys):
  bad = tmp_path / 'broken.csv'
  bad.write_text('amazon_id,genres\nA1,Rock\n')
  rc = cli.main(['splits', '--dataset', 'mumu', '--metadata', str(bad),
                 '--out', str(tmp_path / 'out')])
  assert rc == 2
  err = capsys.readouterr().err
  assert 'broken.csv, line 1' in err and 'MSD_track_id' in err
  assert not (tmp_path / 'out').exists()
  rc = cli.main(['splits', '--dataset', 'msdi', '--metadata', str(bad),
                 '--out', str(tmp_path / 'out'), '--labels', 'x.tsv'])
  assert rc == 2
  assert '--dataset mumu' in capsys.readouterr().err


def test_release_sets_read_the_authors_naming(tmp_path):
  # Two sets of the authors' naming, the suffix as shipped, beside files
  # that are not theirs.
  for name, ids in (('train', 'a\nb\n'), ('val', 'c\n'), ('test', '')):
    (tmp_path / f'items_index_{name}_MuMu-albums.tsv').write_text(ids)
    (tmp_path / f'items_index_{name}_tracks.tsv').write_text(f't_{name}\n')
  (tmp_path / 'items_index_train.tsv.bak').write_text('x\n')
  (tmp_path / 'items_index_dev_tracks.tsv').write_text('x\n')
  (tmp_path / 'README').write_text('x\n')
  sets = splits_lib.release_sets(tmp_path)
  assert [s.suffix for s in sets] == ['MuMu-albums', 'tracks']
  albums, tracks = sets
  assert albums.splits == {'train': ['a', 'b'], 'val': ['c'], 'test': []}
  assert tracks.splits == {'train': ['t_train'], 'val': ['t_val'],
                           'test': ['t_test']}
  assert albums.paths['val'] == tmp_path / 'items_index_val_MuMu-albums.tsv'
  assert albums.files == 'items_index_{train,val,test}_MuMu-albums.tsv'
  # Our own files, or none, are no set of the authors'.
  splits_lib.write_splits({'train': ['a'], 'val': [], 'test': []},
                          tmp_path / 'own')
  assert splits_lib.release_sets(tmp_path / 'own') == []
  assert splits_lib.release_sets(tmp_path / 'absent') == []
  # A set lacking a split names its files.
  (tmp_path / 'items_index_val_tracks.tsv').unlink()
  with pytest.raises(release_format.DataFormatError,
                     match=r'items_index_val_tracks.tsv not found beside '
                     r'items_index_test_tracks.tsv, items_index_train_'
                     r'tracks.tsv; .*items_index_\{train,val,test\}_'
                     r'tracks.tsv'):
    splits_lib.release_sets(tmp_path)
  # An id in two files of a set: the file and line.
  (tmp_path / 'items_index_val_tracks.tsv').write_text('t_train\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'items_index_val_tracks.tsv, line 1: '
                     r"'t_train' is already in items_index_train_tracks.tsv"):
    splits_lib.release_sets(tmp_path)


def test_track_split_files_have_their_own_prefix(tmp_path):
  splits_lib.write_splits({'train': ['t1'], 'val': ['t2'], 'test': []},
                          tmp_path, splits_lib.TRACKS_PREFIX)
  assert sorted(os.listdir(tmp_path)) == [
      'tracks_index_test.tsv', 'tracks_index_train.tsv',
      'tracks_index_val.tsv']
  # No --splits DIR reads them as a set of the authors'.
  assert splits_lib.release_sets(tmp_path) == []

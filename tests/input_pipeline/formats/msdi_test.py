"""Tests of the MSD-I reader on TSVs written in the release format."""

import numpy as np
import pytest

from input_pipeline.formats import msdi
from input_pipeline.formats import release_format

HEADER = '\t'.join(msdi.MSDI_COLUMNS)


def write_tsv(path, rows, header=HEADER):
  path.write_text(header + '\n' + ''.join('\t'.join(r) + '\n' for r in rows))
  return path


def test_reads_release_format(tmp_path):
  path = write_tsv(tmp_path / 'MSD-I_dataset.tsv', [
      ['TRA', 'Rock', '12', 'train', 'ARX', 'covers/12.jpg'],
      ['TRB', 'new age', '13', 'val', 'ARY', 'covers/13.jpg'],
      ['TRC', 'RnB', '12', 'test', 'ARX', 'http://example.org/12.jpg'],
      ['TRD', 'Blues', '14', 'train', 'ARZ', ''],
  ])
  dataset = msdi.load_msdi(path)
  assert list(dataset.tracks) == ['TRA', 'TRB', 'TRC', 'TRD']
  # MSDI_GENRES order, restricted to the genres present.
  assert dataset.genres == ('Blues', 'New Age', 'RnB', 'Rock')
  track = dataset.tracks['TRB']
  assert track == msdi.MSDITrack(track_id='TRB', genre='New Age',
                                 album_index='13', set='val', artist_id='ARY',
                                 image_url='covers/13.jpg')
  np.testing.assert_array_equal(
      dataset.label_vector(['TRD', 'TRA', 'TRC']), [0, 3, 2])
  assert dataset.release_splits() == {
      'train': ['TRA', 'TRD'], 'val': ['TRB'], 'test': ['TRC']}
  with pytest.raises(KeyError, match='TRX'):
    dataset.label_vector(['TRX'])


def test_columns_found_by_name(tmp_path):
  # Reordered columns plus an extra leading index column are fine.
  header = '\t'.join(['', 'set', 'genre', 'msd_track_id', 'msd_artist_id',
                      'album_index', 'image_url'])
  path = write_tsv(tmp_path / 'reordered.tsv',
                   [['0', 'test', 'Jazz', 'TRA', 'ARX', '3', 'c.jpg']],
                   header=header)
  track = msdi.load_msdi(path).tracks['TRA']
  assert (track.set, track.genre, track.album_index, track.artist_id) == (
      'test', 'Jazz', '3', 'ARX')


def test_genre_constants():
  assert len(msdi.MSDI_GENRES) == 15
  assert msdi.MSDI_GENRES[0] == 'Blues' and msdi.MSDI_GENRES[-1] == 'World'


@pytest.mark.parametrize('rows, header, match', [
    ([['TRA', 'Rock', '1', 'train', 'AR']], HEADER.replace('\timage_url', ''),
     r"bad.tsv, line 1: missing column.*'image_url'"),
    ([['TRA', 'Disco', '1', 'train', 'AR', 'x']], HEADER,
     r"bad.tsv, line 2, column 'genre': unknown genre 'Disco'"),
    ([['TRA', 'Rock', '1', 'dev', 'AR', 'x']], HEADER,
     r"bad.tsv, line 2, column 'set': unknown set 'dev'"),
    ([['TRA', 'Rock', '1', 'train', 'AR', 'x'],
      ['TRA', 'Pop', '2', 'test', 'AS', 'y']], HEADER,
     r"bad.tsv, line 3, column 'msd_track_id'.*line 2"),
    ([['TRA', 'Rock', '1', 'train', 'AR', 'x'], ['TRB', 'Rock', '1']],
     HEADER, r'bad.tsv, line 3: 3 fields'),
    ([['', 'Rock', '1', 'train', 'AR', 'x']], HEADER,
     r"bad.tsv, line 2, column 'msd_track_id': empty"),
    ([['TRA,Rock,1,train,AR,x']], HEADER.replace('\t', ','),
     r'bad.tsv, line 1: .*tab-separated'),
])
def test_malformed_file_errors(tmp_path, rows, header, match):
  path = write_tsv(tmp_path / 'bad.tsv', rows, header=header)
  with pytest.raises(release_format.DataFormatError, match=match):
    msdi.load_msdi(path)


def test_unknown_genre_rows_can_be_left_out(tmp_path):
  path = write_tsv(tmp_path / 'MSD-I_dataset.tsv', [
      ['TRA', 'Rock', '1', 'train', 'AR1', 'a.jpg'],
      # Left out before any other check: its extra field is not an error.
      ['TRB', 'Polka', '2', 'val', 'AR2', 'b.jpg', 'extra'],
      ['TRC', ' R&B ', '3', 'test', 'AR3', 'c.jpg'],
      ['TRD', 'jazz', '4', 'test', 'AR4', 'd.jpg'],
  ])
  with pytest.raises(release_format.DataFormatError, match='line 3: 7 fields'):
    msdi.load_msdi(path)
  dropped = []
  dataset = msdi.load_msdi(path, on_unknown_genre=lambda *row:
                           dropped.append(row))
  assert dropped == [('TRB', 'Polka', 3), ('TRC', 'R&B', 4)]
  assert list(dataset.tracks) == ['TRA', 'TRD']
  assert dataset.genres == ('Jazz', 'Rock')
  # Other defects of the kept rows are still errors, naming the file.
  bad = write_tsv(tmp_path / 'bad.tsv', [
      ['TRA', 'Polka', '1', 'train', 'AR1', 'a.jpg'],
      ['TRB', 'Rock', '2', 'dev', 'AR2', 'b.jpg']])
  with pytest.raises(release_format.DataFormatError,
                     match=r"bad.tsv, line 3, column 'set'"):
    msdi.load_msdi(bad, on_unknown_genre=lambda *row: None)


def test_bad_and_repeated_rows_can_be_left_out(tmp_path):
  path = tmp_path / 'MSD-I_dataset.tsv'
  path.write_bytes('\n'.join([
      HEADER,
      'TRA\tRock\t1\ttrain\tAR1\ta.jpg',
      'TRA\tRock\t1\ttrain\tAR1\ta.jpg',     # the same row
      'TRA\tRock\t1\ttrain\tAR9\ta.jpg',     # another artist
      'TRB\tPop\t2\tdev\tAR2\tb.jpg',        # unknown set
      'TRC\tPolka\t3\ttest\tAR3\tc.jpg',     # unknown genre
      'TRD\tJazz\t4',                        # 3 fields
      'TRE\tJazz\t5\tval\tAR5\te.jpg']).encode() +
                   b'\nTRF\tJazz\t6\ttest\tAR\xff\tf.jpg\n')
  unknown, bad = [], []
  dataset = msdi.load_msdi(path, on_unknown_genre=lambda *r: unknown.append(r),
                           on_bad_row=lambda *r: bad.append(r))
  assert list(dataset.tracks) == ['TRA', 'TRE']
  assert dataset.tracks['TRA'].artist_id == 'AR1'
  assert (dataset.rows, dataset.skipped_rows) == (8, 6)
  assert unknown == [('TRC', 'Polka', 6)]
  assert [(track, line) for track, line, _ in bad] == [
      ('TRA', 3), ('TRA', 4), ('TRB', 5), ('TRD', 7), ('TRF', 9)]
  assert bad[0][2] == ("column 'msd_track_id': duplicate of line 2 (same MSD "
                       'track id, the same row); the first row is the one '
                       'used, remove this one')
  assert ("(same MSD track id under another artist: msd_artist_id 'AR9', "
          "line 2 has 'AR1')" in bad[1][2])
  assert bad[2][2].startswith("column 'set': unknown set 'dev'")
  assert bad[3][2].startswith('3 fields where the header has 6')
  assert bad[4][2].startswith("column 'msd_artist_id': invalid UTF-8 "
                              '(byte 0xff at character 3)')
  # Without on_bad_row, the first of them is an error naming file and line.
  with pytest.raises(release_format.DataFormatError,
                     match=r"MSD-I_dataset.tsv, line 3, column "
                     r"'msd_track_id': duplicate of line 2"):
    msdi.load_msdi(path, on_unknown_genre=lambda *r: None)


def test_release_split_is_the_set_column_row_for_row(tmp_path):
  rows = [['TRA', 'Rock', '1', 'train', 'AR1', 'a.jpg'],
          ['TRB', 'Jazz', '2', 'Test', 'AR2', 'b.jpg'],
          ['TRC', 'Pop', '3', ' val ', 'AR3', 'c.jpg'],
          ['TRD', 'Rock', '4', 'validation', 'AR4', 'd.jpg'],
          ['TRE', 'Jazz', '5', 'TRAIN', 'AR5', 'e.jpg'],
          ['TRF', 'Pop', '6', 'test', 'AR6', 'f.jpg']]
  dataset = msdi.load_msdi(write_tsv(tmp_path / 'MSD-I_dataset.tsv', rows))
  assert dataset.has_set
  # The release's names are ours (input_pipeline.formats.splits.SPLIT_NAMES);
  # case, spaces and 'validation' are forgiven.
  assert msdi.MSDI_SETS == ('train', 'val', 'test')
  want = {'train': [], 'val': [], 'test': []}
  for row in rows:
    want[msdi.canonical_set(row[3])].append(row[0])
  assert dataset.release_splits() == want == {
      'train': ['TRA', 'TRE'], 'val': ['TRC', 'TRD'], 'test': ['TRB', 'TRF']}
  assert [t.set for t in dataset.tracks.values()] == [
      'train', 'test', 'val', 'val', 'train', 'test']
  for bad in ('dev', 'training', 'vals', ''):
    with pytest.raises(ValueError):
      msdi.canonical_set(bad)


def test_set_column_is_needed_only_for_the_release_split(tmp_path):
  header = '\t'.join(c for c in msdi.MSDI_COLUMNS if c != 'set')
  path = write_tsv(tmp_path / 'MSD-I_dataset.tsv',
                   [['TRA', 'Rock', '1', 'AR1', 'a.jpg'],
                    ['TRB', 'Jazz', '2', 'AR2', 'b.jpg']], header=header)
  with pytest.raises(release_format.DataFormatError,
                     match=r"MSD-I_dataset.tsv, line 1: the header has no "
                     r"'set' column.*--splits compute"):
    msdi.load_msdi(path)
  dataset = msdi.load_msdi(path, require_set=False)
  assert list(dataset.tracks) == ['TRA', 'TRB'] and not dataset.has_set
  assert {t.set for t in dataset.tracks.values()} == {''}
  with pytest.raises(ValueError, match="no 'set' column"):
    dataset.release_splits()
  # A set column with bad values: bad rows for the release split, read as
  # '' (and kept) for another split.
  path = write_tsv(tmp_path / 'bad_sets.tsv', [
      ['TRA', 'Rock', '1', 'train', 'AR1', 'a.jpg'],
      ['TRB', 'Jazz', '2', 'dev', 'AR2', 'b.jpg'],
      ['TRC', 'Pop', '3', '', 'AR3', 'c.jpg']])
  bad = []
  dataset = msdi.load_msdi(path, on_bad_row=lambda *r: bad.append(r))
  assert list(dataset.tracks) == ['TRA']
  assert [(track, line) for track, line, _ in bad] == [('TRB', 3), ('TRC', 4)]
  assert bad[0][2] == ("column 'set': unknown set 'dev'; expected one of "
                       "['train', 'val', 'test'] (the release split)")
  assert bad[1][2] == "column 'set': empty value; every row needs one"
  lenient = msdi.load_msdi(path, require_set=False)
  assert [t.set for t in lenient.tracks.values()] == ['train', '', '']
  with pytest.raises(ValueError, match="'TRB' has no valid 'set'"):
    lenient.release_splits()

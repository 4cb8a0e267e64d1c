"""Tests of the MuMu readers on the genuine release files and small CSVs."""

import csv
import gzip
import json
import logging

import numpy as np
import pytest

from input_pipeline.formats import mumu
from input_pipeline.formats import release_format
from input_pipeline.features import text

HEADER = list(mumu.MUMU_COLUMNS)


def write_csv(path, rows, header=HEADER):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return path


def row(album, track, artist, genres, mbid=None):
  return [album, mbid or f'mbid-{album}', track, f'rec-{track}', artist,
          genres]


@pytest.fixture(scope='module')
def genuine(mumu_release_dir):
  return mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv')


def test_label_list_without_trailing_newline(mumu_release_dir):
  path = mumu_release_dir / 'genre_labels_MuMu.tsv'
  assert not path.read_bytes().endswith(b'\n')
  labels = mumu.read_label_list(path)
  assert len(labels) == 250 == len(set(labels))
  assert labels[:2] == ['Acid Jazz', 'Acoustic Blues']
  assert labels[-1] == 'World Music'
  assert labels == sorted(labels)


def test_genuine_counts(genuine):
  assert len(genuine.albums) == 2321
  assert len(genuine.track_album) == 12087
  assert sum(len(a.track_ids) for a in genuine.albums.values()) == 12087
  assert len(genuine.artist_ids) == 1755
  assert genuine.num_labels == 16
  assert genuine.unknown_labels == {}
  assert genuine.dropped_albums == ()
  # Vocabulary follows the label list's (alphabetical) order.
  assert genuine.labels[:3] == ('Alternative Rock', 'Blues', 'Classical')
  matrix = genuine.label_matrix(list(genuine.albums))
  assert matrix.shape == (2321, 16) and matrix.dtype == np.uint8
  np.testing.assert_array_equal(matrix.sum(axis=1), 1)
  counts = dict(zip(genuine.labels, matrix.sum(axis=0).tolist()))
  # Per-genre album counts of the release file (tests/data/mumu/PROVENANCE.md).
  assert counts['Dance & Electronic'] == 518
  assert counts['Rock'] == 391
  assert counts['Gospel'] == 3
  first = next(iter(genuine.albums.values()))
  assert first.album_id == 'B0018ZB6ZO'
  assert first.album_mbid == '0164b5ce-42f8-46bf-b140-61ecd2ed449e'
  assert first.track_ids[:2] == ('TRYDUXK12903CE0C37', 'TRGWXYX128F426E27F')
  assert first.artist_ids == ('7434b85a-4a06-42ba-9e1d-9c568c044842',)
  assert first.labels == ('Dance & Electronic',)
  assert genuine.track_album['TRGWXYX128F426E27F'] == 'B0018ZB6ZO'


def test_genuine_without_label_list(mumu_release_dir):
  dataset = mumu.load_mumu(mumu_release_dir / 'MuMu_dataset_single-label.csv')
  assert len(dataset.albums) == 2321
  assert list(dataset.labels) == sorted(dataset.labels)
  assert len(dataset.labels) == 16


def test_min_albums_filter(mumu_release_dir):
  dataset = mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv',
      min_albums=20)
  # Gospel (3), Classical (13) and Reggae (18) are on fewer than 20 albums;
  # New Age has exactly 20 and stays.
  assert 'New Age' in dataset.labels
  assert not {'Gospel', 'Classical', 'Reggae'} & set(dataset.labels)
  assert dataset.num_labels == 13
  assert len(dataset.dropped_albums) == 3 + 13 + 18
  assert len(dataset.albums) == 2321 - 34
  # min_albums=0 keeps all 250 listed labels, even unused ones.
  everything = mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv', min_albums=0)
  assert everything.num_labels == 250
  assert everything.label_matrix(['B0018ZB6ZO']).sum() == 1


def test_multi_artist_multi_label_album(tmp_path):
  path = write_csv(tmp_path / 'mumu.csv', [
      row('A1', 'T1', 'artist-x', 'Rock,Pop'),
      row('A1', 'T2', 'artist-y', 'Rock,Pop'),
      row('A2', 'T3', 'artist-y', 'Jazz, Vocal Jazz'),
      row('A3', 'T4', 'artist-z', 'Pop'),
  ])
  dataset = mumu.load_mumu(path)
  assert list(dataset.albums) == ['A1', 'A2', 'A3']
  assert dataset.albums['A1'].artist_ids == ('artist-x', 'artist-y')
  assert dataset.albums['A1'].track_ids == ('T1', 'T2')
  assert dataset.labels == ('Jazz', 'Pop', 'Rock', 'Vocal Jazz')
  assert dataset.albums['A1'].labels == ('Pop', 'Rock')
  np.testing.assert_array_equal(
      dataset.label_matrix(['A2', 'A1']), [[1, 0, 0, 1], [0, 1, 1, 0]])
  # Pop is on two albums; the others on one.
  filtered = mumu.load_mumu(path, min_albums=2)
  assert filtered.labels == ('Pop',)
  assert list(filtered.albums) == ['A1', 'A3']
  assert filtered.dropped_albums == ('A2',)
  assert 'T3' not in filtered.track_album
  with pytest.raises(KeyError, match='A2'):
    filtered.label_matrix(['A2'])


def test_unknown_labels_are_counted_and_named(tmp_path, caplog):
  path = write_csv(tmp_path / 'mumu.csv', [
      row('A1', 'T1', 'x', 'Rock,Shoegaze'),
      row('A2', 'T2', 'y', 'Shoegaze'),
      row('A3', 'T3', 'z', 'Pop,Chillwave'),
  ])
  labels = tmp_path / 'labels.tsv'
  labels.write_text('Pop\nRock')
  with caplog.at_level(logging.WARNING):
    dataset = mumu.load_mumu(path, labels_path=labels)
  assert dataset.unknown_labels == {'Shoegaze': 2, 'Chillwave': 1}
  assert dataset.labels == ('Pop', 'Rock')
  assert dataset.dropped_albums == ('A2',)
  assert 'Shoegaze' in caplog.text and 'Chillwave' in caplog.text
  kept = mumu.load_mumu(path, labels_path=labels, drop_unlabeled=False)
  assert kept.albums['A2'].labels == ()
  np.testing.assert_array_equal(kept.label_matrix(['A2']), [[0, 0]])


def test_taxonomy_expands_to_ancestors(tmp_path):
  path = write_csv(tmp_path / 'mumu.csv', [
      row('A1', 'T1', 'x', 'Vocal Jazz'),
      row('A2', 'T2', 'y', 'Bebop,Rock'),
  ])
  taxonomy = tmp_path / 'taxonomy.tsv'
  taxonomy.write_text('label\tparent\nJazz\t\nVocal Jazz\tJazz\n'
                      'Bebop\tModern Jazz\nModern Jazz\tJazz\nRock\t\n')
  assert mumu.read_taxonomy(taxonomy) == {
      'Jazz': None, 'Vocal Jazz': 'Jazz', 'Bebop': 'Modern Jazz',
      'Modern Jazz': 'Jazz', 'Rock': None}
  dataset = mumu.load_mumu(path, taxonomy_path=taxonomy)
  assert dataset.albums['A1'].labels == ('Jazz', 'Vocal Jazz')
  assert dataset.albums['A2'].labels == ('Bebop', 'Jazz', 'Modern Jazz',
                                         'Rock')
  assert dataset.label_matrix(['A1', 'A2']).sum(axis=0)[
      dataset.labels.index('Jazz')] == 2


def test_taxonomy_errors(tmp_path):
  cycle = tmp_path / 'cycle.tsv'
  cycle.write_text('label\tparent\nA\tB\nB\tA\n')
  with pytest.raises(release_format.DataFormatError, match='cycle.tsv.*cycle'):
    mumu.read_taxonomy(cycle)
  bad_header = tmp_path / 'header.tsv'
  bad_header.write_text('genre\tparent\nA\t\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'header.tsv, line 1: missing column.*label'):
    mumu.read_taxonomy(bad_header)
  repeated = tmp_path / 'repeated.tsv'
  repeated.write_text('label\tparent\nA\t\nA\tB\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r"repeated.tsv, line 3, column 'label'"):
    mumu.read_taxonomy(repeated)


def test_malformed_csv_errors_name_file_line_column(tmp_path):
  missing = write_csv(tmp_path / 'missing.csv', [['A1', 'm', 'T1', 'r', 'x']],
                      header=HEADER[:-1])
  with pytest.raises(release_format.DataFormatError,
                     match=r"missing.csv, line 1: missing column.*'genres'"):
    mumu.load_mumu(missing)
  tsv = tmp_path / 'tabs.csv'
  tsv.write_text('\t'.join(HEADER) + '\nA1\tm\tT1\tr\tx\tRock\n')
  with pytest.raises(release_format.DataFormatError, match='comma-separated'):
    mumu.load_mumu(tsv)
  short = tmp_path / 'short.csv'
  short.write_text(','.join(HEADER) + '\nA1,m,T1,r,x,Rock\nA2,m,T2,r\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'short.csv, line 3: 4 fields'):
    mumu.load_mumu(short)
  empty_id = write_csv(tmp_path / 'empty_id.csv', [row('A1', 'T1', 'x', 'Pop'),
                                                   row('', 'T2', 'x', 'Pop')])
  with pytest.raises(release_format.DataFormatError,
                     match=r"empty_id.csv, line 3, column 'amazon_id'"):
    mumu.load_mumu(empty_id)
  empty = tmp_path / 'empty.csv'
  empty.write_text('')
  with pytest.raises(release_format.DataFormatError, match='empty.csv, line 1: .*empty'):
    mumu.load_mumu(empty)
  with pytest.raises(FileNotFoundError, match='nowhere.csv'):
    mumu.load_mumu(tmp_path / 'nowhere.csv')


def test_label_list_errors(tmp_path):
  repeated = tmp_path / 'labels.tsv'
  repeated.write_text('Pop\nRock\nPop\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'labels.tsv, line 3: .*repeats line 1'):
    mumu.read_label_list(repeated)


def test_load_reviews(tmp_path):
  reviews = [
      {'asin': 'A1', 'reviewText': 'First review.', 'overall': 5.0},
      {'asin': 'A2', 'reviewText': 'Other album.'},
      {'asin': 'A1', 'reviewText': 'Second review.', 'summary': 's'},
      {'asin': 'A1', 'reviewText': ''},
  ]
  path = tmp_path / 'reviews.jsonl'
  path.write_text('\n'.join(json.dumps(r) for r in reviews) + '\n\n')
  assert mumu.load_reviews(path) == {
      'A1': ['First review.', 'Second review.'], 'A2': ['Other album.']}
  assert mumu.load_reviews(path, album_ids=['A2', 'A9']) == {
      'A2': ['Other album.']}
  # Gzipped, and the Python-literal ("loose json") lines of the Amazon dumps.
  gz = tmp_path / 'reviews.json.gz'
  with gzip.open(gz, 'wt', encoding='utf-8') as f:
    f.write("{'asin': 'A3', 'reviewText': 'Loose json.'}\n")
  assert mumu.load_reviews(gz) == {'A3': ['Loose json.']}
  bad = tmp_path / 'bad.jsonl'
  bad.write_text('{"asin": "A1", "reviewText": "ok"}\n{"asin": \n')
  with pytest.raises(release_format.DataFormatError, match=r'bad.jsonl, line 2'):
    mumu.load_reviews(bad)
  no_asin = tmp_path / 'no_asin.jsonl'
  no_asin.write_text('{"reviewText": "ok"}\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r"no_asin.jsonl, line 1, column 'asin'"):
    mumu.load_reviews(no_asin)


def test_bad_rows_are_reported_and_left_out(tmp_path):
  path = tmp_path / 'mumu.csv'
  lines = [','.join(HEADER),
           'A1,mbid-A1,T1,rec-T1,x,Rock',
           'A1,mbid-A1,T2,rec-T2,x,Rock',
           'A1,mbid-A1,T1,rec-T1,x,Rock',         # the same row as line 2
           'A1,mbid-A1,T2,rec-T2,other,Rock',     # T2 under another artist
           'A2,mbid-A2,T3,rec-T3,y',              # 5 fields
           'A3,mbid-A3,T4,rec-T4,z,Pop',
           ',mbid-A4,T5,rec-T5,w,Pop']            # no amazon_id
  data = ('\n'.join(lines) + '\n').encode()
  # A row with bytes that are not UTF-8 (Latin-1 'é').
  data += b'A5,mbid-A5,T6,rec-T6,v,Caf\xe9\n'
  path.write_bytes(data)
  with pytest.raises(release_format.DataFormatError,
                     match=r"mumu.csv, line 6: 5 fields where the header"):
    mumu.load_mumu(path)
  bad = []
  dataset = mumu.load_mumu(path, on_bad_row=lambda *row: bad.append(row))
  assert list(dataset.albums) == ['A1', 'A3']
  # Each track once: the repeats are not a second example.
  assert dataset.albums['A1'].track_ids == ('T1', 'T2')
  assert dataset.albums['A1'].artist_ids == ('x',)
  assert (dataset.rows, dataset.skipped_rows) == (8, 5)
  # Albums left with no row (the row without amazon_id names none).
  assert dataset.lost_albums == {'A2': (6,), 'A5': (9,)}
  assert [(item, line) for item, line, _ in bad] == [
      ('T1', 4), ('T2', 5), ('T3', 6), ('T5', 8), ('T6', 9)]
  reasons = [reason for _, _, reason in bad]
  assert reasons[0] == (
      "column 'MSD_track_id': duplicate of line 2 (same amazon_id and MSD "
      'track id, the same row); the first row is the one used, remove this '
      'one')
  assert ("duplicate of line 3 (same amazon_id and MSD track id under "
          "another artist: artist_mbid 'other', line 3 has 'x')"
          in reasons[1])
  assert reasons[2].startswith('5 fields where the header has 6')
  assert reasons[3] == "column 'amazon_id': empty value; every row needs one"
  assert reasons[4].startswith("column 'genres': invalid UTF-8 (byte "
                              '0xe9 at character 4)')


def test_repeated_rows_are_left_out_even_without_a_report(tmp_path, caplog):
  path = write_csv(tmp_path / 'mumu.csv', [
      row('A1', 'T1', 'x', 'Rock'), row('A1', 'T1', 'x', 'Rock'),
      row('A2', 'T1', 'y', 'Pop')])
  with caplog.at_level(logging.WARNING):
    dataset = mumu.load_mumu(path)
  assert dataset.albums['A1'].track_ids == ('T1',)
  # The same track on another album is kept on both (a reissue).
  assert dataset.albums['A2'].track_ids == ('T1',)
  assert 'repeat the album and track' in caplog.text


def test_bad_review_lines_are_reported_and_the_rest_read(tmp_path):
  path = tmp_path / 'reviews.jsonl'
  path.write_bytes(b'\n'.join([
      json.dumps({'asin': 'A1', 'reviewText': 'One.'}).encode(),
      b'this is not json',
      json.dumps({'reviewText': 'No asin.'}).encode(),
      b'{"asin": "A2", "reviewText": "Caf\xe9"}',
      b"{'asin': 'A2', 'reviewText': 'Loose json.'}",
      b'[' * 50000,  # Deeply nested: json and literal_eval both give up.
      b'["a", "list"]',
      json.dumps({'asin': 'A1', 'reviewText': 'Two.'}).encode()]) + b'\n')
  with pytest.raises(release_format.DataFormatError, match=r'reviews.jsonl, line 2'):
    mumu.load_reviews(path)
  bad = []
  reviews = text.read_reviews(path, on_bad_line=lambda *row: bad.append(row))
  assert reviews.texts == {'A1': ['One.', 'Two.'], 'A2': ['Loose json.']}
  assert (reviews.lines, reviews.skipped_lines) == (8, 5)
  assert [(item, line) for item, line, _ in bad] == [
      ('', 2), ('', 3), ('', 4), ('', 6), ('', 7)]
  assert bad[0][2].startswith('not a JSON object')
  assert bad[1][2] == ("column 'asin': missing or empty asin (the album "
                       'amazon_id)')
  assert bad[2][2].startswith('invalid UTF-8 (byte 0xe9')
  assert bad[4][2] == 'a list, expected a JSON object'
  # Strict, an invalid UTF-8 line names the file and line too.
  latin = tmp_path / 'latin.jsonl'
  latin.write_bytes(b'{"asin": "A1", "reviewText": "ok"}\n'
                    b'{"asin": "A2", "reviewText": "Caf\xe9"}\n')
  with pytest.raises(release_format.DataFormatError,
                     match=r'latin.jsonl, line 2: invalid UTF-8'):
    mumu.load_reviews(latin)

"""Tests of the synthetic corpus generator on tiny corpora it writes."""

import csv
import dataclasses
import json
import re
import shutil

import numpy as np
from PIL import Image
import pytest
import soundfile

from input_pipeline import layout
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline import synthetic
from input_pipeline.synthetic import write as synthetic_write
from mmgenre_jax import cli

NUM_ALBUMS = 12
# Files that do not depend on the seed (the taxonomy is fixed).
SEED_FREE = (layout.MUMU_LABELS_TSV, layout.MUMU_TAXONOMY_TSV,
             layout.ENRICHMENT_TSV)


@pytest.fixture(scope='module')
def corpora(tmp_path_factory):
  """Seed 0 twice (worker processes) and a smaller seed 1 (in-process)."""
  root = tmp_path_factory.mktemp('synthetic')
  out = {}
  for name, seed, albums, workers in (('a', 0, NUM_ALBUMS, 2),
                                      ('a_again', 0, NUM_ALBUMS, 2),
                                      ('b', 1, 4, 1)):
    summary = synthetic.generate_corpus(
        root / name, num_albums=albums, seed=seed, defects=1,
        workers=workers, progress=False)
    out[name] = (root / name, summary)
  return out


def read_csv_rows(directory):
  with open(directory / layout.MUMU_MULTI_LABEL_CSV, newline='',
            encoding='utf-8') as f:
    return list(csv.DictReader(f))


def read_tsv_rows(path):
  with open(path, newline='', encoding='utf-8') as f:
    return list(csv.DictReader(f, delimiter='\t'))


def defects_of(directory):
  return {(r['kind'], r['item_id']): r['path']
          for r in read_tsv_rows(directory / layout.DEFECTS_TSV)}


def test_same_seed_is_byte_identical(corpora):
  a, summary_a = corpora['a']
  again, summary_again = corpora['a_again']
  assert summary_a == summary_again
  for name in synthetic.METADATA_FILES:
    assert (a / name).read_bytes() == (again / name).read_bytes(), name
  audio = sorted(p.name for p in (a / 'audio').iterdir())
  assert audio == sorted(p.name for p in (again / 'audio').iterdir())
  broken = set(defects_of(a).values())
  for name in audio:
    left, right = a / 'audio' / name, again / 'audio' / name
    if name.endswith('.ogg') and f'audio/{name}' not in broken:
      # libsndfile writes a random Ogg stream serial: compare the samples.
      np.testing.assert_array_equal(soundfile.read(left)[0],
                                    soundfile.read(right)[0])
    else:
      assert left.read_bytes() == right.read_bytes(), name
  for path in (a / 'covers').iterdir():
    assert path.read_bytes() == (again / 'covers' / path.name).read_bytes()


def test_other_seed_differs(corpora):
  a, _ = corpora['a']
  b, _ = corpora['b']
  for name in synthetic.METADATA_FILES:
    same = (a / name).read_bytes() == (b / name).read_bytes()
    assert same == (name in SEED_FREE), name
  assert not ({p.name for p in (a / 'audio').iterdir()} &
              {p.name for p in (b / 'audio').iterdir()})


def test_summary_counts_match_files(corpora):
  directory, summary = corpora['a']
  rows = read_csv_rows(directory)
  assert json.loads((directory / layout.CORPUS_SUMMARY_JSON).read_text()) == (
      summary)
  assert summary['num_albums'] == NUM_ALBUMS
  assert summary['num_albums'] == len({r['amazon_id'] for r in rows})
  assert summary['num_tracks'] == len(rows)
  assert summary['num_artists'] == len({r['artist_mbid'] for r in rows})
  assert summary['num_labels'] == len(
      (directory / layout.MUMU_LABELS_TSV).read_text().split('\n')) - 1
  assert summary['num_files']['audio'] == len(
      list((directory / 'audio').iterdir()))
  assert summary['num_files']['covers'] == len(
      list((directory / 'covers').iterdir()))
  with open(directory / layout.REVIEWS_JSONL, encoding='utf-8') as f:
    assert summary['num_reviews'] == sum(1 for _ in f)
  assert sum(summary['audio_formats'].values()) == len(rows)
  assert sum(s['tracks'] for s in summary['msdi_sets'].values()) == len(rows)


def test_ids_look_like_the_release(corpora):
  rows = read_csv_rows(corpora['a'][0])
  for row in rows:
    assert re.fullmatch('B[0-9A-Z]{9}', row['amazon_id'])
    assert re.fullmatch('TR[0-9A-Z]{16}', row['MSD_track_id'])
    for key in ('album_mbid', 'recording_mbid', 'artist_mbid'):
      assert len(row[key]) == 36 and row[key][14] == '4', row[key]
  # Artists have several albums on average.
  albums_per_artist = len({r['amazon_id'] for r in rows}) / len(
      {r['artist_mbid'] for r in rows})
  assert albums_per_artist > 1.2


def test_every_listed_file_exists_and_reads(corpora):
  directory, _ = corpora['a']
  broken = defects_of(directory)
  broken_paths = set(broken.values())
  for row in read_csv_rows(directory):
    (path,) = (directory / 'audio').glob(row['MSD_track_id'] + '.*')
    assert path.suffix[1:] in ('wav', 'flac', 'ogg', 'mp3')
    if f'audio/{path.name}' in broken_paths:
      continue
    samples, rate = soundfile.read(path, always_2d=True)
    assert rate in (22050, 44100, 48000)
    assert samples.shape[1] in (1, 2)
    # mp3 pads a few frames at the end.
    assert 10.0 <= len(samples) / rate <= 40.2
    peak = np.abs(samples).max()
    if path.suffix in ('.wav', '.flac'):
      assert 0.39 < peak < 0.71
    else:
      # Low-bitrate codecs overshoot the encoded peak.
      assert 0.2 < peak < 2.0
  for row in read_tsv_rows(directory / layout.MSDI_TSV):
    path = directory / row['image_url']
    assert path.exists(), path
    if row['image_url'] in broken_paths:
      continue
    with Image.open(path) as image:
      image.load()
      assert image.format in ('JPEG', 'PNG')
      assert image.mode in ('RGB', 'L', 'P', 'RGBA', 'CMYK')
      assert all(200 <= side <= 600 for side in image.size)


def test_every_audio_format_and_cover_mode(tmp_path):
  """One album forced through every format, rate, channel count and mode."""
  _, albums = synthetic.plan_corpus(5, 1, synthetic.GENRES)
  album = albums[0]
  kinds = [('wav', 48000, 2), ('flac', 44100, 1), ('ogg', 22050, 2),
           ('mp3', 48000, 1), ('mp3', 22050, 2)]
  tracks = tuple(
      dataclasses.replace(album.tracks[0], track_id=f'TRFORMAT{i:010d}',
                          ext=ext, sample_rate=rate, channels=channels,
                          duration=10.0)
      for i, (ext, rate, channels) in enumerate(kinds))
  (tmp_path / 'audio').mkdir()
  (tmp_path / 'covers').mkdir()
  modes = [(mode, ext) for mode, _, exts in synthetic.COVER_MODES
           for ext in exts]
  for i, (mode, ext) in enumerate(modes):
    forced = dataclasses.replace(
        album, amazon_id=f'BMODE{i:05d}', cover_mode=mode, cover_ext=ext,
        tracks=tracks if i == 0 else ())
    synthetic_write._write_album_files(synthetic_write._AlbumTask(
        album=forced, out_dir=str(tmp_path), seed=5, audio_signal=0.5,
        image_signal=0.5, artist_signal=0.5, labels=tuple(
            synthetic.labels_of(synthetic.GENRES)), empty_audio=(),
        corrupt_audio=(), corrupt_image=False))
    with Image.open(tmp_path / synthetic.cover_path(forced)) as image:
      assert image.mode == mode
      assert image.format == {'jpg': 'JPEG', 'png': 'PNG'}[ext]
  for track, (ext, rate, channels) in zip(tracks, kinds):
    info = soundfile.info(tmp_path / synthetic.audio_path(track))
    assert (info.samplerate, info.channels) == (rate, channels)
    assert info.format == {'wav': 'WAV', 'flac': 'FLAC', 'ogg': 'OGG',
                           'mp3': 'MP3'}[ext]
    samples, _ = soundfile.read(tmp_path / synthetic.audio_path(track))
    assert 10.0 <= len(samples) / rate < 10.2


def test_taxonomy_and_labels_expanded_to_parents(corpora):
  directory, _ = corpora['a']
  taxonomy = read_tsv_rows(directory / layout.MUMU_TAXONOMY_TSV)
  parent = {r['label']: r['parent'] for r in taxonomy}
  assert 20 <= len(parent) <= 60
  tops = [label for label, p in parent.items() if not p]
  assert tops == list(msdi.MSDI_GENRES)
  # Two levels: every sub-genre's parent is top-level; 1-3 per genre.
  assert all(parent[p] == '' for p in parent.values() if p)
  per_top = {t: sum(p == t for p in parent.values()) for t in tops}
  assert all(1 <= n <= 3 for n in per_top.values()), per_top
  label_list = (directory / layout.MUMU_LABELS_TSV).read_text().splitlines()
  assert label_list == sorted(parent)
  for row in read_csv_rows(directory):
    genres = row['genres'].split(',')
    assert set(genres) <= set(parent)
    assert len(genres) == len(set(genres))
    for label in genres:
      if parent[label]:
        assert parent[label] in genres, (label, genres)
    # One primary genre first, with at least one of its sub-genres.
    assert not parent[genres[0]]
    assert any(parent[g] == genres[0] for g in genres)
  raw = (directory / layout.MUMU_MULTI_LABEL_CSV).read_text().splitlines()
  assert all(line.endswith('"') for line in raw[1:])  # genres are quoted


def test_readers_load_the_corpus(corpora):
  directory, summary = corpora['a']
  dataset = mumu.load_mumu(directory / layout.MUMU_MULTI_LABEL_CSV,
                           labels_path=directory / layout.MUMU_LABELS_TSV,
                           taxonomy_path=directory / layout.MUMU_TAXONOMY_TSV)
  assert len(dataset.albums) == NUM_ALBUMS
  assert len(dataset.track_album) == summary['num_tracks']
  assert not dataset.unknown_labels
  tracks = msdi.load_msdi(directory / layout.MSDI_TSV).tracks
  assert len(tracks) == summary['num_tracks']
  reviews = mumu.load_reviews(directory / layout.REVIEWS_JSONL)
  empty = [item for kind, item in defects_of(directory)
           if kind == 'empty_reviews']
  assert set(reviews) == set(dataset.albums) - set(empty)


def test_msdi_sets_are_artist_and_album_disjoint(corpora):
  directory, summary = corpora['a']
  rows = read_tsv_rows(directory / layout.MSDI_TSV)
  assert list(rows[0]) == list(msdi.MSDI_COLUMNS)
  mumu_rows = {r['MSD_track_id']: r for r in read_csv_rows(directory)}
  sets_of = {'artist': {}, 'album': {}}
  for row in rows:
    assert row['set'] in msdi.MSDI_SETS
    assert row['album_index'].isdigit()
    album = mumu_rows[row['msd_track_id']]
    # The single label is the album's primary (first) top-level genre.
    assert row['genre'] == album['genres'].split(',')[0]
    assert row['image_url'].startswith(f'covers/{album["amazon_id"]}.')
    for key, value in (('artist', row['msd_artist_id']),
                       ('album', row['album_index'])):
      sets_of[key].setdefault(value, set()).add(row['set'])
  assert all(len(s) == 1 for s in sets_of['artist'].values())
  assert all(len(s) == 1 for s in sets_of['album'].values())
  assert all(s['tracks'] > 0 for s in summary['msdi_sets'].values())


def test_sets_near_70_15_15_of_tracks():
  artists, albums = synthetic.plan_corpus(3, 400, synthetic.GENRES)
  sets = synthetic.assign_sets(3, artists, albums)
  tracks = {'train': 0, 'val': 0, 'test': 0}
  for album in albums:
    tracks[sets[album.artist.index]] += len(album.tracks)
  total = sum(tracks.values())
  for name, fraction in synthetic.MSDI_SET_FRACTIONS:
    assert abs(tracks[name] / total - fraction) < 0.03, tracks


def test_defects_are_written_and_broken(corpora):
  directory, _ = corpora['a']
  broken = defects_of(directory)
  assert sorted(kind for kind, _ in broken) == sorted(synthetic.DEFECT_KINDS)
  for (kind, item), path in broken.items():
    path = directory / path
    if kind == 'empty_audio':
      assert path.stat().st_size == 0 and item in path.name
    elif kind == 'corrupt_audio':
      assert path.stat().st_size > 0 and item in path.name
      with pytest.raises(soundfile.LibsndfileError):
        soundfile.read(path)
    elif kind == 'corrupt_image':
      with pytest.raises(OSError):  # PIL.UnidentifiedImageError included
        with Image.open(path) as image:
          image.load()
    else:
      with open(path, encoding='utf-8') as f:
        texts = [r['reviewText'] for r in map(json.loads, f)
                 if r['asin'] == item]
      assert texts and all(text == '' for text in texts)
  clean, _ = corpora['a_again']  # same seed: defects at the same items
  assert defects_of(clean) == broken


def test_reviews_have_amazon_fields_and_entities(corpora):
  directory, _ = corpora['a']
  with open(directory / layout.REVIEWS_JSONL, encoding='utf-8') as f:
    reviews = [json.loads(line) for line in f]
  keys = {'asin', 'reviewText', 'summary', 'overall', 'unixReviewTime'}
  assert all(keys <= set(r) for r in reviews)
  assert all(r['overall'] in (1.0, 2.0, 3.0, 4.0, 5.0) for r in reviews)
  per_album = {}
  for review in reviews:
    per_album.setdefault(review['asin'], []).append(review)
  assert len(per_album) == NUM_ALBUMS
  assert all(len(v) >= synthetic.REVIEWS_PER_ALBUM[0]
             for v in per_album.values())
  for album_reviews in per_album.values():
    times = [r['unixReviewTime'] for r in album_reviews]
    assert times == sorted(times)
  entities = [line.split('\t')[0] for line in (
      directory / layout.ENRICHMENT_TSV).read_text().splitlines()]
  text = ' '.join(r['reviewText'] for r in reviews)
  assert sum(entity in text for entity in entities) >= 3


def spectral_centroid(path):
  samples, rate = soundfile.read(path, always_2d=True)
  magnitude = np.abs(np.fft.rfft(samples.mean(axis=1)))
  frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
  return float((frequencies * magnitude).sum() / magnitude.sum())


def test_genre_shapes_audio_covers_and_text(tmp_path):
  synthetic.generate_corpus(
      tmp_path, num_albums=6, seed=2, genres=('Metal', 'New Age'),
      text_signal=1.0, audio_signal=1.0, image_signal=1.0,
      artist_signal=0.0, workers=2, progress=False)
  album_genre = {}
  centroids = {'Metal': [], 'New Age': []}
  for row in read_tsv_rows(tmp_path / layout.MSDI_TSV):
    album_genre[row['image_url'].split('/')[1].split('.')[0]] = row['genre']
    (path,) = (tmp_path / 'audio').glob(row['msd_track_id'] + '.*')
    centroids[row['genre']].append(spectral_centroid(path))
  assert all(len(v) >= 2 for v in centroids.values()), centroids
  # Bright, distorted, drum-heavy metal vs soft sine-like pads.
  assert np.mean(centroids['Metal']) > 1.5 * np.mean(centroids['New Age'])
  brightness = {'Metal': [], 'New Age': []}
  for path in (tmp_path / 'covers').iterdir():
    with Image.open(path) as image:
      brightness[album_genre[path.stem]].append(
          np.asarray(image.convert('L'), np.float64).mean())
  # Metal covers are dark (HSV value 0.2), new age covers pale (0.9).
  assert np.mean(brightness['New Age']) > np.mean(brightness['Metal']) + 60
  with open(tmp_path / layout.REVIEWS_JSONL, encoding='utf-8') as f:
    reviews = [json.loads(line) for line in f]
  metal_words = set(synthetic.GENRE_WORDS['Metal'].split())
  for review in reviews:
    words = set(review['reviewText'].lower().replace('.', ' ').split())
    if album_genre[review['asin']] == 'New Age':
      assert not words & metal_words, review['reviewText']


def test_signal_zero_carries_no_genre(tmp_path):
  artists, albums = synthetic.plan_corpus(0, 2, synthetic.GENRES)
  labels = synthetic.labels_of(synthetic.GENRES)
  artist = artists[0]

  def audio(label, signal):
    return synthetic.draw_audio_params(label, np.random.default_rng(7),
                                       signal, labels, artist, 0.7)

  def image(label, signal):
    return synthetic.draw_image_params(label, np.random.default_rng(7),
                                       signal, labels)

  def text(album_labels, signal):
    album = dataclasses.replace(albums[0], labels=album_labels)
    return synthetic.make_reviews(album, np.random.default_rng(7), signal,
                                  0.7, labels)

  for draw in (audio, image):
    assert draw('Death Metal', 0.0) == draw('Meditation', 0.0)
    assert draw('Death Metal', 1.0) != draw('Meditation', 1.0)
  metal, new_age = ('Metal', 'Death Metal'), ('New Age', 'Meditation')
  assert text(metal, 0.0) == text(new_age, 0.0)
  assert text(metal, 1.0) != text(new_age, 1.0)


def test_cli_writes_a_corpus(tmp_path, capsys):
  out = tmp_path / 'corpus'
  argv = ['synth', '--out', str(out), '--albums', '2', '--seed', '3',
          '--workers', '1', '--no-progress']
  assert cli.main(argv) == 0
  assert 'Wrote 2 albums' in capsys.readouterr().out
  summary = json.loads((out / layout.CORPUS_SUMMARY_JSON).read_text())
  assert summary['seed'] == 3 and summary['num_albums'] == 2
  # Running again with other settings replaces the earlier corpus.
  assert cli.main(argv + ['--seed', '4']) == 0
  assert 'Wrote 2 albums' in capsys.readouterr().out
  summary = json.loads((out / layout.CORPUS_SUMMARY_JSON).read_text())
  assert summary['seed'] == 4 and summary['num_albums'] == 2
  assert cli.main(argv[:-3] + ['--audio-signal', '1.5']) == 2
  assert 'audio_signal=1.5' in capsys.readouterr().err


def test_cli_skips_a_complete_corpus_unless_forced(tmp_path, capsys,
                                                   monkeypatch):
  out = tmp_path / 'corpus'
  argv = ['synth', '--out', str(out), '--albums', '2', '--seed', '3',
          '--workers', '1', '--no-progress']
  seeds = []  # one per corpus written
  generate = synthetic.generate_corpus

  def counting_generate(*args, **kwargs):
    seeds.append(kwargs['seed'])
    return generate(*args, **kwargs)

  monkeypatch.setattr(synthetic, 'generate_corpus', counting_generate)
  assert cli.main(argv) == 0
  assert 'Wrote 2 albums' in capsys.readouterr().out
  first = {p.relative_to(out): p.read_bytes() for p in out.rglob('*')
           if p.is_file() and p.suffix != '.ogg'}
  assert cli.main(argv) == 0
  assert capsys.readouterr().out == (
      f'[synth] {out} already holds this corpus (corpus_summary.json '
      'matches), skipped\n')
  assert seeds == [3]
  # --force writes it again: the same corpus (ogg aside, see above).
  assert cli.main(argv + ['--force']) == 0
  assert 'Wrote 2 albums' in capsys.readouterr().out
  assert seeds == [3, 3]
  assert {p.relative_to(out): p.read_bytes() for p in out.rglob('*')
          if p.is_file() and p.suffix != '.ogg'} == first
  # Another setting is another corpus: written without --force.
  assert cli.main(argv + ['--audio-signal', '0.9']) == 0
  assert 'Wrote 2 albums' in capsys.readouterr().out
  assert seeds == [3, 3, 3]
  summary = json.loads((out / layout.CORPUS_SUMMARY_JSON).read_text())
  assert summary['signals']['audio_signal'] == 0.9
  assert cli.main(argv + ['--audio-signal', '0.9']) == 0
  assert 'skipped' in capsys.readouterr().out
  assert seeds == [3, 3, 3]


def test_is_complete_only_with_the_same_settings(corpora, tmp_path,
                                                 monkeypatch):
  directory, _ = corpora['a']
  same = {'num_albums': NUM_ALBUMS, 'seed': 0, 'defects': 1}
  assert synthetic.is_complete(directory, **same) is True
  assert synthetic.is_complete(
      directory, **same, genres=list(synthetic.GENRES),
      text_signal=synthetic.DEFAULT_TEXT_SIGNAL) is True
  for change in ({'seed': 1}, {'num_albums': NUM_ALBUMS + 1},
                 {'defects': 0}, {'text_signal': 0.5}, {'audio_signal': 0.6},
                 {'image_signal': 1.0}, {'artist_signal': 0.0},
                 {'genres': synthetic.GENRES[::-1]},
                 {'genres': ('Rock', 'Pop')}):
    assert synthetic.is_complete(directory, **{**same, **change}) is False, (
        change)
  assert synthetic.is_complete(tmp_path / 'absent', **same) is False
  monkeypatch.setattr(synthetic_write, 'GENERATOR_VERSION',
                      synthetic.GENERATOR_VERSION + 1)
  assert synthetic.is_complete(directory, **same) is False
  monkeypatch.undo()
  # A corpus missing a file, or with a damaged summary, is not complete.
  damages = {
      'no_summary': lambda d: (d / layout.CORPUS_SUMMARY_JSON).unlink(),
      'bad_summary': lambda d: (d / layout.CORPUS_SUMMARY_JSON).write_text(
          '{"version": '),
      'no_metadata': lambda d: (d / layout.MSDI_TSV).unlink(),
      'no_cover': lambda d: sorted((d / 'covers').iterdir())[0].unlink(),
      'no_audio': lambda d: shutil.rmtree(d / 'audio'),
  }
  for name, damage in damages.items():
    copy = tmp_path / name
    shutil.copytree(directory, copy)
    assert synthetic.is_complete(copy, **same) is True
    damage(copy)
    assert synthetic.is_complete(copy, **same) is False, name


def test_refuses_a_directory_with_other_files(tmp_path):
  (tmp_path / 'notes.txt').write_text('mine')
  with pytest.raises(FileExistsError, match='notes.txt'):
    synthetic.generate_corpus(tmp_path, num_albums=1, workers=1,
                              progress=False)
  assert (tmp_path / 'notes.txt').read_text() == 'mine'
  with pytest.raises(ValueError, match='defects=5'):
    synthetic.generate_corpus(tmp_path / 'new', num_albums=2, defects=5,
                              workers=1, progress=False)

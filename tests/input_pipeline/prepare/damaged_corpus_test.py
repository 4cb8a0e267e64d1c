"""`mmgenre prepare` on a damaged corpus (issue 15).

A small synthetic corpus with the generator's own defects (empty and corrupt
audio, a corrupt cover, an album with empty reviews) is damaged further: a
review line that is not JSON, one without `asin`, one with invalid UTF-8, an
exact duplicate CSV row, a duplicate row under another artist, a missing
audio file and a missing cover. prepare must finish, report every damaged
input in skipped.tsv, write every other item exactly once (the release file
reconciles with the shards) and no NaN; more damage than --max-skip-fraction
allows must fail with one clear error; a run killed with SIGKILL must be
redone cleanly by the next.
"""

import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from input_pipeline import layout
from input_pipeline.records import shard_reader
from input_pipeline.prepare import job as prepare_job
from input_pipeline import synthetic
from input_pipeline.records import tfrecord
from mmgenre_jax import cli

REPO = pathlib.Path(__file__).resolve().parents[3]
# 12 albums, 38 tracks in every audio format and cover mode; seed 7 puts
# albums in all three splits.
SEED, ALBUMS = 7, 12
SETTINGS = ('--image-size', '16', '--shard-size', '4', '--no-windows',
            '--no-progress')
CLI = ('import sys; from mmgenre_jax import cli; '
       'sys.exit(cli.main(sys.argv[1:]))')


def _prepare_args(corpus, out, *extra):
  return ['prepare', '--dataset', 'mumu', '--data', str(corpus), '--out',
          str(out), *SETTINGS, *extra]


def _csv_rows(path):
  with open(path, newline='', encoding='utf-8') as f:
    return list(csv.reader(f))


def _write_csv_rows(path, rows):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    csv.writer(f, lineterminator='\n').writerows(rows)


def _damage(root: pathlib.Path) -> dict:
  """Damages the corpus at root; returns what was damaged, by kind."""
  with open(root / layout.DEFECTS_TSV, newline='') as f:
    defects = {r['kind']: r['item_id']
               for r in csv.DictReader(f, delimiter='\t')}
  csv_path = root / layout.MUMU_MULTI_LABEL_CSV
  header, *rows = _csv_rows(csv_path)
  track_at, artist_at = header.index('MSD_track_id'), header.index(
      'artist_mbid')
  broken = {defects['empty_audio'], defects['corrupt_audio']}
  # An exact repeat of line 2 as line 3, the row then on line 5 again at the
  # end under another artist, and an album whose one row is short a field.
  other_artist = list(rows[2])
  other_artist[artist_at] = str(uuid.UUID(int=15))
  short = ['BLOSTALBUM', str(uuid.UUID(int=16)), 'TRLOSTTRACK', 'rec', 'ar']
  _write_csv_rows(csv_path, [header, rows[0], rows[0], *rows[1:],
                             other_artist, short])
  # A track whose audio file is missing, an album without a cover.
  missing_track = next(r[track_at] for r in rows[3:]
                       if r[track_at] not in broken)
  next((root / layout.AUDIO_DIR).glob(f'{missing_track}.*')).unlink()
  missing_cover = next(r[0] for r in reversed(rows) if r[0] not in (
      defects['corrupt_image'], defects['empty_reviews']))
  next((root / layout.COVERS_DIR).glob(f'{missing_cover}.*')).unlink()
  # Three malformed review lines (4, 5, 6) amid good ones, and a valid odd
  # one: a Python dict literal (the "loose json" of the Amazon dumps).
  reviews = (root / layout.REVIEWS_JSONL).read_bytes().splitlines()
  bad_lines = [b'{"asin": "truncated", "reviewText": "no end',
               json.dumps({'reviewText': 'A review of no album.'}).encode(),
               b'{"asin": "%s", "reviewText": "Caf\xe9 latin-1"}'
               % rows[0][0].encode()]
  loose = repr({'asin': rows[0][0], 'reviewText': 'Loose json, read too.'})
  reviews = reviews[:3] + bad_lines + reviews[3:] + [loose.encode()]
  (root / layout.REVIEWS_JSONL).write_bytes(b'\n'.join(reviews) + b'\n')
  return {
      'metadata': {rows[0][track_at]: 'duplicate of line 2 (same amazon_id '
                   'and MSD track id, the same row)',
                   rows[2][track_at]: 'duplicate of line 5 (same amazon_id '
                   'and MSD track id under another artist',
                   'TRLOSTTRACK': '5 fields where the header has 6',
                   'BLOSTALBUM': "every row of album 'BLOSTALBUM'"},
      'reviews': {4: 'not a JSON object', 5: 'missing or empty asin',
                  6: 'invalid UTF-8'},
      # The decoders' own words (features.audio, features.image) for the
      # generator's broken files: only that there is a reason.
      'audio': {missing_track: 'missing file: no audio/',
                defects['empty_audio']: '', defects['corrupt_audio']: ''},
      'image': {missing_cover: 'missing file: no covers/',
                defects['corrupt_image']: ''},
      'text': {defects['empty_reviews']: 'empty review text'},
  }


@pytest.fixture(scope='module')
def damaged(tmp_path_factory):
  root = tmp_path_factory.mktemp('corpus')
  synthetic.generate_corpus(root, num_albums=ALBUMS, seed=SEED, defects=1,
                            workers=2, progress=False)
  return root, _damage(root)


@pytest.fixture(scope='module')
def prepared(damaged, tmp_path_factory):
  root, damage = damaged
  out = tmp_path_factory.mktemp('shards')
  assert cli.main(_prepare_args(root, out, '--workers', '2')) == 0
  return root, damage, out, shard_reader.load_manifest(out)


def _skipped_rows(out):
  with open(out / layout.SKIPPED_TSV, newline='', encoding='utf-8') as f:
    return list(csv.DictReader(f, delimiter='\t'))


def _records(out, manifest, kind):
  """Every record of a kind, all splits, decoded: (split, values)."""
  entry = manifest['modalities'][kind]
  specs = tfrecord.specs_from_json(entry['features'])
  return [(split, tfrecord.decode_example(record, specs))
          for split, shards in entry['shards'].items()
          for record in tfrecord.read_records([out / s['file']
                                               for s in shards])]


def test_every_damaged_input_is_reported_with_its_reason(prepared):
  _, damage, out, manifest = prepared
  rows = _skipped_rows(out)
  for stage, items in damage.items():
    mine = [r for r in rows if r['stage'] == stage]
    if stage == 'reviews':
      # A malformed line names no album: it is named by file and line.
      got = {int(r['reason'].split(':')[0].split()[1]): r for r in mine}
      assert all(r['path'].endswith(layout.REVIEWS_JSONL) for r in mine)
    else:
      got = {r['item_id']: r for r in mine}
    assert set(got) == set(items), stage
    for item, reason in items.items():
      assert reason in got[item]['reason'], (stage, item, got[item])
  assert not [r for r in rows if r['stage'] == 'labels']
  assert manifest['skipped'] == {
      'metadata': 4, 'reviews': 3, 'labels': 0, 'audio': 3, 'image': 2,
      'text': 1}
  # The duplicate rows name their line and the release file.
  for r in rows:
    if r['stage'] == 'metadata':
      assert r['path'].endswith(layout.MUMU_MULTI_LABEL_CSV)
      assert r['reason'].startswith('line ')


def test_counts_reconcile_from_the_release_file_to_the_shards(prepared):
  root, damage, out, manifest = prepared
  header, *rows = _csv_rows(root / layout.MUMU_MULTI_LABEL_CSV)
  album_at, track_at = header.index('amazon_id'), header.index(
      'MSD_track_id')
  albums = list(dict.fromkeys(r[album_at] for r in rows))
  reported_albums = [r['item_id'] for r in _skipped_rows(out)
                     if r['item_id'] in albums and r['stage'] in (
                         'metadata', 'labels')]
  assert reported_albums == ['BLOSTALBUM']
  tracks = list(dict.fromkeys((r[album_at], r[track_at]) for r in rows
                              if r[album_at] not in reported_albums))
  in_splits = sum(manifest['split_sizes'].values())
  counts = manifest['metadata']['counts']
  # Release file = kept + reported, for the rows and for the albums.
  assert counts['rows'] == {'read': len(rows), 'kept': len(tracks),
                            'skipped': 3}
  assert len(albums) == in_splits + len(reported_albums) == ALBUMS + 1
  assert counts['albums'] == {'read': len(albums), 'kept': in_splits,
                              'skipped': 1}
  lines = [line for line in (root / layout.REVIEWS_JSONL).read_bytes()
           .splitlines() if line.strip()]
  assert counts['review_lines'] == {'read': len(lines),
                                    'kept': len(lines) - 3, 'skipped': 3}
  # Every item of the release file is in its shards once, or reported.
  albums = [a for a in albums if a not in reported_albums]
  expected = {'audio': [t for _, t in tracks], 'image': albums,
              'text': albums}
  key = {'audio': 'track_id', 'image': 'album_id', 'text': 'album_id'}
  for kind, want in expected.items():
    written = [values[key[kind]] for _, values in
               _records(out, manifest, kind)]
    assert len(written) == len(set(written)), f'{kind}: an item twice'
    skipped = set(damage[kind])
    assert not skipped & set(written)
    assert sorted(set(written) | skipped) == sorted(want), kind
    read = sum(c['read'] for c in manifest['modalities'][kind][
        'counts'].values())
    assert read == len(want) == len(written) + len(skipped)
  assert shard_reader.verify_shards(out, manifest) == sum(
      len(s) for e in manifest['modalities'].values()
      for s in e['shards'].values())


def test_valid_odd_inputs_are_processed_and_no_shard_holds_nan(prepared):
  root, _, out, manifest = prepared
  written = {values['track_id'] for _, values in
             _records(out, manifest, 'audio')}
  formats = {p.suffix for p in (root / layout.AUDIO_DIR).iterdir()
             if p.stem in written}
  assert formats == {'.flac', '.mp3', '.ogg', '.wav'}
  for kind in manifest['modalities']:
    for _, values in _records(out, manifest, kind):
      for name, value in values.items():
        value = np.asarray(value)
        if value.dtype.kind == 'f':
          assert np.all(np.isfinite(value)), (kind, name, values)
  # The summary table counts the release file too.
  summary = prepare_job.summary(manifest)
  rows = manifest['metadata']['counts']['rows']
  assert (f'metadata      rows   {rows["read"]:>7} {rows["kept"]:>8} '
          f'{rows["skipped"]:>8}') in summary


@pytest.mark.parametrize('damage', ['audio', 'reviews'])
def test_too_much_damage_fails_with_one_clear_error(damaged, tmp_path,
                                                     capsys, damage):
  root = tmp_path / 'corpus'
  shutil.copytree(damaged[0], root)
  if damage == 'audio':
    files = sorted((root / layout.AUDIO_DIR).iterdir())
    for path in files[:len(files) * 2 // 5]:
      path.unlink()
    named = 'audio files'
  else:
    with open(root / layout.REVIEWS_JSONL, 'a', encoding='utf-8') as f:
      f.write('not json\n' * 100)
    named = f'lines of {layout.REVIEWS_JSONL}'
  out = tmp_path / 'shards'
  capsys.readouterr()
  # 4: the inputs, not the command, stopped it (cli/flags.py).
  assert cli.main(_prepare_args(root, out, '--workers', '1')) == 4
  error = capsys.readouterr().err
  report = out / layout.SKIPPED_TSV
  assert error.startswith('mmgenre prepare: error: too many inputs are '
                          'skipped: ')
  assert named in error and '--max-skip-fraction 0.2' in error
  assert f'is in {report}' in error
  assert error.count('\n') == 1  # One error, one line.
  assert not (out / layout.MANIFEST_JSON).exists()
  stage = 'audio' if damage == 'audio' else 'reviews'
  rows = [r for r in _skipped_rows(out) if r['stage'] == stage]
  assert len(rows) >= (15 if damage == 'audio' else 100)
  fraction = error.split(named + ' (')[1].split('%')[0]
  assert float(fraction) > 20


def test_a_killed_run_is_redone_by_the_next(damaged, tmp_path):
  root, _ = damaged
  out = tmp_path / 'shards'
  args = _prepare_args(root, out, '--workers', '2')
  # Its own session, so the kill takes its worker processes too (a lost
  # machine).
  run = subprocess.Popen(
      [sys.executable, '-c', CLI, *args], cwd=REPO, start_new_session=True,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      env={**os.environ, 'PYTHONPATH': os.pathsep.join(
          [str(REPO), os.environ.get('PYTHONPATH', '')])})
  deadline = time.monotonic() + 120
  try:
    # Partway: while the first audio shards are being written (temporary
    # files until their split is done; the whole run takes seconds).
    while run.poll() is None and time.monotonic() < deadline:
      if any((out / 'audio').glob('.*.tmp')):
        break
      time.sleep(0.01)
    assert run.poll() is None, 'prepare finished before it could be killed'
  finally:
    if run.poll() is None:
      os.killpg(run.pid, signal.SIGKILL)
    run.wait()
  assert run.returncode == -signal.SIGKILL
  assert not (out / layout.MANIFEST_JSON).exists()
  # Killed while writing: its temporary shard files are left behind.
  assert [p for p in out.rglob('*') if p.name.endswith('.tmp')]

  assert cli.main(args) == 0
  manifest = shard_reader.load_manifest(out)
  listed = {s['file'] for e in manifest['modalities'].values()
            for shards in e['shards'].values() for s in shards}
  assert shard_reader.verify_shards(out, manifest) == len(listed)
  on_disk = {p.relative_to(out).as_posix() for p in out.rglob('*.tfrecord')}
  assert on_disk == listed
  assert not [p for p in out.rglob('*') if p.name.endswith('.tmp')]

"""mmgenre_jax.tagging: predict / embed / neighbours / export on real files.

One tiny pipeline is trained once (module fixture) with the real machinery
(mmgenre_jax.pipelines.runner): the conftest audio shards plus text and image
shards of the same albums, then audio, text and image networks, an alignment
stage, a fusion of audio + MM_AUDIO and the final fusion of audio + text +
image, each one epoch of tiny batches. Prediction then reads audio, covers
and reviews written here in every supported format.
"""

import csv
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest
import soundfile as sf

from helpers import tagging_pipeline
from helpers import tiny
from input_pipeline.features import frontends
from input_pipeline.records import shard_reader
from mmgenre_jax import errors
from mmgenre_jax.train import checkpoints
from mmgenre_jax import cli
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging import decoding
from mmgenre_jax.tagging import inputs
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import tagger as tagger_lib
from mmgenre_jax.tagging.model import thresholds as thresholds_lib

@pytest.fixture(scope='module')
def workdir(tagging_workdir):
  """A trained tiny pipeline workdir W (pipeline.json, one dir per stage),
  trained once per session (tiny.tagging_workdir)."""
  return tagging_workdir


@pytest.fixture(scope='module')
def tagger(workdir):
  return tagger_lib.Tagger.from_workdir(workdir)


def _cli(*argv, capsys=None):
  code = cli.main(list(argv))
  out = capsys.readouterr().out if capsys else None
  return code, out


# ------------------------------------------------------------ modalities


def test_audio_only_uses_the_aligned_branch(tagger, media):
  result = tagger.predict(audio=[media['files']['wav'],
                                 media['files']['flac']], top_k=3)
  # The pipeline has an alignment stage and a fusion of audio + MM_AUDIO.
  assert result['model'] == 'fusion of audio+mm_audio (stage fused_am)'
  assert len(result['labels']) == 3
  scores = [x['score'] for x in result['labels']]
  assert scores == sorted(scores, reverse=True)
  assert all(-1.0 <= s <= 1.0 for s in scores)
  assert set(x['label'] for x in result['labels']) <= set(tagger.labels)
  # Album mode averages the tracks: not the same as either track alone.
  one = tagger.predict(audio=[media['files']['wav']])['scores']
  assert not np.allclose(one, result['scores'])


def test_cover_only_and_reviews_only(tagger, media):
  cover = tagger.predict(cover=media['cover'])
  assert cover['model'] == 'image network (stage image)'
  reviews = tagger.predict(reviews=pathlib.Path(
      media['reviews']).read_text())
  assert reviews['model'] == 'text network (stage text)'
  for result in (cover, reviews):
    assert len(result['labels']) == len(tagger.labels)
    assert np.isfinite(result['scores']).all()
  with pytest.raises(errors.TaggingError, match='empty'):
    tagger.predict(reviews='   ')


def test_cover_and_review_warnings(tagger, media, tmp_path):
  tiny = tmp_path / 'tiny.png'
  Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(tiny)
  result = tagger.predict(cover=tiny)
  # The network reads 32 x 32 from a shorter side of round(32 * 256 / 224).
  assert result['warnings'] == [
      'upscaled from 24 x 20 px (its shorter side is resized to 37 px)']
  assert result['duration_s'] is None
  assert tagger.predict(cover=media['cover'])['warnings'] == []
  # Empty reviews beside audio: tagged from the audio alone, and said so.
  wav = media['files']['wav']
  album = tagger.predict(audio=[wav], reviews='  \n ')
  assert album['model'] == tagger.predict(audio=[wav])['model']
  assert album['warnings'] == ['reviews: empty text, ignored']
  assert album['notes'] == [f'{wav}: mono-mixed from 2 channels',
                            f'{wav}: resampled from 44100 Hz to 22050 Hz']
  unknown = tagger.predict(reviews='zzyzx qwxv')
  assert unknown['warnings'] == [
      "no word of the model's vocabulary (the tf-idf vector is all zeros)"]


def test_all_three_use_the_final_fusion(tagger, media):
  result = tagger.predict(audio=[media['files']['ogg']], cover=media['cover'],
                          reviews='Saxophone and swing all night long.',
                          top_k=2)
  assert result['model'] == 'fusion of audio+text+image (stage fused)'
  # The final stage has thresholds calibrated on its validation split.
  assert result['decisions'] is not None
  assert set(result['decisions']) <= set(tagger.labels)
  # No fusion of audio + text: the per-modality answers are averaged, never
  # a fusion with a zero-filled image.
  mixed = tagger.predict(audio=[media['files']['ogg']],
                         reviews='Saxophone and swing.')
  assert mixed['model'].startswith('mean of fusion of audio+mm_audio')
  audio = tagger.predict(audio=[media['files']['ogg']])['scores']
  text = tagger.predict(reviews='Saxophone and swing.')['scores']
  np.testing.assert_allclose(mixed['scores'], (audio + text) / 2, atol=1e-6)


def test_deterministic(workdir, tagger, media):
  kwargs = dict(audio=[media['files']['wav'], media['files']['mp3']],
                cover=media['cover'], reviews='guitar riff')
  first = tagger.predict(**kwargs)
  again = tagger.predict(**kwargs)
  fresh = tagger_lib.Tagger.from_workdir(workdir).predict(**kwargs)
  np.testing.assert_array_equal(first['scores'], again['scores'])
  np.testing.assert_array_equal(first['scores'], fresh['scores'])
  assert first['labels'] == fresh['labels']


def test_thresholds_are_f1_optimal_on_validation(workdir, tagger):
  val = workdir_lib.representation_path(workdir / 'fused', 'fusion', 'val')
  with np.load(val) as data:
    expected, f1 = thresholds_lib.f1_optimal(data['scores'], data['labels'])
    decided = thresholds_lib.decide(data['scores'], expected)
    labels = data['labels'] > 0
  np.testing.assert_allclose(tagger.stages['fused'].thresholds, expected)
  # The chosen cut reproduces the best F1 of each label with a positive.
  for j in np.flatnonzero(labels.any(0)):
    tp = (decided[:, j] & labels[:, j]).sum()
    assert f1[j] == pytest.approx(2 * tp / (decided[:, j].sum() +
                                            labels[:, j].sum()))
  # Computed in memory: loading writes nothing into the workdir.
  assert tagger.stages['fused'].thresholds_source == os.fspath(val)
  assert not (workdir / 'fused' / workdir_lib.THRESHOLDS_JSON).exists()


def _snapshot(root: pathlib.Path):
  """{relative path: (kind, size, mtime_ns, sha256)} of all under root."""
  found = {}
  for path in sorted(root.rglob('*')):
    info = path.stat()
    if path.is_dir():
      found[os.fspath(path.relative_to(root))] = ('dir', info.st_mtime_ns)
    else:
      digest = hashlib.sha256(path.read_bytes()).hexdigest()
      found[os.fspath(path.relative_to(root))] = (
          'file', info.st_size, info.st_mtime_ns, digest)
  return found


def test_loading_and_predicting_write_nothing(workdir, media):
  shards = workdir.parent / 'shards'
  before = _snapshot(workdir), _snapshot(shards)
  pipeline_tagger = tagger_lib.Tagger.from_workdir(workdir)
  stage_tagger = tagger_lib.Tagger.from_workdir(workdir / 'fused')
  pipeline_tagger.predict(audio=[media['files']['wav']], cover=media['cover'],
                          reviews='guitar riff')
  pipeline_tagger.embed(audio=[media['files']['wav']])
  assert _snapshot(workdir) == before[0]
  assert _snapshot(shards) == before[1]
  # Whatever loaded it before (the module's tagger fixture) wrote nothing
  # either.
  assert not list(workdir.rglob(workdir_lib.THRESHOLDS_JSON))
  # Thresholds were still computed, in memory.
  np.testing.assert_array_equal(stage_tagger.stages['fused'].thresholds,
                                pipeline_tagger.stages['fused'].thresholds)


def test_restore_variables_reads_a_trained_stage(workdir, tmp_path):
  before = _snapshot(workdir / 'image')
  variables = checkpoints.restore_variables(workdir / 'image')
  # ResNet: parameters and batch statistics, as numpy arrays.
  assert set(variables) == {'params', 'batch_stats'}
  leaves = jax.tree_util.tree_leaves(variables)
  assert leaves and all(isinstance(x, np.ndarray) for x in leaves)
  assert set(checkpoints.restore_variables(workdir / 'text')) == {'params'}
  assert _snapshot(workdir / 'image') == before
  untrained = tmp_path / 'untrained'
  shutil.copytree(workdir / 'text', untrained, ignore=shutil.ignore_patterns(
      workdir_lib.CHECKPOINTS_DIR))
  with pytest.raises(errors.TaggingError, match='no checkpoint'):
    tagger_lib.load_stage(untrained)


def test_f1_optimal_thresholds_by_hand():
  scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.3], [0.2, 0.4]])
  labels = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])
  thresholds, f1 = thresholds_lib.f1_optimal(scores, labels)
  # Label 0: tagging the 2 best gives F1 0.8, all 4 gives 6/7 (best).
  assert thresholds[0] == pytest.approx(0.2)
  assert f1[0] == pytest.approx(6 / 7)
  assert np.isnan(thresholds[1])  # No positive: never decided.
  assert thresholds_lib.decide(scores, thresholds)[:, 1].sum() == 0


# ------------------------------------------------------------ bundle


def test_export_bundle_needs_no_workdir_or_shards(workdir, tagger, media,
                                                  tmp_path, capsys):
  bundle = tmp_path / 'bundle'
  code, _ = _cli('export', str(workdir), '--out', str(bundle),
                 capsys=capsys)
  assert code == 0
  kwargs = dict(audio=[media['files']['flac']], cover=media['cover'],
                reviews='chorus catchy radio')
  expected = tagger.predict(**kwargs)
  moved = workdir.parent / 'W_moved'
  shards = workdir.parent / 'shards'
  hidden = workdir.parent / 'shards_hidden'
  workdir.rename(moved)
  shards.rename(hidden)
  try:
    copy = tmp_path / 'copied_bundle'
    shutil.copytree(bundle, copy)
    loaded = tagger_lib.Tagger.from_workdir(copy)
    got = loaded.predict(**kwargs)
    for name, stage in tagger.stages.items():
      if stage.thresholds is None:
        assert loaded.stages[name].thresholds is None
      else:
        np.testing.assert_array_equal(loaded.stages[name].thresholds,
                                      stage.thresholds)
    read_back = thresholds_lib.read(
        copy / 'stages' / 'fused' / workdir_lib.THRESHOLDS_JSON,
        tagger.labels)
    np.testing.assert_array_equal(read_back, tagger.stages['fused'].thresholds)
  finally:
    moved.rename(workdir)
    hidden.rename(shards)
  np.testing.assert_allclose(got['scores'], expected['scores'], atol=1e-6)
  assert got['decisions'] == expected['decisions']
  assert got['model'] == expected['model']


# ------------------------------------------------------------- catalog


def test_directory_of_mixed_formats_with_a_corrupt_file(workdir, media,
                                                        tmp_path, capsys):
  out = tmp_path / 'tags.json'
  code, _ = _cli('predict', '--workdir', str(workdir), '--audio',
                 str(media['music']), '--top-k', '2', '--out', str(out),
                 '--no-progress', capsys=capsys)
  assert code == 3  # Some inputs failed: the corrupt file's row has it.
  rows = json.loads(out.read_text())
  files = media['files']
  assert sorted(r['input'] for r in rows) == sorted(files.values())
  by_input = {r['input']: r for r in rows}
  broken = by_input[files['corrupt']]
  assert broken['labels'] == [] and files['corrupt'] in broken['error']
  assert 'corrupt' in broken['error']
  for kind in ('wav', 'flac', 'ogg', 'mp3'):
    row = by_input[files[kind]]
    assert row['error'] is None, row
    assert [set(x) for x in row['labels']] == [{'label', 'score'}] * 2
    assert isinstance(row['decisions'], list)
  assert broken['warnings'] == [] and broken['duration_s'] is None
  # What decoding observed (tests/mmgenre_jax/tagging/inputs_test.py has the
  # details).
  # Mono-mixing and resampling are notes; only the short mp3 is warned of.
  expected = {'wav': (20.0, [], ['mono-mixed from 2 channels',
                                 'resampled from 44100 Hz to 22050 Hz']),
              'flac': (18.0, [], ['resampled from 48000 Hz to 22050 Hz']),
              'ogg': (16.0, [], ['mono-mixed from 2 channels']),
              'mp3': (3.0, ['shorter than one 15 s patch (3.0'],
                      ['resampled from 16000 Hz to 22050 Hz'])}
  for kind, (seconds, warnings, notes) in expected.items():
    row = by_input[files[kind]]
    assert row['duration_s'] == pytest.approx(seconds, abs=0.1), kind
    assert len(row['warnings']) == len(warnings), row['warnings']
    for got, want in zip(row['warnings'], warnings):
      assert got.startswith(want), (got, want)
    assert row['notes'] == notes, kind
    assert row['sources'][0]['size'] == os.path.getsize(files[kind])
  # The folder was tagged as one batch (items_lib.BATCH_ITEMS); one input at
  # a time, or 4 then 2, gives the same rows, byte for byte.
  assert 1 < len(rows) <= items_lib.BATCH_ITEMS
  for batch_items in ('1', '4'):
    again = tmp_path / f'tags_{batch_items}.json'
    code, _ = _cli('predict', '--workdir', str(workdir), '--audio',
                   str(media['music']), '--top-k', '2', '--out', str(again),
                   '--no-progress', '--batch-items', batch_items,
                   capsys=capsys)
    assert code == 3 and again.read_bytes() == out.read_bytes(), batch_items
  with pytest.raises(SystemExit):  # argparse: 1 or more.
    _cli('predict', '--workdir', str(workdir), '--audio',
         str(media['music']), '--batch-items', '0', capsys=capsys)
  assert '--batch-items: 0: give 1 or more' in capsys.readouterr().err


def test_decoding_workers_and_the_device_give_the_streamed_rows(
    workdir, tagger, media, monkeypatch):
  """Tracks decoded whole (by 2 worker processes) and computed on the
  device in batches: the rows of the stream, to float32 precision; the
  short mp3 and the corrupt file go to the stream."""
  # The tiny shards record no front end (librosa's): streamed only.
  assert tagger.whole_track_windows() is None
  # Fed the JAX front end's features here (this test compares two ways of
  # computing them; a model is otherwise fed only its own).
  monkeypatch.setattr(inputs, 'audio_frontend',
                      lambda stage, manifest: frontends.JAX_POLYPHASE)
  tagger = tagger_lib.Tagger.from_workdir(workdir)
  assert tagger.whole_track_windows() == (0.15, 0.5)
  files = media['files']
  items = items_lib.collect_items(audio=[
      files[kind] for kind in ('wav', 'ogg', 'mp3', 'corrupt')])
  monkeypatch.setattr(decoding, 'WORKERS_FROM_TRACKS', 1)
  rows = {}
  for workers in (0, 2):
    with decoding.AheadDecoder(tagger, items, workers) as decoder:
      rows[workers], decoded = [], set()
      for batch in decoder.batches(items_lib.BATCH_ITEMS):
        found = decoder.take(batch)
        decoded |= set(found)
        rows[workers] += predict.predict_items(tagger, batch, 3, 'all',
                                               found)
    expected = {files['wav'], files['ogg']} if workers else set()
    assert decoded == expected
  for streamed, computed in zip(rows[0], rows[2]):
    assert computed['input'] == streamed['input']
    assert [x['label'] for x in computed['labels']] == [
        x['label'] for x in streamed['labels']]
    np.testing.assert_allclose([x['score'] for x in computed['labels']],
                               [x['score'] for x in streamed['labels']],
                               atol=1e-5)
    for field in ('decisions', 'duration_s', 'warnings', 'notes', 'error'):
      assert computed[field] == streamed[field], (field, computed)
  # A batch holds at most BATCH_TRACKS tracks to decode.
  monkeypatch.setattr(decoding, 'BATCH_TRACKS', 2)
  with decoding.AheadDecoder(tagger, items, 1) as decoder:
    assert [len(b) for b in decoder.batches(16)] == [2, 2]

  # A model whose feature data cannot be read decodes nothing: the stream
  # gives each row its error, as without decoding ahead.
  class Unreadable:
    def whole_track_windows(self):
      raise errors.TaggingError('its prepared shards are gone')

  with decoding.AheadDecoder(Unreadable(), items, 2) as decoder:
    assert [decoder.take(b) for b in decoder.batches(16)] == [{}]


def test_collect_items_without_a_parser(media):
  music = media['music']
  tracks = items_lib.collect_items(audio=[str(music)])
  assert [i.key for i in tracks] == items_lib.audio_files(music)
  assert all(i.audio == [i.key] and i.cover is None for i in tracks)
  (album,) = items_lib.collect_items(audio=[media['files']['wav']],
                                   cover=media['cover'])
  assert album.audio == [media['files']['wav']]
  assert album.key == f"{media['files']['wav']};{media['cover']}"
  (named,) = items_lib.collect_items(audio=[media['files']['wav']], album=True,
                                   album_id='X')
  assert named.key == 'X'
  with pytest.raises(ValueError, match='Nothing to tag'):
    items_lib.collect_items()


def test_resumed_catalog_run(workdir, media, tmp_path, capsys):
  manifest = tmp_path / 'catalog.csv'
  music = media['music']
  with open(manifest, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['album_id', 'audio', 'cover', 'reviews'])
    w.writerow(['A1', f'{music}/a.wav;{music}/b.flac', media['cover'],
                media['reviews']])
    w.writerow(['A2', f'{music}/d.mp3', '', ''])
    w.writerow(['A3', '', media['cover'], ''])
    w.writerow(['A4', '', '', media['reviews']])
  for fmt in ('json', 'csv'):
    out = tmp_path / f'tags.{fmt}'
    args = ('predict', '--workdir', str(workdir), '--manifest', str(manifest),
            '--format', fmt, '--out', str(out), '--no-progress')
    assert _cli(*args, capsys=capsys)[0] == 0
    complete = out.read_text()
    # Interrupted after two rows, in the middle of the third; row A1 is
    # marked to show that it is kept, not redone.
    lines = complete.splitlines(keepends=True)
    keep = 3  # json: '[' + 2 rows; csv: header + 2 rows.
    marked = lines[:keep]
    if fmt == 'json':
      marked[1] = marked[1].replace('"error": null',
                                    '"error": null, "kept": true')
    else:
      marked[1] = marked[1].replace('(stage fused)', 'KEPT')
    out.write_text(''.join(marked) + lines[keep][:15])
    assert _cli(*args, capsys=capsys)[0] == 0
    if fmt == 'json':
      rows = json.loads(out.read_text())
      assert rows == [dict(r, kept=True) if r['input'] == 'A1' else r
                      for r in json.loads(complete)]
    else:
      assert out.read_text() == complete.replace('(stage fused)', 'KEPT')
      with open(out, newline='') as f:
        rows = list(csv.DictReader(f))
    resumed = [r['input'] for r in rows]
    assert resumed == ['A1', 'A2', 'A3', 'A4']


def test_embed_and_neighbours(workdir, media, tmp_path, capsys):
  music = media['music']
  manifest = tmp_path / 'catalog.csv'
  with open(manifest, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['album_id', 'audio', 'cover', 'reviews'])
    w.writerow(['A1', f'{music}/a.wav', media['cover'], media['reviews']])
    w.writerow(['A2', f'{music}/b.flac', media['cover'], ''])
    w.writerow(['A3', f'{music}/broken.mp3', '', ''])
  out = tmp_path / 'vectors'
  code, _ = _cli('embed', '--workdir', str(workdir), '--manifest',
                 str(manifest), '--out', str(out), '--no-progress',
                 capsys=capsys)
  assert code == 3  # A3 (broken.mp3) fails, in errors.tsv.
  index = (out / 'index.tsv').read_text().splitlines()
  assert index[0] == 'representation\trow\tinput\tduration_s\twarnings'
  # A stereo 44.1 kHz track: normal processing, no warning (issue 27).
  assert 'audio\t0\tA1\t20.0000\t' in index
  for name, rows in (('audio', 2), ('mm_audio', 2), ('mm_visual', 2),
                     ('image', 2), ('text', 1), ('fusion', 1),
                     ('fusion_fused_am', 2), ('audio_output', 2)):
    assert np.load(out / f'{name}.npy').shape[0] == rows, name
  assert 'A3' in (out / 'errors.tsv').read_text()
  # One input at a time: the same files (vectors bit for bit).
  one = tmp_path / 'vectors_1'
  code, _ = _cli('embed', '--workdir', str(workdir), '--manifest',
                 str(manifest), '--out', str(one), '--no-progress',
                 '--batch-items', '1', capsys=capsys)
  assert code == 3
  assert sorted(p.name for p in one.iterdir()) == sorted(
      p.name for p in out.iterdir())
  for name in ('index.tsv', 'errors.tsv', 'audio.npy', 'fusion.npy'):
    assert (one / name).read_bytes() == (out / name).read_bytes(), name
  # Audio -> covers in the alignment space.
  code, text = _cli('neighbours', '--workdir', str(workdir), '--audio',
                    media['files']['wav'], '--catalog', str(out), '-k', '2',
                    capsys=capsys)
  assert code == 0
  result = json.loads(text)
  assert result['space'] == 'aligned' and result['query_vector'] == 'mm_audio'
  assert result['duration_s'] == 20.0 and result['warnings'] == []
  assert result['notes'] == ['mono-mixed from 2 channels',
                             'resampled from 44100 Hz to 22050 Hz']
  assert [n['representation'] for n in result['neighbours']] == [
      'mm_visual'] * 2
  cosines = [n['cosine'] for n in result['neighbours']]
  assert cosines == sorted(cosines, reverse=True)
  # Reviews -> audio in the label-factor space.
  code, text = _cli('neighbours', '--workdir', str(workdir), '--reviews',
                    media['reviews'], '--catalog', str(out), '--space',
                    'factors', '--to', 'audio', capsys=capsys)
  result = json.loads(text)
  assert code == 0 and result['query_vector'] == 'text_output'
  assert {n['input'] for n in result['neighbours']} == {'A1', 'A2'}
  # Nearest genres: cosines to the label factors, best first.
  code, text = _cli('neighbours', '--workdir', str(workdir), '--cover',
                    media['cover'], '-k', '3', capsys=capsys)
  result = json.loads(text)
  assert code == 0 and len(result['neighbours']) == 3
  assert result['space'] == 'label_factors'


def test_tagger_is_exported_lazily():
  import mmgenre_jax  # pylint: disable=g-import-not-at-top
  assert mmgenre_jax.Tagger is tagger_lib.Tagger
  # A fresh interpreter: importing the package loads no JAX.
  code = 'import sys, mmgenre_jax; assert "jax" not in sys.modules'
  subprocess.run([sys.executable, '-c', code], check=True,
                 cwd=tagging_pipeline.REPO,
                 env=dict(os.environ, PYTHONPATH=str(tagging_pipeline.REPO)))


# ------------------------------------------------------- bounded memory

_PEAK_RSS = r'''
import json, resource, sys
from mmgenre_jax.tagging import tagger
result = tagger.Tagger.from_workdir(sys.argv[1]).predict(audio=[sys.argv[2]])
print(json.dumps({'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  'label': result['labels'][0]['label']}))
'''


def _long_wav(path, minutes: float, rate: int = 22050) -> str:
  """A tone + noise wav written block by block (the writer stays small)."""
  rng = np.random.default_rng(0)
  block = rate * 60
  with sf.SoundFile(path, 'w', samplerate=rate, channels=1,
                    subtype='PCM_16') as f:
    for i in range(int(minutes)):
      t = (np.arange(block) + i * block) / rate
      f.write((0.2 * np.sin(2 * np.pi * (200 + 50 * (i % 5)) * t) +
               0.05 * rng.standard_normal(block)).astype(np.float32))
  return os.fspath(path)


def test_memory_is_bounded_on_a_60_minute_file(workdir, tmp_path):
  """Peak RSS of predicting a 60-min file vs a 5-min one (subprocesses)."""
  short = _long_wav(tmp_path / 'five.wav', 5)
  long = _long_wav(tmp_path / 'sixty.wav', 60)
  # One thread each: the two runs share the 2 cores without thrashing.
  env = dict(
      os.environ, PYTHONPATH=str(tagging_pipeline.REPO), JAX_PLATFORMS='cpu',
      TF_CPP_MIN_LOG_LEVEL='2', OMP_NUM_THREADS='1',
      XLA_FLAGS='--xla_cpu_multi_thread_eigen=false '
      'intra_op_parallelism_threads=1')
  runs = [subprocess.Popen([sys.executable, '-c', _PEAK_RSS,
                            str(workdir / 'audio'), path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env) for path in (short, long)]
  peaks = []
  for run in runs:
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-3000:]
    peaks.append(json.loads(stdout.strip().splitlines()[-1])['rss_kb'])
  os.remove(long)
  # Decoding the 60-min file whole would add >= 300 MB (float32 samples
  # alone); streaming keeps the peaks within a few percent.
  assert peaks[1] < 1.1 * peaks[0], peaks


def test_prediction_standardises_like_the_training_pipeline(workdir, tagger):
  """The Tagger's audio statistics are the arrays training standardised with."""
  shards = workdir.parent / 'shards'
  expected_mean, expected_std = shard_reader.load_audio_stats(shards)
  audio_stage = next(s for s in tagger.stages.values() if s.kind == 'audio')
  data = tagger.feature_data(audio_stage.name)
  np.testing.assert_array_equal(data.mean, expected_mean)
  np.testing.assert_array_equal(data.std, expected_std)


def test_cover_figures_of_a_trained_pipeline(workdir, tmp_path):
  """Figs 5, 6 and 8 from the trained tiny ResNet (COSINE class weights)."""
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax.reporting import figures
  # Figures go into W/figures/; the shared W is read-only (conftest).
  workdir = shutil.copytree(workdir, tmp_path / 'W')
  taxonomy = tmp_path / 'taxonomy.tsv'
  taxonomy.write_text('label\tparent\nRock\t\nIndie Rock\tRock\nJazz\t\n'
                      'Vocal Jazz\tJazz\nPop\t\nDance Pop\tPop\n')
  names = ['cam_examples', 'cam_one_class', 'cam_two_classes',
           'tsne_image_vectors']
  before = _snapshot(workdir / 'image')
  outcomes = figures.write_figures(workdir, names, taxonomy,
                                   log=lambda line: None)
  assert [o.name for o in outcomes] == names
  for outcome in outcomes:
    assert outcome.skipped is None, outcome.skipped
    with Image.open(outcome.path) as image:
      rgb = np.asarray(image.convert('RGB'))
    assert rgb.shape[1] >= 800 and rgb.std() > 5.0
  assert _snapshot(workdir / 'image') == before  # drawing wrote nothing there


# ----------------------------------------------------------- hierarchy


def _tiny_taxonomy(path: pathlib.Path) -> pathlib.Path:
  """conftest's labels: 'Indie Rock' under 'Rock', 'Vocal Jazz' under
  'Jazz', 'Dance Pop' under 'Pop'."""
  rows = ['label\tparent'] + [
      f'{label}\t{"" if j % 2 == 0 else tiny.TINY_LABELS[j - 1]}'
      for j, label in enumerate(tiny.TINY_LABELS)]
  path.write_text('\n'.join(rows) + '\n', encoding='utf-8')
  return path


def _decide_children_only(tagger):
  for stage in tagger.stages.values():
    if stage.thresholds is not None:
      stage.thresholds = np.where(np.arange(len(tiny.TINY_LABELS)) % 2,
                                  -np.inf, np.inf)


def test_decisions_never_hold_a_child_without_its_parent(workdir, tagger,
                                                         media, tmp_path,
                                                         capsys):
  # The conftest shards name no corpus: no taxonomy, top level refused.
  assert tagger.parents is None
  with pytest.raises(errors.TaggingError, match='--taxonomy'):
    tagger.predict(audio=[media['files']['wav']], level='top')
  taxonomy = _tiny_taxonomy(tmp_path / 'taxonomy.tsv')
  tree = tagger_lib.Tagger.from_workdir(workdir, taxonomy=taxonomy)
  assert tree.taxonomy_source == str(taxonomy)
  # The exported bundle carries the taxonomy.
  bundle = tree.export(tmp_path / 'bundle')
  loaded = tagger_lib.Tagger.from_workdir(bundle)
  assert loaded.taxonomy == tree.taxonomy
  np.testing.assert_array_equal(loaded.parents, tree.parents)
  children = [j for j in range(len(tiny.TINY_LABELS)) if j % 2]
  # Thresholds that decide every child and no parent: the rule must add
  # the parents back.
  _decide_children_only(tree)
  kwargs = dict(audio=[media['files']['flac']], cover=media['cover'],
                reviews='chorus catchy radio')
  result = tree.predict(**kwargs)
  assert set(result['decisions']) == set(tiny.TINY_LABELS)
  ranks = {x['label']: i for i, x in enumerate(result['labels'])}
  assert result['decisions'] == sorted(result['decisions'], key=ranks.get)
  top = tree.predict(**kwargs, level='top')
  assert [x['label'] for x in top['labels']] == [
      x['label'] for x in result['labels']
      if tiny.TINY_LABELS.index(x['label']) not in children]
  assert set(top['decisions']) == {'Rock', 'Jazz', 'Pop'}
  np.testing.assert_array_equal(top['scores'], result['scores'])
  # Without the taxonomy the same thresholds decide the children alone.
  plain = tagger_lib.Tagger.from_workdir(workdir)
  _decide_children_only(plain)
  assert set(plain.predict(**kwargs)['decisions']) == {
      tiny.TINY_LABELS[j] for j in children}
  # The CLI: --level top without a taxonomy is refused (exit 2); with one,
  # every row lists top-level genres only.
  wav = media['files']['wav']
  code, _ = _cli('predict', '--workdir', str(workdir), '--audio', wav,
                 '--level', 'top', capsys=capsys)
  assert code == 2
  code, out = _cli('predict', '--workdir', str(workdir), '--audio', wav,
                   '--level', 'top', '--taxonomy', str(taxonomy),
                   '--top-k', '6', capsys=capsys)
  assert code == 0
  rows = json.loads(out)
  assert len(rows) == 1 and rows[0]['error'] is None
  assert {x['label'] for x in rows[0]['labels']} == {'Rock', 'Jazz', 'Pop'}
  assert set(rows[0]['decisions']) <= {'Rock', 'Jazz', 'Pop'}

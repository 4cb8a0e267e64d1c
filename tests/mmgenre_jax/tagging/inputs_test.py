"""Dubious input and resumed catalogs: warnings, stale rows, kill -9.

The readers' facts (input_pipeline.features.audio_info.AudioInfo from
input_pipeline.features.streaming and features.audio.decode) and tagging's
wording of them (mmgenre_jax.tagging.inputs.audio_warnings, audio_notes) on
real small files;
then `mmgenre predict` / `embed` on the tiny audio stage that conftest.full_run
trains once per session: duration_s and warnings in every output, resumed
catalogs that drop rows of inputs gone and redo rows of inputs changed, and a
catalog run killed with SIGKILL and resumed.
"""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import soundfile as sf

from input_pipeline.features import frontends
from input_pipeline.features import streaming
from input_pipeline.features import audio as audio_features
from mmgenre_jax import cli
from mmgenre_jax.data import facts as data_facts
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import inputs
from mmgenre_jax.tagging import tagger as tagger_lib

REPO = pathlib.Path(__file__).resolve().parents[3]
SR = audio_features.SAMPLE_RATE


def _signal(seconds, rate, *, amplitude=0.3, hz=440.0, seed=0):
  """A tone plus a little noise, float32 [n]."""
  t = np.arange(int(round(seconds * rate))) / rate
  noise = np.random.default_rng(seed).standard_normal(t.size)
  return (amplitude * np.sin(2 * np.pi * hz * t) +
          0.01 * noise).astype(np.float32)


def _write(path, y, rate, **kwargs):
  sf.write(path, y, rate, **kwargs)
  return os.fspath(path)


def _stream(path):
  """(windows [n, 322, 96], AudioInfo, warnings) of the tagging reader."""
  stream = streaming.WindowStream(path)
  windows = np.concatenate(list(stream))
  return windows, stream.info, inputs.audio_warnings(stream.info)


def _notes(path):
  """The tagging reader's notes (normal processing) about a file."""
  return inputs.audio_notes(_stream(path)[1])


# ------------------------------------------------------------ the readers


def test_truncated_mp3_is_measured_and_padded(tmp_path):
  full = _write(tmp_path / 'full.mp3', _signal(20.0, 44100), 44100)
  cut = tmp_path / 'cut.mp3'
  cut.write_bytes(pathlib.Path(full).read_bytes()[:4096])  # The first 4 KB.
  with sf.SoundFile(cut) as handle:
    assert handle.frames == 20 * 44100  # The header still promises 20 s.
    decodable = handle.read(dtype='float32').shape[0] / 44100
  assert 0.3 < decodable < 2.0
  windows, info, warnings = _stream(cut)
  assert info.duration_s == pytest.approx(decodable, abs=1e-9)
  assert info.header_duration_s == 20.0
  assert warnings == [
      f'shorter than one 15 s patch ({decodable:.2f} s), padded',
      f'truncated: the header promises 20.00 s, only {decodable:.2f} s '
      'decode']
  # Resampling is normal processing: a note, not a warning (issue 27).
  assert _notes(cut) == ['resampled from 44100 Hz to 22050 Hz']
  # One window over what decodes, the rest the -80 dB floor of the padding.
  assert windows.shape == (1, 322, 96)
  frames = int(decodable * SR / audio_features.HOP_LENGTH)
  np.testing.assert_array_equal(windows[0, frames + 20:], -80.0)


def test_very_short_wav(tmp_path):
  path = _write(tmp_path / 'short.wav', _signal(0.03, SR), SR)
  _, info, warnings = _stream(path)
  assert info.duration_s == pytest.approx(0.03, abs=1 / SR)
  assert info.header_duration_s == info.duration_s
  assert warnings == ['shorter than one 15 s patch (0.030 s), padded']
  # A whole track of 15 s or more is not padded; a 22,050 Hz mono file says
  # nothing at all.
  path = _write(tmp_path / 'long.wav', _signal(15.0, SR), SR)
  _, info, warnings = _stream(path)
  assert (info.duration_s, warnings) == (15.0, [])


@pytest.mark.parametrize('seconds', [5.0, 40.0])  # Whole decode, blocks.
def test_silence(tmp_path, seconds):
  path = _write(tmp_path / 'silence.flac', np.zeros(int(seconds * SR)), SR)
  windows, info, warnings = _stream(path)
  assert info.silent and info.peak_dbfs == -np.inf
  assert 'silent (peak -inf dBFS)' in warnings
  # Featureless windows: the -80 dB floor everywhere (no reference power),
  # on the whole-track path (5 s) and the block path (40 s) alike.
  np.testing.assert_array_equal(windows, -audio_features.TOP_DB)
  # Hiss at -70 dBFS is silence too; the same hiss at -50 dBFS is not.
  for amplitude, silent in ((10 ** (-70 / 20), True),
                            (10 ** (-50 / 20), False)):
    y = amplitude * np.sign(_signal(seconds, SR, amplitude=1.0))
    path = _write(tmp_path / 'hiss.wav', y, SR, subtype='FLOAT')
    _, info, warnings = _stream(path)
    assert info.silent == silent
    assert info.peak_dbfs == pytest.approx(20 * np.log10(amplitude),
                                           abs=0.01)
    assert any(w.startswith('silent') for w in warnings) == silent


@pytest.mark.parametrize('seconds', [6.0, 30.0])
def test_stereo_48k_is_mono_mixed_and_resampled(tmp_path, seconds):
  y = _signal(seconds, 48000)
  path = _write(tmp_path / 'stereo.ogg', np.stack([y, 0.5 * y], axis=1),
                48000)
  _, info, warnings = _stream(path)
  assert (info.channels, info.source_sr) == (2, 48000)
  assert info.duration_s == pytest.approx(seconds, abs=1e-6)
  # What most real recordings are: notes, and no warning unless something
  # may make the scores wrong (here, only the 6 s one is too short).
  assert inputs.audio_notes(info) == ['mono-mixed from 2 channels',
                                      'resampled from 48000 Hz to 22050 Hz']
  assert warnings == ([] if seconds >= 15 else
                      [f'shorter than one 15 s patch ({seconds:.2f} s), '
                       'padded'])


def test_clipped_signal_is_flagged(tmp_path):
  # A sine driven to twice full scale: |sin| >= 0.5 two thirds of the time.
  y = np.clip(2.0 * _signal(20.0, SR, amplitude=1.0), -1.0, 1.0)
  path = _write(tmp_path / 'clipped.wav', y, SR, subtype='PCM_16')
  _, info, warnings = _stream(path)
  assert info.clipped_fraction == pytest.approx(2 / 3, abs=0.02)
  (clipped,) = [w for w in warnings if w.startswith('clipped')]
  assert clipped == (f'clipped ({100 * info.clipped_fraction:.1f} % of '
                     'samples at full scale)')
  # The same sine at half scale is not.
  path = _write(tmp_path / 'clean.wav', 0.5 * y, SR, subtype='PCM_16')
  _, info, warnings = _stream(path)
  assert info.clipped_fraction == 0.0 and warnings == []


@pytest.mark.parametrize('seconds', [5.0, 30.0])
def test_nan_in_float_wav_is_replaced(tmp_path, seconds):
  y = _signal(seconds, SR)
  clean = _write(tmp_path / 'clean.wav', y, SR, subtype='FLOAT')
  middle = y.size // 2  # Inside the windows of a long track too.
  y[middle:middle + 10] = np.nan
  y[middle + 100] = np.inf
  path = _write(tmp_path / 'nan.wav', y, SR, subtype='FLOAT')
  windows, info, warnings = _stream(path)
  assert info.nonfinite == 11
  short = (['shorter than one 15 s patch (5.00 s), padded']
           if seconds < 15 else [])
  assert warnings == short + ['NaN/Inf replaced by 0 (11 samples)']
  assert np.isfinite(windows).all()
  # The same as the file with zeros there.
  y[middle:middle + 101] = np.where(np.isfinite(y[middle:middle + 101]),
                                    y[middle:middle + 101], 0.0)
  zeros = _write(tmp_path / 'zeros.wav', y, SR, subtype='FLOAT')
  np.testing.assert_array_equal(windows, streaming.track_windows(zeros))
  assert not np.array_equal(windows, streaming.track_windows(clean))
  # Training's readers still refuse such a file.
  with pytest.raises(audio_features.features.FeatureError, match='NaN'):
    audio_features.audio_patch_and_windows(path, seed=0)


def test_facts_do_not_change_the_features(tmp_path):
  y = _signal(35.0, 44100)
  path = _write(tmp_path / 'music.flac', np.stack([y, y[::-1]], axis=1),
                44100)
  patch, windows = audio_features.audio_patch_and_windows(path, seed=3)
  again = audio_features.audio_patch_and_windows(path, seed=3,
                                                 return_info=True)
  np.testing.assert_array_equal(again[0], patch)
  np.testing.assert_array_equal(again[1], windows)
  info = again[2]
  assert (info.duration_s, info.source_sr, info.channels) == (35.0, 44100, 2)
  assert info.observed_s == 35.0 and info.nonfinite == 0
  decoded, whole = audio_features.decode(path)
  np.testing.assert_allclose(decoded, (y + y[::-1]) / 2, atol=1e-4)
  assert whole == info
  # The streaming reader observes the windows' span, not the dropped ends.
  stream = streaming.WindowStream(path)
  np.testing.assert_allclose(np.concatenate(list(stream)), windows,
                             atol=0.05)
  assert 0.6 * 35.0 < stream.info.observed_s < 35.0
  assert stream.info.duration_s == 35.0


# ------------------------------------------------------ through the Tagger


@pytest.fixture(scope='module')
def stage(full_run):
  """The tiny trained audio stage workdir (conftest)."""
  return full_run[0]


@pytest.fixture(scope='module')
def tagger(stage):
  return tagger_lib.Tagger.from_workdir(stage)


def _cli(*argv, capsys):
  code = cli.main([str(a) for a in argv])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def test_predict_result_has_duration_and_warnings(tagger, tmp_path):
  short = _write(tmp_path / 'short.wav', _signal(3.0, SR), SR)
  y = _signal(20.0, 48000)
  stereo = _write(tmp_path / 'stereo.wav', np.stack([y, y], axis=1), 48000)
  result = tagger.predict(audio=short)
  assert result['duration_s'] == pytest.approx(3.0)
  assert result['warnings'] == [
      'shorter than one 15 s patch (3.00 s), padded']
  assert result['notes'] == []
  # A normal recording (stereo, 48 kHz, 20 s): notes, no warning.
  alone = tagger.predict(audio=stereo)
  assert alone['warnings'] == []
  assert alone['notes'] == ['mono-mixed from 2 channels',
                            'resampled from 48000 Hz to 22050 Hz']
  # An album: durations add up, each warning and note names its track.
  album = tagger.predict(audio=[short, stereo])
  assert album['duration_s'] == pytest.approx(23.0)
  assert album['warnings'] == [
      f'{short}: shorter than one 15 s patch (3.00 s), padded']
  assert album['notes'] == [f'{stereo}: mono-mixed from 2 channels',
                            f'{stereo}: resampled from 48000 Hz to 22050 Hz']
  vectors, report = tagger.embed_and_report(audio=[stereo])
  assert 'audio' in vectors
  assert report == {'duration_s': pytest.approx(20.0), 'warnings': [],
                    'notes': ['mono-mixed from 2 channels',
                              'resampled from 48000 Hz to 22050 Hz']}


def _catalog(root: pathlib.Path, count: int, seconds: float = 16.0):
  """`count` albums of one track each, and their catalog CSV."""
  music = root / 'music'
  music.mkdir(parents=True, exist_ok=True)
  manifest = root / 'catalog.csv'
  with open(manifest, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(items_lib.MANIFEST_COLUMNS)
    for i in range(count):
      path = _write(music / f't{i}.wav', _signal(
          seconds if i else 2.0, SR, hz=200.0 + 40 * i, seed=i), SR)
      writer.writerow([f'A{i}', path, '', ''])
  return manifest


def _rows(path: pathlib.Path, fmt: str):
  if fmt == 'json':
    return json.loads(path.read_text())
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize('fmt', ['json', 'csv'])
def test_catalog_rows_record_warnings_and_sources(stage, tmp_path, capsys,
                                                  fmt):
  manifest = _catalog(tmp_path, 2)
  out = tmp_path / f'tags.{fmt}'
  code, _, _ = _cli('predict', '--workdir', stage, '--manifest', manifest,
                    '--format', fmt, '--out', out, '--no-progress',
                    capsys=capsys)
  assert code == 0
  rows = {r['input']: r for r in _rows(out, fmt)}
  music = tmp_path / 'music'
  info = os.stat(music / 't0.wav')
  if fmt == 'json':
    assert rows['A0']['duration_s'] == 2.0
    assert rows['A0']['warnings'] == [
        'shorter than one 15 s patch (2.00 s), padded']
    assert rows['A1']['warnings'] == [] and rows['A1']['error'] is None
    assert rows['A0']['sources'] == [{'path': os.fspath(music / 't0.wav'),
                                      'size': info.st_size,
                                      'mtime_ns': info.st_mtime_ns}]
  else:
    assert list(rows['A0']) == list(items_lib.CSV_COLUMNS)
    assert rows['A0']['duration_s'] == '2.0000'
    assert rows['A0']['warnings'] == (
        'shorter than one 15 s patch (2.00 s), padded')
    assert rows['A1']['warnings'] == '' and rows['A1']['duration_s'] == (
        '16.0000')
    assert rows['A0']['sources'] == f'{info.st_size}:{info.st_mtime_ns}'


@pytest.mark.parametrize('fmt', ['json', 'csv'])
def test_resume_drops_gone_rows_and_redoes_changed_ones(stage, tmp_path,
                                                        capsys, fmt):
  _catalog(tmp_path, 4)  # Its tracks: music/t0.wav ... t3.wav.
  music = tmp_path / 'music'
  out = tmp_path / f'tags.{fmt}'
  args = ('predict', '--workdir', stage, '--audio', music, '--format', fmt,
          '--out', out, '--no-progress')
  assert _cli(*args, capsys=capsys)[0] == 0
  first = {r['input']: r for r in _rows(out, fmt)}
  assert len(first) == 4
  # t3 deleted, t1 rewritten (a silent 20 s track now), t0 and t2 as they
  # were; a row that an older version wrote (no sources) is kept as is.
  os.remove(music / 't3.wav')
  _write(music / 't1.wav', np.zeros(20 * SR, np.float32), SR)
  kept = [first[os.fspath(music / f't{i}.wav')] for i in (0, 2, 1, 3)]
  kept[1] = dict(kept[1])
  if fmt == 'json':
    for key in ('sources', 'duration_s', 'warnings'):
      del kept[1][key]
    out.write_text(json.dumps(kept))
  else:
    kept[1]['sources'] = ''
    with open(out, 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=items_lib.CSV_COLUMNS)
      writer.writeheader()
      writer.writerows(kept)
  code, _, err = _cli(*args, capsys=capsys)
  assert code == 0
  assert (f'Resuming {out}: 2 rows kept, 1 dropped (input gone), 1 redone '
          '(input changed). 1 of 3 inputs to tag.') in err
  rows = _rows(out, fmt)
  by_input = {r['input']: r for r in rows}
  assert sorted(by_input) == [os.fspath(music / f't{i}.wav')
                              for i in (0, 1, 2)]
  assert len(rows) == 3
  redone = by_input[os.fspath(music / 't1.wav')]
  if fmt == 'json':
    assert redone['warnings'] == ['silent (peak -inf dBFS)']
    assert redone['duration_s'] == 20.0
    assert 'sources' not in by_input[os.fspath(music / 't2.wav')]
  else:
    assert redone['warnings'] == 'silent (peak -inf dBFS)'
    assert by_input[os.fspath(music / 't2.wav')]['sources'] == ''
  for i in (0, 2):
    assert by_input[os.fspath(music / f't{i}.wav')] == kept[i // 2]
  # Resuming a complete, valid output changes nothing.
  before = out.read_bytes()
  code, _, err = _cli(*args, capsys=capsys)
  assert code == 0 and out.read_bytes() == before
  assert '3 rows kept. 0 of 3 inputs to tag.' in err


def test_embed_index_lists_duration_and_warnings(stage, tmp_path, capsys):
  manifest = _catalog(tmp_path, 2)
  out = tmp_path / 'vectors'
  code, _, _ = _cli('embed', '--workdir', stage, '--manifest', manifest,
                    '--out', out, '--no-progress', capsys=capsys)
  assert code == 0
  with open(out / 'index.tsv', newline='') as f:
    index = list(csv.DictReader(f, delimiter='\t'))
  audio = {r['input']: r for r in index if r['representation'] == 'audio'}
  assert audio['A0']['duration_s'] == '2.0000'
  assert audio['A0']['warnings'] == (
      'shorter than one 15 s patch (2.00 s), padded')
  assert audio['A1'] == {'representation': 'audio', 'row': '1',
                         'input': 'A1', 'duration_s': '16.0000',
                         'warnings': ''}


# -------------------------------------------------------------- kill -9

_PREDICT = ('import sys; from mmgenre_jax import cli; '
            'sys.exit(cli.main(sys.argv[1:]))')


def _count_rows(path: pathlib.Path, fmt: str) -> int:
  """Whole rows in a file being written (JSON: one object per line)."""
  if not path.is_file():
    return 0
  lines = path.read_text().splitlines()
  if fmt == 'json':
    return sum(line.rstrip(',').endswith('}') for line in lines)
  return max(0, len(lines) - 1)


def _run_and_kill(argv, out, fmt, rows: int, timeout: float = 400.0):
  """Starts `mmgenre predict` in a subprocess; SIGKILL once `out` has grown
  by `rows` whole rows. Returns whether it was killed (not finished)."""
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS='cpu',
             TF_CPP_MIN_LOG_LEVEL='2')
  start = _count_rows(out, fmt)
  process = subprocess.Popen([sys.executable, '-c', _PREDICT, *argv],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
  deadline = time.monotonic() + timeout
  try:
    while process.poll() is None:
      if _count_rows(out, fmt) >= start + rows:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
      assert time.monotonic() < deadline, 'predict never wrote its rows'
      time.sleep(0.02)
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
  stderr = process.stderr.read().decode(errors='replace')
  assert process.returncode == 0, stderr[-3000:]
  return False


# One format killed for real; what a kill leaves of either format (any
# prefix of the file) is test_an_output_cut_at_any_byte_is_recovered's.
@pytest.mark.parametrize('fmt', ['json'])
def test_killed_catalog_run_resumes_to_a_valid_output(stage, tmp_path,
                                                      capsys, fmt):
  count = 10
  manifest = _catalog(tmp_path, count, seconds=40.0)
  out = tmp_path / f'tags.{fmt}'
  # Batches of 2 inputs: a batch's rows are written together, so each kill
  # (once 2 rows are out) lands after one or two batches of the 5.
  argv = [str(a) for a in ('predict', '--workdir', stage, '--manifest',
                           manifest, '--format', fmt, '--out', out,
                           '--no-progress', '--batch-items', 2)]
  # Killed after 2 rows, then again 2 rows into the resumed run.
  assert _run_and_kill(argv, out, fmt, rows=2)
  assert _run_and_kill(argv, out, fmt, rows=2)
  assert 4 <= _count_rows(out, fmt) < count
  # The interrupted file is readable as it is: whole rows, each input once.
  rows = (items_lib.read_json_rows(out.read_text())[0] if fmt == 'json' else
          items_lib._read_csv_rows(out.read_text())[0])
  assert len({r['input'] for r in rows}) == len(rows) >= 4
  code, _, err = _cli(*argv, capsys=capsys)
  assert code == 0 and 'Resuming' in err
  rows = _rows(out, fmt)  # Valid JSON / CSV.
  assert sorted(r['input'] for r in rows) == sorted(
      f'A{i}' for i in range(count))
  assert all(r['error'] in (None, '') for r in rows)
  assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


@pytest.mark.parametrize('fmt', ['json', 'csv'])
def test_an_output_cut_at_any_byte_is_recovered(tmp_path, fmt):
  """What a kill can leave (any prefix of the file) resumes to valid rows."""
  items = [items_lib.Item(f'A{i}', [os.fspath(tmp_path / f'missing{i}.wav')])
           for i in range(4)]

  def row(item, note=''):
    return {'input': item.key, 'labels': [{'label': 'Jazz', 'score': 0.5}],
            'decisions': ['Jazz'], 'model': f'm{note}', 'duration_s': 1.5,
            'warnings': ['silent (peak -inf dBFS)', 'ünïcode, "quoted"'],
            'notes': [], 'error': None, 'sources': items_lib.sources(item)}

  out = tmp_path / f'tags.{fmt}'
  writer = items_lib.ResultWriter(out, fmt)
  for item in writer.start(items[:3]):
    writer.write(row(item))
  writer.close()
  complete = out.read_bytes()
  for cut in range(len(complete) + 1):
    out.write_bytes(complete[:cut])
    writer = items_lib.ResultWriter(out, fmt)
    todo = writer.start(items)
    for item in todo:
      writer.write(row(item, 'new'))
    writer.close()
    rows = _rows(out, fmt)
    assert sorted(r['input'] for r in rows) == ['A0', 'A1', 'A2', 'A3'], cut
    kept = [r for r in rows if r['model'] == 'm']
    assert len(todo) == 4 - len(kept) and 'A3' in {i.key for i in todo}


def test_a_model_refuses_shards_of_another_front_end():
  # A stage trained on shards from before the record (librosa), whose
  # shards were prepared again with the JAX front end.
  stage = types.SimpleNamespace(
      name='audio', source='runs/x/audio', data_dir='runs/data/shards',
      facts=data_facts.DataFacts(3, 'multi_hot'))
  assert inputs.audio_frontend(stage, {}) is frontends.LIBROSA_SOXR_HQ
  with pytest.raises(frontends.FrontEndMismatch) as e:
    inputs.audio_frontend(stage, {'frontend': 'jax_polyphase'})
  message = str(e.value)
  assert "'librosa_soxr_hq'" in message and "'jax_polyphase'" in message
  assert '--frontend librosa_soxr_hq' in message and 'retrain' in message
  stage.facts = data_facts.DataFacts(3, 'multi_hot', frontend='jax_polyphase')
  assert inputs.audio_frontend(stage, {'frontend': 'jax_polyphase'}) is (
      frontends.JAX_POLYPHASE)

"""mmgenre export --format onnx|stablehlo: the graphs give Tagger's scores.

The tiny trained pipeline (helpers/tagging_pipeline.py) is exported once
per format, from a bundle of it whose audio stage records the jax_polyphase
front end (`jax_model`: the PCM graphs' own; the tiny shards record none,
so the workdir is a librosa_soxr_hq model, which gets no PCM graphs); each
entry point, reloaded with jax.export.deserialize or run by onnxruntime,
is compared with Tagger.predict on the same files, at batch sizes 1 and 5,
to TOLERANCE. The network inputs are computed as the Tagger computes them
(streaming windows, evaluation_cover, the tf-idf vectorizer), so the
graphs alone are compared. examples/onnx_tagger.py resamples whole files
with soxr, the Tagger block by block with the JAX polyphase resampler; its
scores are compared to FRONTEND_TOLERANCE.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import onnxruntime
from PIL import Image
import pytest
import soundfile
import soxr

from helpers import tagging_pipeline
from input_pipeline.features import audio as audio_features
from input_pipeline.features import frontends
from input_pipeline.features import image as image_features
from input_pipeline.features import streaming
from input_pipeline.features import text as text_features
from mmgenre_jax import cli
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.tagging import tagger as tagger_lib
from mmgenre_jax.tagging.exports import graphs
from mmgenre_jax.tagging.exports import writer

REPO = pathlib.Path(__file__).resolve().parents[4]
TOLERANCE = 1e-4
# The PCM graphs and the example (whole files resampled with soxr) vs the
# Tagger (the same JAX front end, resampling with it block by block):
# measured at most 1.1e-4 (the 48 kHz flac), 7e-7 at 22,050 Hz. (0.003 when
# the Tagger's features were librosa_soxr_hq's, before the PCM graphs
# followed the model's front end.)
FRONTEND_TOLERANCE = 1e-3
# Front-end graphs long enough for every test file, and only those: each
# takes seconds to convert.
FRONTEND_SECONDS = (60,)


@pytest.fixture(scope='module')
def jax_model(tagging_workdir, tmp_path_factory):
  """A bundle of the tiny pipeline whose audio stage was trained, its
  records say (data_facts.json and the manifest's copy), on jax_polyphase
  features."""
  bundle = tmp_path_factory.mktemp('jax_model') / 'bundle'
  tagger_lib.Tagger.from_workdir(tagging_workdir).export(bundle)
  for name in ('data_facts.json', 'data/manifest.json'):
    path = bundle / 'stages' / 'audio' / name
    record = json.loads(path.read_text(encoding='utf-8'))
    record[frontends.MANIFEST_KEY] = frontends.JAX_POLYPHASE.name
    path.write_text(json.dumps(record), encoding='utf-8')
  return bundle


@pytest.fixture(scope='module')
def tagger(jax_model):
  loaded = tagger_lib.Tagger.from_workdir(jax_model)
  assert loaded.feature_data('audio').frontend is frontends.JAX_POLYPHASE
  return loaded


@pytest.fixture(scope='module')
def exports(tagger, tmp_path_factory):
  root = tmp_path_factory.mktemp('exports')
  return {fmt: writer.write(tagger, root / fmt, fmt, FRONTEND_SECONDS)
          for fmt in writer.FORMATS}


@pytest.fixture(scope='module')
def inputs(media, tmp_path_factory):
  """Five items: tracks, covers and reviews, each as files."""
  root = tmp_path_factory.mktemp('export_inputs')
  files = media['files']
  tracks = [[files['wav']], [files['flac']], [files['ogg']], [files['mp3']],
            [files['wav'], files['flac']]]  # the last one: an album
  covers = [media['cover']]
  rng = np.random.default_rng(0)
  for i, (h, w) in enumerate(((40, 90), (32, 32), (70, 50), (120, 100))):
    path = root / f'cover{i}.png'
    Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(
        path)
    covers.append(os.fspath(path))
  reviews = [tagging_pipeline.review(f'ALx{i}') for i in range(4)]
  reviews.append('guitar swing radio, and words the model never saw.')
  return {'audio': tracks, 'image': covers, 'text': reviews}


def _audio_arrays(items, frontend):
  """windows [B, N, 322, 96] (zero-padded) and weights [B, N], by the
  model's audio `frontend` (as the Tagger computes them)."""
  per_item = []
  for paths in items:
    tracks = [np.concatenate(list(streaming.WindowStream(
        p, frontend=frontend))) for p in paths]
    weights = np.concatenate([np.full(len(t), 1 / (len(t) * len(tracks)))
                              for t in tracks])
    per_item.append((np.concatenate(tracks), weights))
  n = max(len(w) for _, w in per_item)
  windows = np.zeros((len(items), n, 322, 96), np.float32)
  weights = np.zeros((len(items), n), np.float32)
  for b, (x, w) in enumerate(per_item):
    windows[b, :len(x)], weights[b, :len(w)] = x, w
  return [windows, weights]


def _arrays(tagger, modalities, inputs, rows):
  """The entry point's arguments for the items `rows` of `inputs`."""
  arrays = []
  for modality in modalities:
    stage = next(tagger.stages[n] for n in tagger.order
                 if tagger.stages[n].kind == modality)
    data = tagger.feature_data(stage.name)
    given = [inputs[modality][r] for r in rows]
    if modality == 'audio':
      arrays += _audio_arrays(given, data.frontend)
    elif modality == 'image':
      arrays.append(np.stack([image_features.evaluation_cover(
          c, crop_size=data.image_size, stored_side=data.stored_image_size)
                              for c in given]).astype(np.uint8))
    else:
      texts = [text_features.aggregate_reviews([t]) for t in given]
      arrays.append(data.vectorizer.transform(texts).toarray().astype(
          np.float32))
  return arrays


def _expected(tagger, modalities, inputs, rows):
  """Tagger.predict's scores [B, L] of the same items."""
  names = {'audio': 'audio', 'image': 'cover', 'text': 'reviews'}
  return np.stack([tagger.predict(**{names[m]: inputs[m][r]
                                     for m in modalities})['scores']
                   for r in rows])


def _run(fmt, directory, entry, arrays):
  path = directory / entry['file']
  if fmt == 'stablehlo':
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    return np.asarray(exported.call(*arrays))
  session = onnxruntime.InferenceSession(os.fspath(path))
  return session.run(None, {i['name']: a
                            for i, a in zip(entry['inputs'], arrays)})[0]


@pytest.mark.parametrize('fmt', writer.FORMATS)
def test_every_entry_point_gives_the_taggers_scores(fmt, exports, tagger,
                                                    inputs):
  info = json.loads((exports[fmt] / workdir_lib.EXPORT_JSON).read_text())
  assert sorted(info['entry_points']) == ['audio', 'audio_pcm_60s', 'cover',
                                          'fused', 'text']
  assert info['labels'] == tagger.labels
  assert info['opset'] == (writer.ONNX_OPSET if fmt == 'onnx' else None)
  assert info['versions']['jax'] == jax.__version__
  worst = {}
  for name in graphs.ENTRY_POINTS:
    entry = info['entry_points'][name]
    modalities = entry['modalities']
    assert entry['model'] == tagger.predict(**{
        {'audio': 'audio', 'image': 'cover', 'text': 'reviews'}[m]:
        inputs[m][0] for m in modalities})['model']
    for rows in ([0], [0, 1, 2, 3, 4]):
      got = _run(fmt, exports[fmt], entry,
                 _arrays(tagger, modalities, inputs, rows))
      want = _expected(tagger, modalities, inputs, rows)
      assert got.shape == (len(rows), len(tagger.labels))
      worst[name, len(rows)] = float(np.abs(got - want).max())
  assert max(worst.values()) < TOLERANCE, worst


def test_the_contract_and_text_vectorizer_are_beside_the_graphs(
    exports, tagger):
  directory = exports['onnx']
  info = json.loads((directory / workdir_lib.EXPORT_JSON).read_text())
  assert info['audio']['sample_rate'] == 22050
  assert info['audio']['window_frames'] == 322
  assert info['audio']['window_hop'] == 161
  assert info['frontend']['files'] == {'1323000': 'frontend_60s.onnx'}
  assert info['pcm_graphs'] == {'written': True, 'note': None}
  assert info['audio']['frontend']['name'] == 'jax_polyphase'
  assert 'polyphase' in info['audio']['resampling']
  assert info['cover'] == {**info['cover'], 'side': 32,
                           'resize_shorter_side_to': 37}
  fused = info['entry_points']['fused']
  assert [i['name'] for i in fused['inputs']] == ['windows', 'weights',
                                                  'tfidf', 'cover']
  assert fused['inputs'][3]['dtype'] == 'uint8'
  stage = tagger.stages['fused']
  np.testing.assert_allclose(
      [np.nan if t is None else t for t in fused['thresholds']],
      stage.thresholds)
  vectorizer = text_features.load_vectorizer(
      directory / info['text']['vectorizer'])
  text = tagger.feature_data('text').vectorizer
  assert vectorizer.vocabulary_ == text.vocabulary_
  np.testing.assert_array_equal(vectorizer.idf_, text.idf_)


# What the example's Python may not import.
_BLOCKER = '''
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('jax', 'jaxlib', 'flax', 'tensorflow',
                              'mmgenre_jax', 'input_pipeline'):
      raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_the_example_tags_with_onnxruntime_alone(exports, jax_model,
                                                 media, capsys, tmp_path):
  files = media['files']
  paths = [files[k] for k in ('wav', 'flac', 'ogg', 'mp3')]
  (tmp_path / 'probe.py').write_text('import jax\n')
  blocked = subprocess.run(
      [sys.executable, '-c', _BLOCKER, os.fspath(tmp_path / 'probe.py')],
      capture_output=True, text=True, check=False)
  assert 'jax is blocked' in blocked.stderr
  runs = []
  for flags in ([], ['--host-windows']):
    done = subprocess.run(
        [sys.executable, '-c', _BLOCKER, os.fspath(REPO / 'examples' /
                                                   'onnx_tagger.py'),
         os.fspath(exports['onnx']), *paths, '--top-k', '3', *flags],
        capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    runs.append(json.loads(done.stdout))
  rows, host = runs
  # audio_pcm (in the graph) and the windows cut by the example agree.
  np.testing.assert_allclose([x['score'] for r in rows for x in r['labels']],
                             [x['score'] for r in host for x in r['labels']],
                             atol=TOLERANCE, rtol=0)
  assert cli.main(['predict', '--workdir', str(jax_model), '--audio',
                   *paths, '--top-k', '3', '--no-progress']) == 0
  predicted = json.loads(capsys.readouterr().out)
  assert [r['input'] for r in rows] == [r['input'] for r in predicted]
  for row, want in zip(rows, predicted):
    assert [x['label'] for x in row['labels']] == [
        x['label'] for x in want['labels']]
    gap = np.abs(np.subtract([x['score'] for x in row['labels']],
                             [x['score'] for x in want['labels']]))
    assert gap.max() < FRONTEND_TOLERANCE, (row, want)
    assert row['decisions'] == want['decisions']
    assert row['duration_s'] == pytest.approx(want['duration_s'], abs=1e-3)


@pytest.fixture(scope='module')
def head_dir(tagging_workdir, tmp_path_factory):
  """A finetuned head on pitch: 'low' below 300 Hz, 'high' above."""
  root = tmp_path_factory.mktemp('export_head')
  rows = ['input,labels']
  for i, hz in enumerate(np.geomspace(80, 2400, 12)):
    path = tagging_pipeline.tone(root / f't{i}.wav', 4.0, 22050, hz)
    rows.append(f'{path},{"low" if hz < 300 else "high"}')
  (root / 'labels.csv').write_text('\n'.join(rows) + '\n')
  out = root / 'head'
  assert cli.main(['finetune', '--workdir', str(tagging_workdir), '--labels',
                   str(root / 'labels.csv'), '--out', str(out),
                   '--no-progress']) == 0
  return out


def test_a_head_exports_and_answers_with_its_labels(
    tagging_workdir, head_dir, inputs, tmp_path, capsys):
  out = tmp_path / 'tuned'
  assert cli.main(['export', str(tagging_workdir), '--head', str(head_dir),
                   '--format', 'stablehlo', '--out', str(out)]) == 0
  printed = capsys.readouterr()
  assert f'Wrote {out}' in printed.out
  info = json.loads((out / workdir_lib.EXPORT_JSON).read_text())
  tuned = tagger_lib.Tagger.from_workdir(tagging_workdir, head=head_dir)
  assert info['labels'] == tuned.labels == ['high', 'low']
  assert info['head'] == tuned.head.name
  # The head reads an audio representation: the entry points with audio,
  # without PCM graphs: the model's audio is librosa_soxr_hq's, theirs
  # jax_polyphase's. The one line on stderr is export.json's note.
  assert sorted(info['entry_points']) == ['audio', 'fused']
  assert info['frontend'] is None and not info['pcm_graphs']['written']
  assert info['audio']['frontend']['name'] == 'librosa_soxr_hq'
  note = info['pcm_graphs']['note']
  assert f'mmgenre export: {note}' in printed.err.splitlines()
  for fragment in ("'librosa_soxr_hq'", "'jax_polyphase'",
                   '--frontend jax_polyphase'):
    assert fragment in note
  # Asked for (frontend_seconds), they are refused, and nothing written.
  with pytest.raises(frontends.FrontEndMismatch) as refused:
    writer.write(tuned, tmp_path / 'refused', 'onnx', (60,))
  for fragment in ("'librosa_soxr_hq'", "'jax_polyphase'", 'retrain',
                   '--frontend jax_polyphase'):
    assert fragment in str(refused.value)
  assert not (tmp_path / 'refused').exists()
  for name in ('audio', 'fused'):
    entry = info['entry_points'][name]
    assert entry['model'] == tuned.head.describe()
    rows = [0, 1, 2, 3, 4]
    got = _run('stablehlo', out, entry,
               _arrays(tuned, entry['modalities'], inputs, rows))
    want = _expected(tuned, entry['modalities'], inputs, rows)
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_bad_input_is_one_line_and_exit_status_2(tagging_workdir, head_dir,
                                                 tmp_path, capsys):
  spec = json.loads((tagging_workdir / workdir_lib.PIPELINE_JSON).read_text())
  untrained = tmp_path / 'untrained'
  untrained.mkdir()
  for stage in spec['stages']:
    stage['workdir'] = os.fspath(
        (untrained if stage['name'] == spec['final'] else tagging_workdir)
        / stage['name'])
  (untrained / workdir_lib.PIPELINE_JSON).write_text(json.dumps(spec))
  other = tmp_path / 'other_head'
  shutil.copytree(head_dir, other)
  head_json = json.loads((other / 'head.json').read_text())
  head_json['model']['identity'] = 'another model'
  (other / 'head.json').write_text(json.dumps(head_json))
  capsys.readouterr()
  out = os.fspath(tmp_path / 'out')
  final = spec['final']
  cases = [
      ((os.fspath(untrained), '--format', 'onnx'),
       f"the final stage '{final}' was not loaded"),
      ((os.fspath(tagging_workdir), '--format', 'tflite'),
       "--format 'tflite': use one of bundle, onnx, stablehlo."),
      ((os.fspath(tagging_workdir), '--format', 'onnx', '--head',
        os.fspath(other)), 'was finetuned on another model'),
      ((os.fspath(tmp_path / 'nothing'), '--format', 'stablehlo'),
       'is not a directory')]
  for argv, message in cases:
    assert cli.main(['export', *argv, '--out', out]) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('mmgenre export: error: '), (
        argv, err)
    assert message in err[0], (argv, err)
  assert not os.path.exists(out)


@pytest.mark.parametrize('fmt', writer.FORMATS)
def test_the_front_end_graph_is_the_jax_front_end(fmt, exports):
  # pylint: disable-next=g-import-not-at-top
  from mmgenre_jax import frontend
  info = json.loads((exports[fmt] / workdir_lib.EXPORT_JSON).read_text())
  ((samples, name),) = info['frontend']['files'].items()
  rng = np.random.default_rng(3)
  t = np.arange(int(samples)) / 22050
  y = (0.4 * np.sin(2 * np.pi * 110 * t * (1 + t / 60)) +
       0.05 * rng.standard_normal(t.size)).astype(np.float32)[None]
  entry = {'file': name, 'inputs': [{'name': 'samples'}]}
  got = _run(fmt, exports[fmt], entry, [y])
  power = np.asarray(frontend.cqt(y, 22050)) ** 2
  want = np.log10(np.maximum(power, 1e-10))
  assert got.shape == want.shape == (1, 1 + int(samples) // 1024, 96)
  # In dB within 60 dB of the maximum, where the windows' values live.
  loud = want > want.max() - 6
  assert np.abs(10 * (got - want))[loud].max() < 1e-3


def _pcm(path):
  """Mono float32 PCM at 22,050 Hz (soxr HQ), as the example reads it."""
  data, rate = soundfile.read(path, dtype='float32', always_2d=True)
  y = data.mean(axis=1)
  return (y if rate == 22050 else soxr.resample(y, rate, 22050, 'HQ')
          ).astype(np.float32)


@pytest.mark.parametrize('fmt', writer.FORMATS)
def test_the_pcm_entry_point_is_front_end_windows_and_networks(
    fmt, exports, tagger, media):
  info = json.loads((exports[fmt] / workdir_lib.EXPORT_JSON).read_text())
  entry = info['entry_points']['audio_pcm_60s']
  windows_entry = info['entry_points']['audio']
  assert entry['model'] == windows_entry['model']
  assert [i['shape'] for i in entry['inputs']] == [[1, 60 * 22050], [1]]
  files = [media['files'][k] for k in ('wav', 'flac', 'ogg', 'mp3')]
  tracks = [_pcm(f) for f in files]
  pcm = np.zeros((len(tracks), 60 * 22050), np.float32)
  for row, y in enumerate(tracks):
    pcm[row, :len(y)] = y
  lengths = np.array([len(y) for y in tracks], np.int32)
  front = info['frontend']['files']['1323000']
  for row in range(len(tracks)):
    got = _run(fmt, exports[fmt], entry, [pcm[row:row + 1],
                                          lengths[row:row + 1]])[0]
    # The host's way: the front-end graph, dB relative to the track's own
    # frames, the library's whole-track windows, the audio graph.
    n = max(int(lengths[row]), 15 * 22050)
    log_power = _run(fmt, exports[fmt], {'file': front, 'inputs': [
        {'name': 'samples'}]}, [pcm[row:row + 1]])[0, :1 + n // 1024]
    db = np.maximum(10 * (log_power - log_power.max()), -80.0)
    windows = audio_features.track_windows(db.astype(np.float32))
    weights = np.full((1, len(windows)), 1 / len(windows), np.float32)
    host = _run(fmt, exports[fmt], windows_entry, [windows[None], weights])
    np.testing.assert_allclose(got, host[0], atol=TOLERANCE, rtol=0)
    # Tagger.predict: its resampling is polyphase, block by block.
    want = tagger.predict(audio=files[row])['scores']
    assert np.abs(got - want).max() < FRONTEND_TOLERANCE

"""Tests of mmgenre_jax.data.representations and the stages built on it.

Extraction of the tiny audio run (tiny.full_run) at album level, the
grouping and join functions, and fusion / alignment stages trained on
extracted representations (docs/workdirs.md §1-2).
"""

import collections
import json

import jax
import numpy as np
import pytest

from helpers import tiny
from configs import default as default_lib
from configs import mumu_fusion
from input_pipeline.records import shard_reader
from mmgenre_jax.train import checkpoints
from mmgenre_jax.data import sources as data_sources
from mmgenre_jax.evaluation import evaluate
from mmgenre_jax.core import targets
from mmgenre_jax.evaluation import extract
from mmgenre_jax.train import setup
from mmgenre_jax.data import representations
from mmgenre_jax.train import loop as train_loop
from mmgenre_jax.train import train_state
from mmgenre_jax import workdir as workdir_lib

LABELS = tiny.TINY_LABELS


# ---------------------------------------------------------------- pure parts


def test_group_mean_keeps_first_seen_order():
  keys = np.array(['b', 'a', 'b', 'c', 'a', 'b'])
  x = np.array([[1.0, 0.0], [2.0, 2.0], [3.0, 0.0], [5.0, 5.0], [4.0, 0.0],
                [5.0, 3.0]])
  y = np.arange(6, dtype=np.float32)
  groups, first, (mx, my) = representations.group_mean(keys, x, y)
  assert groups.tolist() == ['b', 'a', 'c']
  assert first.tolist() == [0, 1, 3]
  np.testing.assert_allclose(mx, [[3.0, 1.0], [3.0, 1.0], [5.0, 5.0]])
  np.testing.assert_allclose(my, [(0 + 2 + 5) / 3, (1 + 4) / 2, 3.0])
  assert mx.dtype == np.float32
  with pytest.raises(ValueError, match='5 rows'):
    representations.group_mean(keys, x[:5])


def _rep(ids, albums=None, dim=3, labels=None, seed=0):
  ids = np.asarray(ids)
  rng = np.random.default_rng(seed)
  return {'ids': ids,
          'album_ids': np.asarray(albums if albums is not None else ids),
          'representation': rng.normal(size=(len(ids), dim)).astype(
              np.float32),
          'scores': np.zeros((len(ids), 2), np.float32),
          'labels': (np.asarray(labels) if labels is not None
                     else np.arange(len(ids)) % 2)}


def test_join_drops_and_counts_missing_ids():
  audio = _rep(['A1', 'A2', 'A3', 'A4'], dim=3)
  text = _rep(['A4', 'A2', 'A1', 'A9'], dim=2, seed=1)
  joined = representations.join({'audio': audio, 'text': text})
  assert joined.ids.tolist() == ['A1', 'A2', 'A4']
  assert joined.dropped == {'audio': 1, 'text': 1}
  np.testing.assert_array_equal(joined.inputs['audio'],
                                audio['representation'][[0, 1, 3]])
  np.testing.assert_array_equal(joined.inputs['text'],
                                text['representation'][[2, 1, 0]])
  np.testing.assert_array_equal(joined.labels, audio['labels'][[0, 1, 3]])


def test_join_tracks_to_albums_through_album_ids():
  # MSD-I style: tracks (base) and covers keyed by album.
  tracks = _rep(['T1', 'T2', 'T3', 'T4'], albums=['B1', 'B1', 'B2', 'B3'],
                labels=[3, 3, 1, 0])
  covers = _rep(['B1', 'B2', 'B7'], dim=4, seed=2)
  # The track-level input is the base whatever the order given.
  joined = representations.join({'image': covers, 'audio': tracks})
  assert joined.ids.tolist() == ['T1', 'T2', 'T3']
  assert joined.album_ids.tolist() == ['B1', 'B1', 'B2']
  assert joined.labels.tolist() == [3, 3, 1]
  np.testing.assert_array_equal(joined.inputs['image'],
                                covers['representation'][[0, 0, 1]])
  assert joined.dropped == {'audio': 1, 'image': 1}


def test_join_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="id 'A1' appears on rows 0 and 1"):
    representations.join({'audio': _rep(['A1', 'A2']),
                          'text': _rep(['A1', 'A1'])})
  with pytest.raises(ValueError, match='share no item ids'):
    representations.join({'audio': _rep(['A1']), 'text': _rep(['X1'])})
  with pytest.raises(FileNotFoundError, match='--mode=extract --split=all'):
    representations.load_joined({'audio': str(tmp_path)}, 'train')
  with pytest.raises(ValueError, match='config.data.inputs.text is empty'):
    representations.load_joined({'audio': str(tmp_path), 'text': ''},
                                'train')


# ------------------------------------------------------------ audio extract


def _best_params(config, workdir):
  """(model, best checkpoint's params) of a finished stage."""
  stage = setup.setup(config, workdir)
  latest, best = checkpoints.managers(workdir, read_only=True)
  state, _ = checkpoints.restore(
      best, best.latest_step(), train_state.abstract_train_state(
          config, stage.model, stage.mesh, facts=stage.facts))
  latest.close()
  best.close()
  return stage.model, jax.device_get(state.params)


def _hand_album_average(shard_dir, workdir, kind):
  """Album -> (representation, scores): network on every `kind` record,
  averaged per track, then per album, with plain Python grouping."""
  model, params = _best_params(tiny.tiny_train_config(shard_dir),
                               workdir)
  factors = workdir_lib.load_label_factors(workdir)
  ds = shard_reader.make_dataset(shard_dir, kind, 'test', batch_size=64)
  tracks = collections.defaultdict(list)
  album_of = {}
  flat = collections.defaultdict(list)
  for batch in shard_reader.as_numpy_batches(ds):
    out = model.apply({'params': params}, batch['patch'], train=False)
    scores = np.asarray(targets.COSINE.scores(out['output'], factors))
    for i, track in enumerate(batch['track_id']):
      row = (np.asarray(out['representation'][i], np.float64),
             scores[i].astype(np.float64))
      tracks[track].append(row)
      album_of[track] = batch['album_id'][i]
      flat[batch['album_id'][i]].append(row)
  albums = collections.defaultdict(list)
  for track, rows in tracks.items():
    albums[album_of[track]].append(
        tuple(np.mean([r[j] for r in rows], axis=0) for j in range(2)))
  hand = {a: tuple(np.mean([r[j] for r in rows], axis=0) for j in range(2))
          for a, rows in albums.items()}
  window_mean = {a: np.mean([r[0] for r in rows], axis=0)
                 for a, rows in flat.items()}
  return hand, window_mean


def test_extract_audio_gives_album_rows_equal_to_hand_average(full_run,
                                                              shard_dir):
  workdir, report = full_run
  written = extract.extract_all(tiny.tiny_train_config(shard_dir),
                                 workdir)
  assert sorted(written) == ['test', 'train', 'val']
  for split, num_albums in tiny.TINY_ALBUMS.items():
    data = representations.load_representations(workdir, 'audio', split)
    assert data['ids'].tolist() == [f'AL{split}{a}'
                                    for a in range(num_albums)]
    assert data['step'] == report['step']
  data = representations.load_representations(workdir, 'audio', 'test')
  hand, window_mean = _hand_album_average(shard_dir, workdir,
                                          'audio_windows')
  for row, album in enumerate(data['ids']):
    np.testing.assert_allclose(data['representation'][row], hand[album][0],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(data['scores'][row], hand[album][1],
                               rtol=1e-4, atol=1e-5)
  # Tracks have 1-3 windows: the mean of track means is not the mean over
  # an album's windows, so the two-level average is what was tested.
  assert any(not np.allclose(hand[a][0], window_mean[a], atol=1e-4)
             for a in hand)
  # The test metrics are those of these album rows.
  from mmgenre_jax.core import metrics  # pylint: disable=g-import-not-at-top
  again = metrics.multilabel_report(data['scores'], data['labels'])
  assert again['roc_auc'] == pytest.approx(report['roc_auc'], abs=1e-6)


def test_without_windows_falls_back_to_single_patches(full_run, tmp_path,
                                                      caplog):
  workdir, _ = full_run
  no_windows = tiny.write_tiny_audio_shards(tmp_path / 'shards',
                                                windows=False)
  config = tiny.tiny_train_config(no_windows)
  with caplog.at_level('WARNING'):
    report = evaluate.evaluate(config, workdir, checkpoint='best')
  assert 'no audio_windows test records' in caplog.text
  assert report['num_items'] == 6  # still one row per album
  hand, _ = _hand_album_average(no_windows, workdir, 'audio')
  from mmgenre_jax.core import metrics  # pylint: disable=g-import-not-at-top
  albums = sorted(hand)
  labels = np.zeros((len(albums), len(LABELS)))
  for i, album in enumerate(albums):
    genre = int(album[len('ALtest'):]) % 3
    labels[i, 2 * genre] = 1
    labels[i, 2 * genre + 1] = int(album[len('ALtest'):]) % 2
  expected = metrics.multilabel_report(
      np.stack([hand[a][1] for a in albums]), labels)
  assert report['roc_auc'] == pytest.approx(expected['roc_auc'], abs=1e-6)


# ------------------------------------------------ fusion and alignment


def _write_second_input(out, name, audio_dir, *, drop, dim=5):
  """A hand-made album-level input: genre one-hot + noise, some rows
  dropped (drop: split -> album ids to leave out)."""
  rng = np.random.default_rng(7)
  for split in representations.SPLITS:
    audio = representations.load_representations(audio_dir, 'audio', split)
    keep = [i for i, a in enumerate(audio['ids'])
            if a not in drop.get(split, ())]
    ids = audio['ids'][keep]
    genre = np.asarray([int(a[len(f'AL{split}'):]) % 3 for a in ids])
    rep = rng.normal(0.0, 0.3, (len(ids), dim)).astype(np.float32)
    rep[np.arange(len(ids)), genre] += 1.0
    representations.write_representations(
        out, name, split, ids=ids, album_ids=ids, representation=rep,
        scores=np.zeros((len(ids), len(LABELS))),
        labels=audio['labels'][keep], label_names=LABELS)
  return out


@pytest.fixture(scope='module')
def extracted_audio(full_run, shard_dir):
  workdir, _ = full_run
  extract.extract_all(tiny.tiny_train_config(shard_dir), workdir)
  return workdir


def test_fusion_trains_on_extracted_inputs_and_evaluate_reproduces(
    extracted_audio, tmp_path):
  text_dir = _write_second_input(tmp_path / 'text', 'text', extracted_audio,
                                 drop={'train': {'ALtrain3'}})
  joined = representations.load_joined(
      {'audio': str(extracted_audio), 'text': str(text_dir)}, 'train')
  assert joined.dropped == {'audio': 1, 'text': 0}
  assert len(joined) == 7
  config = mumu_fusion.get_config('audio+text-cosine')
  config.data.factor_dim = 4
  config.data.inputs = {'audio': str(extracted_audio), 'text': str(text_dir)}
  config.train.batch_size = config.eval.batch_size = 4
  config.train.num_epochs = 2
  workdir = tmp_path / 'fusion'
  report = train_loop.train_and_evaluate(config, workdir)
  assert report['train_steps'] == 4  # 2 epochs of 7 albums / 4
  assert report['num_items'] == 6
  assert 0.0 <= report['roc_auc'] <= 1.0 and np.isfinite(report['loss'])
  assert report['params'] > 0 and report['epoch_s'] > 0
  # config.json keeps the config as given; the sizes the inputs decided are
  # the stage's data facts.
  saved = json.loads((workdir / 'config.json').read_text())
  assert saved['model']['input_dims'] == dict(config.model.input_dims)
  facts = json.loads((workdir / workdir_lib.DATA_FACTS_JSON).read_text())
  audio_dim = joined.inputs['audio'].shape[1]
  assert facts['input_sizes'] == {'audio': audio_dim, 'text': 5}
  assert (facts['num_labels'], facts['num_outputs']) == (len(LABELS), 4)
  # COSINE label factors of the 7 + 4 joined train + val albums.
  assert np.load(workdir / workdir_lib.LABEL_FACTORS_NPY).shape == (6, 4)
  assert len((workdir / workdir_lib.ITEMS_TSV).read_text().split()) == 11
  again = evaluate.evaluate(config, workdir, checkpoint='best')
  assert again['roc_auc'] == report['roc_auc']
  assert again['loss'] == report['loss']
  paths = extract.extract(config, workdir, split='test')
  with np.load(paths['fusion']) as data:
    assert data['representation'].shape == (6, audio_dim + 5)
    assert data['scores'].shape == (6, len(LABELS))
    # The fusion representation is the concatenation of unit vectors.
    norms = np.linalg.norm(data['representation'][:, :audio_dim], axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_alignment_loss_goes_down_and_writes_both_towers(extracted_audio,
                                                         tmp_path):
  image_dir = _write_second_input(tmp_path / 'image', 'image',
                                  extracted_audio, drop={'test': {'ALtest5'}},
                                  dim=6)
  config = default_lib.get_config()
  config.model.name = 'alignment'
  config.model.hidden_dim = 16
  config.model.embed_dim = 8
  config.data.inputs = {'audio': str(extracted_audio), 'image': str(image_dir)}
  config.train.batch_size = config.eval.batch_size = 4
  config.train.learning_rate = 1e-2
  config.train.num_epochs = 6
  config.train.patience = 6
  workdir = tmp_path / 'alignment'
  # The loss of the initial parameters on validation.
  stage = setup.setup(config, workdir)
  init_state = train_state.create_train_state(
      config, stage.model, jax.random.split(jax.random.key(0))[0],
      stage.mesh, facts=stage.facts)
  initial = stage.task.evaluate_split(stage.steps, init_state, config,
                                      'val').metrics
  report = train_loop.train_and_evaluate(config, workdir)
  best_val = evaluate.evaluate(config, workdir, split='val',
                               checkpoint='best')
  assert best_val['loss'] < initial['loss'] - 0.05, (best_val, initial)
  assert report['cos_true'] > report['cos_negative']
  assert report['roc_auc'] is None and report['num_items'] == 5
  assert report['params'] == (stage.facts.input_sizes['audio'] * 16 +
                              16 * 8 + 6 * 16 + 16 * 8)
  written = extract.extract_all(config, workdir)
  assert sorted(written['test']) == ['mm_audio', 'mm_visual']
  mm_audio = representations.load_representations(workdir, 'mm_audio',
                                                  'test')
  mm_visual = representations.load_representations(workdir, 'mm_visual',
                                                   'test')
  # Each tower on every row of its own input: MM_AUDIO needs no image.
  assert mm_audio['ids'].tolist() == [f'ALtest{a}' for a in range(6)]
  assert mm_visual['ids'].tolist() == [f'ALtest{a}' for a in range(5)]
  assert mm_audio['representation'].shape == (6, 8)
  assert mm_audio['scores'].shape == (6, 0)
  # The tower equals the model applied to the input rows.
  model, params = _best_params(config, workdir)
  audio = representations.load_representations(extracted_audio, 'audio',
                                               'test')
  expected = model.apply({'params': params}, audio['representation'],
                         method='embed_audio')
  np.testing.assert_allclose(mm_audio['representation'], expected,
                             rtol=1e-5, atol=1e-6)



def test_array_batches_slices_global_batches_per_process(monkeypatch):
  rows = np.arange(11)
  order = np.random.default_rng(0).permutation(11)
  seen = {}
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  for process in range(2):
    monkeypatch.setattr(jax, 'process_index', lambda p=process: p)
    seen[process] = list(
        data_sources.array_batches({'x': rows}, 3, order=order))
  # ceil(11 / (3 * 2)) = 2 global batches on every process.
  assert [len(seen[p]) for p in (0, 1)] == [2, 2]
  global_rows = []
  for b in range(2):
    for p in (0, 1):
      batch = seen[p][b]
      global_rows += batch['x'][batch['mask'] > 0].tolist()
  # Processes' slices, in process order, are the global batches: every row
  # once, in the epoch's order.
  assert global_rows == order.tolist()
  # The last global batch has 5 rows: 3 on process 0, 2 + padding on 1.
  assert seen[1][1]['mask'].tolist() == [1.0, 1.0, 0.0]
  resumed = list(
      data_sources.array_batches({'x': rows}, 3, order=order, skip=1))
  np.testing.assert_array_equal(resumed[0]['x'], seen[1][1]['x'])

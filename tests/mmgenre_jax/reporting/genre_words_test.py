"""Words per genre (Sec 7.5): information gain by hand, and the section of
a small trained pipeline.

The pipeline is one real TEXT stage trained (one epoch, a few seconds) on
the tiny shards of helpers/tiny.py with the text records of
helpers/tagging_pipeline.py: album a of the 8 training albums has genre
a % 3 (Rock, Jazz, Pop) and a review with its genre's four words and its
own id, so every information gain below is a fraction of counts.
"""

import json
import math
import shutil

import numpy as np
import pytest

from helpers import tagging_pipeline
from helpers import tiny
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.pipelines import definition
from mmgenre_jax.pipelines import runner
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import genre_words
from mmgenre_jax.reporting import paper


def h(p):
  """Binary entropy in bits, written out."""
  return 0.0 if p in (0, 1) else -(p * math.log2(p) +
                                   (1 - p) * math.log2(1 - p))


# ------------------------------------------------------------ by hand


def test_binary_entropy_values():
  got = genre_words.binary_entropy(np.array([0.0, 0.5, 1.0, 0.25]))
  np.testing.assert_allclose(got, [0.0, 1.0, 0.0, 0.8112781245], atol=1e-9)


def test_information_gain_of_a_hand_made_presence_matrix():
  # Four albums; genre 0 on albums 0 and 1 (H(G) = 1 bit), genre 1 on all.
  carries = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], bool)
  presence = np.array([
      # exactly the genre, everywhere, independent, album 0 only,
      # exactly the other albums, nowhere
      [1, 1, 1, 1, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [0, 1, 1, 0, 1, 0],
      [0, 1, 0, 0, 1, 0],
  ], bool)
  gain = genre_words.information_gain(presence, carries)
  assert gain.shape == (6, 2)
  # Album 0 only: W = 1 leaves no doubt; W = 0 leaves 1 genre album in 3,
  # H(1/3) = log2(3) - 2/3, so IG = 1 - 3/4 (log2(3) - 2/3) = 0.3113 bits.
  only_first = 1 - 0.75 * (math.log2(3) - 2 / 3)
  np.testing.assert_allclose(gain[:, 0],
                             [1.0, 0.0, 0.0, only_first, 1.0, 0.0],
                             atol=1e-12)
  assert only_first == pytest.approx(0.311278, abs=1e-6)
  # A genre on every album: nothing to learn.
  np.testing.assert_array_equal(gain[:, 1], np.zeros(6))
  # No albums at all.
  assert genre_words.information_gain(
      np.zeros([0, 3], bool), np.zeros([0, 2], bool)).shape == (3, 2)


def test_counts_of_batches_add_up_to_the_counts_of_all():
  rng = np.random.default_rng(0)
  presence = rng.random([50, 7]) < 0.3
  carries = rng.random([50, 3]) < 0.4
  whole = genre_words.count(presence, carries)
  parts = genre_words.count(presence[:20], carries[:20]) + genre_words.count(
      presence[20:], carries[20:])
  assert parts.albums == whole.albums == 50
  np.testing.assert_array_equal(parts.both, whole.both)
  np.testing.assert_array_equal(whole.both, presence.T.astype(int) @ carries)
  np.testing.assert_array_equal(
      genre_words.gain_of_counts(parts.genres([2, 0])),
      genre_words.information_gain(presence, carries[:, [2, 0]]))


def test_top_words_break_ties_by_name_and_drop_uninformative_words():
  gain = np.array([0.5, 0.0, 0.9, 0.5, 0.1])
  terms = ['zeta', 'alpha', 'mid', 'beta', 'low']
  assert genre_words.top_words(gain, terms, 3) == [
      ('mid', 0.9), ('beta', 0.5), ('zeta', 0.5)]
  assert [w for w, _ in genre_words.top_words(gain, terms, 10)] == [
      'mid', 'beta', 'zeta', 'low']


def test_choose_genres_reports_missing_ones_and_falls_back():
  labels = ['Rock', 'Jazz', 'Pop', 'Blues', 'Zydeco']
  counts = np.array([3, 5, 0, 1, 0])
  genres, missing, fell_back = genre_words.choose_genres(
      paper.WORDS_GENRES, labels, counts)
  # Pop is a label but no training album carries it.
  assert genres == ['Rock', 'Blues'] and not fell_back
  assert missing == ['Pop', 'Rap', 'Reggae', 'Country']
  assert genre_words.choose_genres(['zydeco', 'jazz'], labels, counts) == (
      ['Jazz'], ['zydeco'], False)
  # None of the paper's six: the most frequent labels, ties by name.
  genres, missing, fell_back = genre_words.choose_genres(
      paper.WORDS_GENRES, ['Jazz', 'Metal', 'Folk', 'Ska'],
      np.array([2, 5, 5, 0]))
  assert genres == ['Folk', 'Metal', 'Jazz'] and fell_back
  assert missing == list(paper.WORDS_GENRES)


# ------------------------------------------------- a small real pipeline


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(W of a pipeline with one trained TEXT LOGISTIC stage, its shards)."""
  root = tmp_path_factory.mktemp('words')
  shards = tiny.write_tiny_audio_shards(root / 'shards')
  tagging_pipeline.add_text_and_image(shards)
  config = definition.pipeline_config('words', 'tests/words.py',
                                      dataset='mumu', shard_dir=str(shards))
  definition.add_stage(
      config, 'text', config_file='configs/mumu_text.py',
      config_arg='logistic',
      overrides={**tagging_pipeline.TINY, 'model.hidden_units': (16,),
                 'model.dropout': 0.0})
  config.final = 'text'
  workdir = root / 'W'
  runner.run_pipeline(config, workdir, report=False)
  return workdir, shards


# The tiny training split: albums ALtrain0..7, genre a % 3.
ROCK = ('amplifier', 'distortion', 'guitar', 'riff')
JAZZ = ('improvisation', 'saxophone', 'swing', 'trio')
POP = ('catchy', 'chorus', 'dancefloor', 'radio')


def expected_rock():
  """Rock is on albums 0, 3, 6 (3 of 8); IG of each kind of word."""
  rock = h(3 / 8)
  jazz = h(3 / 8) - 5 / 8 * h(3 / 5)       # on 3 other albums
  pop = h(3 / 8) - 6 / 8 * h(3 / 6)        # on 2 other albums
  return ([(w, rock) for w in ROCK] + [(w, jazz) for w in JAZZ] +
          [(w, pop) for w in POP[:2]])


def expected_pop():
  """Pop is on albums 2 and 5 (2 of 8); their ids are words too."""
  pop = h(2 / 8)
  own_id = h(2 / 8) - 7 / 8 * h(1 / 7)    # the album id of a Pop album
  other = h(2 / 8) - 5 / 8 * h(2 / 5)     # a Rock or Jazz word
  return ([(w, pop) for w in POP] + [('altrain2', own_id),
                                     ('altrain5', own_id)] +
          [(w, other) for w in sorted(ROCK + JAZZ)[:4]])


def _assert_words(got, expected):
  assert [w for w, _ in got] == [w for w, _ in expected]
  np.testing.assert_allclose([v for _, v in got], [v for _, v in expected],
                             atol=1e-4)


def _text_stage(pipeline_dir, name, auc, shard_dir, workdir=None):
  """A hand-written trained TEXT stage entry (test AUC, config.json)."""
  stage_dir = pipeline_dir / name
  stage_dir.mkdir(parents=True)
  workdir_lib.write_json(stage_dir / workdir_lib.TRAINING_DONE_JSON, {})
  workdir_lib.write_json(stage_dir / workdir_lib.TEST_METRICS_JSON,
                         {'roc_auc': auc})
  workdir_lib.write_json(stage_dir / workdir_lib.CONFIG_JSON,
                         {'data': {'shard_dir': str(shard_dir)}})
  return {'name': name, 'workdir': workdir or str(stage_dir),
          'config': 'configs/mumu_text.py:cosine', 'kind': 'network',
          'inputs': {}, 'outputs': ['text'], 'status': 'done',
          'row': {'dataset': 'mumu', 'modality': 'text', 'target': 'cosine',
                  'settings': 'vsm', 'seed': 0}}


def _pipeline(workdir, stages):
  workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON, {
      'name': workdir.name, 'config': 'configs/x.py', 'dataset': 'mumu',
      'final': stages[-1]['name'], 'stages': stages})
  return figure_inputs.Pipeline.read(workdir)


def test_words_of_the_trained_text_model(trained):
  workdir, shards = trained
  table = genre_words.genre_words([figure_inputs.Pipeline.read(workdir)])
  data = table.data
  auc = workdir_lib.read_json(workdir / 'text' /
                              workdir_lib.TEST_METRICS_JSON)['roc_auc']
  assert data['model'] == {'pipeline': str(workdir), 'stage': 'text',
                           'roc_auc': auc}
  assert data['shard_dir'] == str(shards)
  # 12 genre words and the 8 training album ids; the words of every
  # review (this, record, ...) are in over half the texts: max_df drops them.
  assert (data['train_albums'], data['vocabulary']) == (8, 20)
  assert data['unit'] == 'bits' and not data['fell_back']
  # The tiny labels have Rock and Pop of the paper's six.
  assert list(data['words']) == ['Rock', 'Pop']
  assert data['missing'] == ['Rap', 'Reggae', 'Country', 'Blues']
  assert data['albums'] == {'Rock': 3, 'Pop': 2}
  _assert_words(data['words']['Rock'], expected_rock())
  _assert_words(data['words']['Pop'], expected_pop())
  # The markdown: one row per genre, its words and IG values.
  rock_row = next(line for line in table.lines if line.startswith('| Rock'))
  assert rock_row.startswith(
      f'| Rock | 3 | amplifier ({h(3 / 8):.4f}), distortion')
  assert rock_row.endswith('| band |')
  assert any('No training album carries Rap, Reggae, Country, Blues.' in l
             for l in table.lines)
  json.dumps(data)  # tables.json can hold it


def test_genres_asked_for_and_fewer_words(trained):
  workdir, _ = trained
  table = genre_words.genre_words([figure_inputs.Pipeline.read(workdir)],
                                  genres=['Jazz', 'Vocal Jazz', 'Ska'],
                                  top=6)
  words = table.data['words']
  assert list(words) == ['Jazz', 'Vocal Jazz'] and table.data['missing'] == [
      'Ska']
  # Jazz is on albums 1, 4, 7: its four words tell it exactly; then come
  # the Rock words (on 3 other albums) before the Pop words (on 2).
  _assert_words(words['Jazz'], [(w, h(3 / 8)) for w in JAZZ] +
                [(w, h(3 / 8) - 5 / 8 * h(3 / 5)) for w in ROCK[:2]])
  # Vocal Jazz is on the odd Jazz albums 1 and 7 (2 of 8). A Jazz word is
  # on those two and on album 4; an album's own id on one of them.
  _assert_words(words['Vocal Jazz'],
                [(w, h(2 / 8) - 3 / 8 * h(2 / 3)) for w in JAZZ] +
                [(a, h(2 / 8) - 7 / 8 * h(1 / 7))
                 for a in ('altrain1', 'altrain7')])


def test_the_best_text_model_of_all_pipelines_is_read(trained, tmp_path):
  workdir, shards = trained
  real = figure_inputs.Pipeline.read(workdir)
  auc = real.stages(lambda s: True)[0]
  auc = workdir_lib.read_json(real.stage_dir(auc) /
                              workdir_lib.TEST_METRICS_JSON)['roc_auc']
  # A worse text model elsewhere, whose shards are gone, is passed over.
  worse = _pipeline(tmp_path / 'worse', [_text_stage(
      tmp_path / 'worse', 'text', auc - 0.1, tmp_path / 'gone')])
  table = genre_words.genre_words([worse, real])
  assert table.data['model']['pipeline'] == str(workdir)
  # A better one whose shards are gone: the section cannot be built.
  better = _pipeline(tmp_path / 'better', [_text_stage(
      tmp_path / 'better', 'text', auc + 0.1, tmp_path / 'gone')])
  with pytest.raises(figure_inputs.MissingInput, match='gone'):
    genre_words.genre_words([real, better])
  # No text model at all.
  with pytest.raises(figure_inputs.MissingInput, match='no pipeline has'):
    genre_words.genre_words([_pipeline(tmp_path / 'empty', [
        {**_text_stage(tmp_path / 'empty', 'audio', 0.9, shards),
         'row': {'dataset': 'mumu', 'modality': 'audio', 'seed': 0}}])])


def test_relative_paths_are_read_from_where_the_pipeline_ran(
    trained, tmp_path, monkeypatch):
  # The runs of another directory: pipeline.json and config.json name
  # runs/p/text and runs/shards, relative to that directory.
  _, shards = trained
  root = tmp_path / 'elsewhere'
  shutil.copytree(shards, root / 'runs' / 'shards')
  stage = _text_stage(root / 'runs' / 'p', 'text', 0.8, 'runs/shards',
                      workdir='runs/p/text')
  pipeline = _pipeline(root / 'runs' / 'p', [stage])
  monkeypatch.chdir(tmp_path)
  table = genre_words.genre_words([pipeline])
  assert table.data['shard_dir'] == str(root / 'runs' / 'shards')
  _assert_words(table.data['words']['Rock'], expected_rock())

"""mmgenre finetune: a head for labels the tiny pipeline never saw.

The tiny pipeline of tests/mmgenre_jax/tagging/tagger_test.py
(tiny.tagging_workdir, trained once per session) embeds tones; the new labels
are about pitch, which the pipeline was never trained on: 'calm' below 400 Hz,
'bright' above, and 'deep' below 150 Hz, a child of 'calm' in the test's
taxonomy (the CSV gives deep tones 'deep' alone: the taxonomy adds 'calm').
"""

import csv
import json
import shutil

import numpy as np
from PIL import Image
import pytest
from sklearn import metrics as sk_metrics

from helpers import tiny
from helpers import tagging_pipeline
from mmgenre_jax import errors
from mmgenre_jax import cli
from mmgenre_jax.tagging.finetune import examples as examples_lib
from mmgenre_jax.tagging.finetune import fit as finetune
from mmgenre_jax.tagging.finetune import fitted_head as head_lib
from mmgenre_jax.tagging.finetune import selection
from mmgenre_jax.tagging import tagger as tagger_lib

NEW_LABELS = ('bright', 'calm', 'deep')
TAXONOMY = 'label\tparent\nbright\t\ncalm\t\ndeep\tcalm\n'
# Short tones keep embedding fast (one padded window each).
SECONDS, RATE = 4.0, 22050


def _labels(hz: float):
  """The new labels of a tone, as the CSV gives them (deep: no parent)."""
  if hz < 150:
    return ['deep']
  return ['calm'] if hz < 400 else ['bright']


def _truth(hz: float):
  return {'deep', 'calm'} if hz < 150 else set(_labels(hz))


def _write_csv(path, rows):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(['input', 'labels'])
    writer.writerows(rows)
  return path


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  """Training tones (+ one album folder), test tones, labels, taxonomy."""
  root = tmp_path_factory.mktemp('finetune')
  (root / 'tones').mkdir()
  rows = []
  for i, hz in enumerate(np.geomspace(60, 3000, 28)):
    tagging_pipeline.tone(root / 'tones' / f't{i:02d}.wav', SECONDS, RATE, hz)
    rows.append((f'tones/t{i:02d}.wav', '|'.join(_labels(hz))))
  album = root / 'album'
  album.mkdir()
  for name, hz in (('1.wav', 180), ('2.flac', 250)):
    tagging_pipeline.tone(album / name, SECONDS, RATE, hz)
  Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(album / 'front.png')
  (album / 'reviews.txt').write_text(tagging_pipeline.review('ALx1'))
  rows.append(('album', 'calm'))
  test = []
  for i, hz in enumerate(np.geomspace(70, 2600, 10)):
    test.append((tagging_pipeline.tone(root / f'test{i}.wav', SECONDS, RATE,
                                    hz + 3), _truth(hz)))
  (root / 'taxonomy.tsv').write_text(TAXONOMY)
  return {'root': root, 'labels': _write_csv(root / 'labels.csv', rows),
          'taxonomy': root / 'taxonomy.tsv', 'test': test}


@pytest.fixture(scope='module')
def head_dir(tagging_workdir, corpus):
  out = corpus['root'] / 'head'
  code = cli.main(['finetune', '--workdir', str(tagging_workdir), '--labels',
                   str(corpus['labels']), '--out', str(out), '--taxonomy',
                   str(corpus['taxonomy']), '--no-progress'])
  assert code == 0
  return out


@pytest.fixture(scope='module')
def model(tagging_workdir):
  return tagger_lib.Tagger.from_workdir(tagging_workdir)


def test_read_labels_resolves_and_reports(tmp_path, corpus):
  tones = corpus['root'] / 'tones'
  album = tmp_path / 'album'
  album.mkdir()
  shutil.copy(tones / 't00.wav', album / 'a.wav')
  for name in ('back.jpg', 'front.png'):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(album / name)
  (album / 'reviews.txt').write_text('moody')
  (tmp_path / 'notes.txt').write_text('not audio')
  catalog_csv = tmp_path / 'catalog.csv'
  catalog_csv.write_text(f'album_id,audio,cover,reviews\nAL9,{tones}/t01.wav,,'
                         '\n')
  path = _write_csv(tmp_path / 'labels.csv', [
      (f'{tones}/t02.wav', 'x | y|x'), ('album', 'y'), ('AL9', 'x'),
      ('missing.wav', 'x'), ('notes.txt', 'x'), (f'{tones}/t03.wav', ''),
      (f'{tones}/../tones/t02.wav', 'y'), ('', 'x')])
  examples, skipped = examples_lib.read_labels(path, catalog_csv)
  assert [(item.key, labels) for item, labels in examples] == [
      (f'{tones}/t02.wav', ['x', 'y']), ('album', ['y']), ('AL9', ['x']),
      (f'{tones}/t03.wav', [])]  # An empty labels cell: a negative.
  folder = examples[1][0]
  assert folder.audio == [str(album / 'a.wav')]
  assert folder.cover == str(album / 'front.png')  # named so: not back.jpg
  assert folder.reviews == str(album / 'reviews.txt')
  assert examples[2][0].audio == [f'{tones}/t01.wav']
  assert len(skipped) == 4
  assert skipped[0].startswith(f"{path}:5: input 'missing.wav' is neither")
  assert '--catalog' in skipped[0]
  assert skipped[1].startswith(f"{path}:6: 'notes.txt' is not an audio file")
  assert skipped[2].startswith(f'{path}:8: input ') and 'repeats line 2' in (
      skipped[2])
  assert skipped[3] == f'{path}:9: no input; row skipped.'
  (tmp_path / 'bad.csv').write_text('file,tags\na.wav,x\n')
  with pytest.raises(ValueError, match='needs the header input,labels'):
    examples_lib.read_labels(tmp_path / 'bad.csv')


def test_head_predicts_labels_the_model_never_saw(tagging_workdir, head_dir,
                                                  corpus):
  info = json.loads((head_dir / 'head.json').read_text())
  assert info['format'] == head_lib.HEAD_FORMAT
  assert tuple(info['labels']) == NEW_LABELS
  assert not set(NEW_LABELS) & set(tiny.TINY_LABELS)
  # Audio is what every example has: the audio + MM_AUDIO fusion answers.
  assert info['representation'] == 'fusion_fused_am'
  assert info['items'] == 29 and info['examples']['calm'] > info['examples'][
      'deep'] > 0  # 'deep' examples count for 'calm' too.
  for label, held in info['heldout']['labels'].items():
    assert held['positives'] >= examples_lib.MIN_HELDOUT_POSITIVES
    assert held['auc'] > 0.6, (label, held)
  tuned = tagger_lib.Tagger.from_workdir(tagging_workdir, head=head_dir)
  assert tuple(tuned.labels) == NEW_LABELS
  results = [tuned.predict(audio=[path]) for path, _ in corpus['test']]
  for result in results:
    assert {x['label'] for x in result['labels']} == set(NEW_LABELS)
    assert set(result['decisions']) <= set(NEW_LABELS)
    assert result['model'] == "finetuned head 'head' on fusion_fused_am"
    # Hierarchy: never 'deep' without 'calm'.
    assert 'deep' not in result['decisions'] or 'calm' in result['decisions']
  scores = np.stack([r['scores'] for r in results])
  for j, label in enumerate(NEW_LABELS):
    truth = [label in t for _, t in corpus['test']]
    assert sk_metrics.roc_auc_score(truth, scores[:, j]) > 0.6, label


def test_a_second_run_reads_the_cache(model, head_dir, corpus, tmp_path,
                                      monkeypatch):
  calls = []  # The items embedded (embed.embed_items: Tagger.embed_many).
  embed_many = tagger_lib.Tagger.embed_many

  def spy(self, inputs, decoded=None):
    calls.extend(inputs)
    return embed_many(self, inputs, decoded)

  monkeypatch.setattr(tagger_lib.Tagger, 'embed_many', spy)
  examples, _ = examples_lib.read_labels(corpus['labels'])
  head, summary = finetune.finetune(
      model, examples, tmp_path / 'again', cache_dir=head_dir / 'cache',
      taxonomy={'bright': None, 'calm': None, 'deep': 'calm'},
      progress=False)
  assert calls == [] and summary['computed'] == 0
  assert summary['cached'] == len(examples)
  first = head_lib.load(head_dir)
  np.testing.assert_array_equal(head.coef, first.coef)
  np.testing.assert_array_equal(head.thresholds, first.thresholds)
  # A new file is embedded; the others still come from the cache.
  extra = tagging_pipeline.tone(tmp_path / 'new.wav', SECONDS, RATE, 500)
  examples.append((examples_lib.resolve_input(extra, tmp_path, {}), ['bright']))
  _, summary = finetune.finetune(model, examples, tmp_path / 'again',
                                 cache_dir=head_dir / 'cache', progress=False)
  assert len(calls) == 1 and summary['computed'] == 1
  # Representations the examples cannot all give are refused by name.
  with pytest.raises(ValueError, match=r"'image': 29 of the 30 examples "
                     r'do not give it \(tones/t00.wav, '):
    finetune.finetune(model, examples, tmp_path / 'again',
                      representation='image',
                      cache_dir=head_dir / 'cache', progress=False)


def test_a_label_with_too_few_examples_is_a_clear_error(
    tagging_workdir, model, corpus, tmp_path, capsys):
  tones = corpus['root'] / 'tones'
  rows = [(f'{tones}/t{i:02d}.wav', 'calm|rare' if i < 2 else 'calm')
          for i in range(6)] + [(f'{tones}/t2{i}.wav', 'bright')
                                for i in range(4)]
  path = _write_csv(tmp_path / 'few.csv', rows)
  code = cli.main(['finetune', '--workdir', str(tagging_workdir), '--labels',
                   str(path), '--out', str(tmp_path / 'head')])
  assert code == 2
  err = capsys.readouterr().err
  assert (f"label 'rare' has 2 examples in {path}; finetune needs at least 4 "
          'per label to train and calibrate') in err
  assert not (tmp_path / 'head').exists()  # refused before embedding
  examples, _ = examples_lib.read_labels(path)
  everywhere = [(item, labels + ['all']) for item, labels in examples]
  with pytest.raises(ValueError, match="label 'all' is on 10 of the 10 items"):
    finetune.finetune(model, everywhere, tmp_path / 'head')
  (tmp_path / 'other').mkdir()
  (tmp_path / 'other' / 'keep.txt').write_text('mine')
  with pytest.raises(ValueError, match='is not a finetuned head'):
    finetune.finetune(model, examples, tmp_path / 'other')


def test_default_representation(model, corpus):
  examples, _ = examples_lib.read_labels(corpus['labels'])
  items = [item for item, _ in examples]
  assert finetune.default_representation(model, items) == 'fusion_fused_am'
  # The album folder has audio, cover and reviews: the final fusion.
  album = [item for item in items if item.key == 'album']
  assert finetune.default_representation(model, album) == 'fusion'


def test_workdir_and_bundle_predict_alike(tagging_workdir, head_dir, corpus,
                                          tmp_path, capsys):
  bundle = tmp_path / 'bundle'
  assert cli.main(['export', str(tagging_workdir), '--head', str(head_dir),
                   '--out', str(bundle)]) == 0
  capsys.readouterr()
  assert not (bundle / 'head' / head_lib.CACHE_DIR).exists()
  audio = [path for path, _ in corpus['test'][:4]]
  outputs = []
  for flags in (['--workdir', str(tagging_workdir), '--head', str(head_dir)],
                ['--workdir', str(bundle)]):
    code = cli.main(['predict', *flags, '--audio', *audio, '--top-k', '2',
                     '--no-progress'])
    assert code == 0
    outputs.append(json.loads(capsys.readouterr().out))
  assert outputs[0] == outputs[1]
  assert len(outputs[0]) == 4 and all(
      row['error'] is None and {x['label'] for x in row['labels']} <= set(
          NEW_LABELS) for row in outputs[0])
  # The bundle without its head is the model itself; the head refuses to
  # sit on another model.
  plain = tagger_lib.Tagger.from_workdir(bundle, head=False)
  assert plain.head is None and plain.labels == list(tiny.TINY_LABELS)
  with pytest.raises(errors.TaggingError, match='on another model'):
    tagger_lib.Tagger.from_workdir(tagging_workdir / 'audio', head=head_dir)


def test_decisions_follow_the_head_taxonomy(tagging_workdir, head_dir,
                                            corpus, tmp_path):
  bundle = tagger_lib.Tagger.from_workdir(
      tagging_workdir, head=head_dir).export(tmp_path / 'bundle')
  for tuned in (tagger_lib.Tagger.from_workdir(tagging_workdir,
                                               head=head_dir),
                tagger_lib.Tagger.from_workdir(bundle)):
    assert tuned.taxonomy == {'bright': None, 'calm': None, 'deep': 'calm'}
    # Thresholds that decide 'deep' alone: its parent must come with it.
    tuned.head.thresholds = np.where(np.asarray(NEW_LABELS) == 'deep',
                                     -np.inf, np.inf)
    path = corpus['test'][-1][0]  # a bright tone: 'deep' scores low
    result = tuned.predict(audio=[path])
    assert set(result['decisions']) == {'calm', 'deep'}
    top = tuned.predict(audio=[path], level='top')
    assert {x['label'] for x in top['labels']} == {'bright', 'calm'}
    assert top['decisions'] == ['calm']
    np.testing.assert_array_equal(
        tuned.head.decide(result['scores']), [False, True, True])


def test_a_label_the_model_knows_is_not_worse_than_the_model(
    tagging_workdir, model, corpus, tmp_path):
  """A label the model already predicts, under a new name (issue 27): on
  new tones the head ranks it at least as well as the model's own score,
  and a head answering with that score ranks exactly as the model."""
  examples, _ = examples_lib.read_labels(corpus['labels'])
  tones = [item for item, _ in examples if item.key.startswith('tones/')]
  cache = tmp_path / 'cache'
  vectors, _, _ = finetune.embed_cached(model, tones, cache, progress=False)
  base = finetune.base_scores(model, 'fusion_fused_am', vectors)
  assert base.name == 'fusion_fused_am_scores'
  assert base.labels == list(tiny.TINY_LABELS)
  # The new label: the tones the model scores highest on its most varied
  # label (half of them; the others are negatives).
  k = int(np.argmax(base.scores.std(0)))
  cut = np.median(base.scores[:, k])
  known = [(item, ['known'] if score > cut else [])
           for item, score in zip(tones, base.scores[:, k])]
  _, summary = finetune.finetune(model, known, tmp_path / 'head',
                                 cache_dir=cache, progress=False)
  held = summary['heldout']['known']
  # The model's score was a candidate: matched, and scored on held-out.
  assert held['base_auc'] == 1.0 and held['answer'] in (
      None, tiny.TINY_LABELS[k])
  test = [path for path, _ in corpus['test']]
  own = np.array([model.embed(audio=[p])[base.name][k] for p in test])
  truth = own > cut
  assert 0 < truth.sum() < len(truth)

  def head_scores(head_dir):
    tuned = tagger_lib.Tagger.from_workdir(tagging_workdir, head=head_dir)
    return np.array([tuned.predict(audio=[p])['scores'][0] for p in test])

  assert sk_metrics.roc_auc_score(truth, head_scores(tmp_path / 'head')) >= (
      sk_metrics.roc_auc_score(truth, own))
  # A head that answers with the model's label k, through predict: the
  # model's own ranking (the scores vector is read at predict time too).
  x = finetune.stack_representation([t.key for t in tones], vectors,
                                    'fusion_fused_am')
  head = selection.fit_head(x, np.array([[bool(lab)] for _, lab in known]),
                            ['known'], 'fusion_fused_am', base=base,
                            answers=[k])
  head.thresholds = np.array([0.5])
  head.info = {'name': 'known', 'model': {
      'identity': head_lib.model_identity(model)}}
  head_lib.save(head, tmp_path / 'exact')
  got = head_scores(tmp_path / 'exact')
  assert np.all(np.diff(got[np.argsort(own)]) >= 0)  # the same ranking

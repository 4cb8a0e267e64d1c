"""Tables 1 and 4 from hand-made pipeline workdirs with known labels.

The stages' representations are written with the project's own writer, so
the counts, percentages and orders below are known without training.
"""

import json

import numpy as np
import pytest

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.data import representations
from mmgenre_jax.reporting import corpus_tables
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import paper

SPLITS = ('train', 'val', 'test')


def _stage(workdir, name, kind, outputs, dataset, seed=0):
  stage_dir = workdir / name
  stage_dir.mkdir(parents=True)
  workdir_lib.write_json(stage_dir / workdir_lib.TRAINING_DONE_JSON, {})
  return {'name': name, 'workdir': str(stage_dir), 'config': 'configs/x.py',
          'kind': kind, 'inputs': {}, 'outputs': outputs, 'status': 'done',
          'row': {'dataset': dataset, 'modality': outputs[0],
                  'target': 'softmax', 'settings': 'cnn', 'seed': seed}}


def _write_pipeline(workdir, dataset, stages):
  workdir_lib.write_json(workdir / workdir_lib.PIPELINE_JSON, {
      'name': workdir.name, 'config': f'configs/{workdir.name}.py:cpu',
      'dataset': dataset, 'final': stages[-1]['name'], 'stages': stages})
  return figure_inputs.Pipeline.read(workdir)


def _write(stage, split, ids, album_ids, labels, names):
  labels = np.asarray(labels)
  representations.write_representations(
      stage['workdir'], stage['outputs'][0], split, ids=ids,
      album_ids=album_ids, representation=np.zeros((len(ids), 2)),
      scores=np.zeros((len(ids), len(names))), labels=labels,
      label_names=names)


# ----------------------------------------------------------------- Table 1

# The label space of the MSD-I pipeline below: the paper's genres in
# another order, without World, with a genre the paper lacks.
MSDI_NAMES = tuple(reversed([g for g in paper.PAPER_TABLE1
                             if g != 'World'])) + ('Polka',)
# split -> genre -> tracks; 20 tracks in all, so every share is exact.
MSDI_COUNTS = {
    'train': {'Rock': 4, 'Blues': 3, 'Polka': 2, 'Jazz': 1},
    'val': {'Rock': 2, 'Pop': 3},
    'test': {'Blues': 1, 'Jazz': 4},
}


@pytest.fixture
def msdi(tmp_path):
  """An MSD-I pipeline: an album-level cover stage listed first, the audio
  network (track rows; one track written twice) and a seed-1 audio stage
  with other labels, neither of which Table 1 may read."""
  workdir = tmp_path / 'msdi'
  image = _stage(workdir, 'image_s0', 'network', ['image'], 'msdi')
  audio = _stage(workdir, 'audio_s0', 'network', ['audio'], 'msdi')
  audio1 = _stage(workdir, 'audio_s1', 'network', ['audio'], 'msdi', 1)
  for split, counts in MSDI_COUNTS.items():
    labels = [MSDI_NAMES.index(g) for g, n in counts.items()
              for _ in range(n)]
    ids = [f'{split}-t{i}' for i in range(len(labels))]
    albums = [f'{split}-a{i // 2}' for i in range(len(labels))]
    # A track written twice (e.g. two rows of one item) counts once.
    _write(audio, split, ids + ids[:1], albums + albums[:1],
           labels + labels[:1], MSDI_NAMES)
    _write(image, split, albums[::2], albums[::2], labels[::2], MSDI_NAMES)
    _write(audio1, split, ids, albums, [0] * len(ids), MSDI_NAMES)
  return _write_pipeline(workdir, 'msdi', [image, audio, audio1])


def test_table1_counts_shares_order_and_paper_values(msdi):
  table = corpus_tables.table1([msdi])
  data = table.data
  assert data['stage'] == 'audio_s0' and data['unit'] == 'tracks'
  assert data['totals'] == {'train': 10, 'val': 5, 'test': 5, 'total': 20}
  rows = {r['genre']: r for r in data['rows']}
  # The paper's 15 genres in its order, then ours it lacks.
  assert [r['genre'] for r in data['rows']] == list(paper.PAPER_TABLE1) + [
      'Polka']
  assert rows['Rock'] == {'genre': 'Rock', 'train': 4, 'val': 2, 'test': 0,
                          'total': 6, 'percent': 30.0,
                          'paper': {'train': 3694, 'val': 709, 'test': 829,
                                    'percent': 16.91}}
  assert [rows['Blues'][s] for s in SPLITS] == [3, 0, 1]
  assert rows['Blues']['percent'] == 20.0
  assert rows['Jazz']['percent'] == 25.0 and rows['Pop']['percent'] == 15.0
  assert rows['Polka']['percent'] == 10.0 and rows['Polka']['paper'] is None
  assert rows['Metal']['total'] == 0 and rows['Metal']['percent'] == 0.0
  # A paper genre our label space lacks: no counts, the paper's beside.
  assert rows['World']['train'] is None
  assert rows['World']['paper'] == {'train': 331, 'val': 123, 'test': 46,
                                    'percent': 1.62}
  assert sum(r['percent'] or 0 for r in data['rows']) == pytest.approx(100)
  json.dumps(data)  # tables.json
  assert table.title.startswith('Table 1 (Sec 6.1)')
  lines = table.lines
  assert '| Rock | 4 | 2 | 0 | 30.00 | 3694 | 709 | 829 | 16.91 |' in lines
  assert '| World | — | — | — | — | 331 | 123 | 46 | 1.62 |' in lines
  assert '| New Age | 0 | 0 | 0 | 0.00 | 158 | 71 | 38 | 0.86 |' in lines
  assert ('| **Total** | 10 | 5 | 5 | 100.00 | 21551 | 4691 | 4691 | — |'
          in lines)
  blues = '| Blues | 3 | 0 | 1 | 20.00 | 518 | 120 | 190 | 2.68 |'
  polka = '| Polka | 2 | 0 | 0 | 10.00 | — | — | — | — |'
  assert lines.index(blues) < lines.index(polka)


def test_paper_table1_is_the_papers_table():
  assert len(paper.PAPER_TABLE1) == 15
  assert paper.PAPER_TABLE1['New Age'] == (158, 71, 38, 0.86)
  # Every printed share is its row over the rows' sum (30,933 tracks).
  total = sum(sum(v[:3]) for v in paper.PAPER_TABLE1.values())
  assert total == 30933
  for train, val, test, percent in paper.PAPER_TABLE1.values():
    assert round(100 * (train + val + test) / total, 2) == percent


NO_MSDI = "Table 1 needs a pipeline workdir of dataset 'msdi'; none of"


def test_table1_is_missing_without_an_msdi_pipeline(msdi, tmp_path):
  with pytest.raises(figure_inputs.MissingInput, match=NO_MSDI):
    corpus_tables.table1([])
  mumu = _mumu(tmp_path, 'mumu')
  with pytest.raises(figure_inputs.MissingInput, match=NO_MSDI):
    corpus_tables.table1([mumu])
  # The test split of every seed-0 stage not extracted.
  for name in ('image_s0', 'audio_s0'):
    for path in (msdi.workdir / name).glob('representations/*/test.npz'):
      path.unlink()
  with pytest.raises(figure_inputs.MissingInput,
                     match='Table 1: no msdi pipeline .*--mode=extract'):
    corpus_tables.table1([mumu, msdi])


# ----------------------------------------------------------------- Table 4

# Album counts of a 20-album MuMu corpus: 12 labels carry albums ('Ambient'
# and 'Zydeco' tie at 10), one ('Unused') carries none.
MUMU_COUNTS = {'Pop': 20, 'Rock': 15, 'Jazz': 12, 'Zydeco': 10,
               'Ambient': 10, 'Blues': 8, 'Folk': 6, 'Rap': 5, 'Soul': 4,
               'Funk': 3, 'Dub': 2, 'Tributes': 1, 'Unused': 0}
MUMU_NAMES = tuple(sorted(MUMU_COUNTS))


def _mumu(tmp_path, dataset):
  """A MuMu-like pipeline of 20 albums (12 / 4 / 4): album g carries label
  L when g < MUMU_COUNTS[L]. The audio network's rows are tracks (two per
  album) and lack albums 18 and 19; the text network has them all."""
  workdir = tmp_path / dataset
  audio = _stage(workdir, 'audio', 'network', ['audio'], dataset)
  text = _stage(workdir, 'text', 'network', ['text'], dataset)
  fusion = _stage(workdir, 'audio_text', 'fusion', ['fusion'], dataset)
  hot = np.array([[int(g < MUMU_COUNTS[n]) for n in MUMU_NAMES]
                  for g in range(20)])
  for split, albums in (('train', range(12)), ('val', range(12, 16)),
                        ('test', range(16, 20))):
    albums = list(albums)
    ids = [f'a{g}' for g in albums]
    _write(text, split, ids, ids, hot[albums], MUMU_NAMES)
    tracks = [g for g in albums if g < 18 for _ in range(2)]
    _write(audio, split, [f't{i}' for i in range(len(tracks))],
           [f'a{g}' for g in tracks], hot[tracks], MUMU_NAMES)
  return _write_pipeline(workdir, dataset, [audio, text, fusion])


def test_ranked_ties_sizes_and_unused_labels():
  counts = {'b': 3, 'a': 3, 'c': 5, 'd': 1, 'e': 0, 'f': 2}
  most, least, unused = corpus_tables.ranked(counts, size=2)
  assert most == [(1, 'c', 5), (2, 'a', 3)]  # the tie 'a' / 'b' by name
  assert least == [(4, 'f', 2), (5, 'd', 1)]  # 'e' is on no album
  assert unused == ['e']
  # Fewer than twice the size: the least list is what the most leaves.
  most, least, _ = corpus_tables.ranked(counts, size=3)
  assert [r[1] for r in most] == ['c', 'a', 'b']
  assert [r[1] for r in least] == ['f', 'd']
  assert corpus_tables.ranked({'x': 0}) == ([], [], ['x'])


def test_table4_albums_percentages_order_and_paper_values(tmp_path):
  table = corpus_tables.table4([_mumu(tmp_path, 'mumu')])
  data = table.data
  assert data['stages'] == ['audio', 'text']  # the networks' albums joined
  assert data['albums'] == 20 and data['labels'] == 13
  assert data['unused'] == ['Unused']
  most = data['most']
  assert [r['genre'] for r in most] == [
      'Pop', 'Rock', 'Jazz', 'Ambient', 'Zydeco', 'Blues', 'Folk', 'Rap',
      'Soul', 'Funk']
  assert [r['rank'] for r in most] == list(range(1, 11))
  assert [r['albums'] for r in most] == [20, 15, 12, 10, 10, 8, 6, 5, 4, 3]
  assert [r['percent'] for r in most] == [100.0, 75.0, 60.0, 50.0, 50.0,
                                          40.0, 30.0, 25.0, 20.0, 15.0]
  assert data['least'] == [
      {'rank': 11, 'genre': 'Dub', 'albums': 2, 'percent': 10.0,
       'paper_genre': 'Tributes', 'paper_percent': 0.10},
      {'rank': 12, 'genre': 'Tributes', 'albums': 1, 'percent': 5.0,
       'paper_genre': None, 'paper_percent': None}]
  # The paper's rows beside ours, row for row.
  assert (most[0]['paper_genre'], most[0]['paper_percent']) == ('Pop', 84.38)
  assert most[1]['paper_genre'] is None
  json.dumps(data)
  lines = table.lines
  assert table.title.startswith('Table 4 (Sec 7.1.1)') and 'MuMu' in (
      table.title)
  assert '| 1 | Pop | 20 | 100.00 | Pop | 84.38 |' in lines
  assert '| 11 | Dub | 2 | 10.00 | Tributes | 0.10 |' in lines
  assert '| 2 | Rock | 15 | 75.00 | — | — |' in lines
  assert any('carry no album' in line and 'Unused' in line
             for line in lines)


def test_table4_of_a_catalog_has_no_paper_values(tmp_path):
  table = corpus_tables.table4([_mumu(tmp_path, 'catalog')])
  assert all(r['paper_genre'] is None and r['paper_percent'] is None
             for r in table.data['most'] + table.data['least'])
  assert '| 1 | Pop | 20 | 100.00 |' in table.lines
  assert not any('Paper' in line or 'MuMu' in line for line in table.lines)
  assert 'MuMu' not in table.title


def test_table4_is_missing_without_a_mumu_pipeline(msdi, tmp_path):
  with pytest.raises(figure_inputs.MissingInput,
                     match="dataset 'mumu' or 'catalog'; none of"):
    corpus_tables.table4([msdi])
  mumu = _mumu(tmp_path, 'mumu')
  for path in mumu.workdir.glob('*/representations/*/val.npz'):
    path.unlink()
  with pytest.raises(figure_inputs.MissingInput,
                     match='Table 4: no stage of .*--mode=extract'):
    corpus_tables.table4([msdi, mumu])

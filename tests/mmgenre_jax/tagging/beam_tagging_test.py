"""mmgenre predict / embed --beam_pipeline_options (tagging/beam_tagging.py).

The tiny trained pipeline of tests/mmgenre_jax/tagging/tagger_test.py
(tests/conftest.py tagging_workdir) tags its `media` folder (four formats and a
corrupt file) on the DirectRunner, in-process (in_memory) but for one test of
two worker processes.
"""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from input_pipeline.beam import options as beam_options
from mmgenre_jax import cli
from mmgenre_jax.tagging import beam_tagging
from mmgenre_jax.tagging import items as items_lib
from mmgenre_jax.tagging import embed
from mmgenre_jax.tagging import predict
from mmgenre_jax.tagging import tagger as tagger_lib

IN_PROCESS = 'runner=DirectRunner,direct_running_mode=in_memory'
TWO_WORKERS = ('runner=DirectRunner,direct_num_workers=2,'
               'direct_running_mode=multi_processing')


@pytest.fixture(scope='module')
def tagger(tagging_workdir):
  return tagger_lib.Tagger.from_workdir(tagging_workdir)


def _shard_rows(prefix: pathlib.Path):
  """The rows of PREFIX-*-of-*.jsonl, sorted on input; the shard names."""
  names = sorted(p.name for p in prefix.parent.glob(f'{prefix.name}-*'))
  rows = [json.loads(line) for name in names
          for line in (prefix.parent / name).read_text().splitlines()]
  return sorted(rows, key=lambda r: r['input']), names


def _beam_predict(workdir, audio, out, options=IN_PROCESS, *extra):
  return cli.main(['predict', '--workdir', str(workdir), '--audio',
                   str(audio), '--top-k', '2', '--out', str(out),
                   '--beam_pipeline_options', options, *extra])


@pytest.fixture
def spy(monkeypatch):
  """The input keys the in-process workers tag, batch by batch."""
  batches = []
  real = predict.predict_items

  def predict_items(tagger, items, *args, **kwargs):
    batches.append([item.key for item in items])
    return real(tagger, items, *args, **kwargs)

  monkeypatch.setattr(predict, 'predict_items', predict_items)
  return batches


def test_beam_tagging_equals_predict_row_for_row(tagging_workdir, media,
                                                 tmp_path):
  single = tmp_path / 'tags.json'
  # 3: broken.mp3 fails (a row with its error), the others are tagged.
  assert cli.main(['predict', '--workdir', str(tagging_workdir), '--audio',
                   str(media['music']), '--top-k', '2', '--out', str(single),
                   '--no-progress']) == 3
  expected = sorted(json.loads(single.read_text()),
                    key=lambda r: r['input'])
  prefix = tmp_path / 'beam' / 'tags'
  assert _beam_predict(tagging_workdir, media['music'], prefix) == 3
  rows, names = _shard_rows(prefix)
  assert rows == expected
  assert names == ['tags-00000-of-00001.jsonl']
  broken = next(r for r in rows if r['input'] == media['files']['corrupt'])
  assert broken['labels'] == [] and 'corrupt' in broken['error']
  assert sum(r['error'] is not None for r in rows) == 1
  # No staging folder is left behind.
  assert sorted(p.name for p in prefix.parent.iterdir()) == names


def test_rerun_skips_rows_written_and_redoes_changed_files(
    tagging_workdir, media, tmp_path, spy, capsys):
  music = tmp_path / 'music'
  shutil.copytree(media['music'], music)
  prefix = tmp_path / 'out' / 'tags'
  assert _beam_predict(tagging_workdir, music, prefix) == 3  # broken.mp3
  assert sorted(sum(spy, [])) == items_lib.audio_files(music)
  first, names = _shard_rows(prefix)
  # A rerun with nothing new tags nothing and leaves the shards alone.
  spy.clear()
  assert _beam_predict(tagging_workdir, music, prefix) == 3  # Kept rows.
  assert spy == [] and _shard_rows(prefix) == (first, names)
  assert '5 rows kept. 0 of 5 inputs to predict.' in capsys.readouterr().err
  # Mark a kept row, change one file (a new mtime), remove another.
  (shard,) = [prefix.parent / n for n in names]
  wav = str(music / 'a.wav')
  shard.write_text(shard.read_text().replace(
      f'"input": {json.dumps(wav)}', f'"input": {json.dumps(wav)}, '
      '"kept": true'))
  flac = music / 'b.flac'
  os.utime(flac, ns=(1, 10**18))
  (music / 'd.mp3').unlink()
  assert _beam_predict(tagging_workdir, music, prefix) == 3
  assert spy == [[str(flac)]]
  assert ('3 rows kept, 1 dropped (input gone), 1 redone (input changed). '
          '1 of 4 inputs to predict.') in capsys.readouterr().err
  rows, _ = _shard_rows(prefix)
  by_input = {r['input']: r for r in rows}
  assert sorted(by_input) == items_lib.audio_files(music)
  assert by_input[wav]['kept'] is True
  assert by_input[str(flac)]['sources'][0]['mtime_ns'] == 10**18
  before = {r['input']: r for r in first}[str(flac)]
  assert by_input[str(flac)]['labels'] == before['labels']


def test_a_run_killed_while_moving_its_shards_loses_nothing(
    tagging_workdir, media, tmp_path, spy):
  """Rows of a complete staging folder are kept; an incomplete one's are
  not; both are removed by the next run."""
  music = tmp_path / 'music'
  shutil.copytree(media['music'], music)
  prefix = tmp_path / 'tags'
  items = items_lib.collect_items(audio=[str(music)])
  tagger = tagger_lib.Tagger.from_workdir(tagging_workdir)
  rows = predict.predict_items(tagger, items, 2)
  spy.clear()
  # The killed run: two rows moved into place, the other three still in
  # its (complete) staging folder, whose own set had 2 shards.
  lines = [json.dumps(r) for r in rows]
  (tmp_path / 'tags-00000-of-00002.jsonl').write_text(
      '\n'.join(lines[:2]) + '\n')
  staged = tmp_path / f'tags{beam_tagging.STAGING}killed'
  staged.mkdir()
  (staged / 'part-00001-of-00002.jsonl').write_text(
      '\n'.join(lines[2:]) + '\n')
  (staged / beam_tagging.COMPLETE).write_text('')
  # A run killed before its pipeline finished: not complete, ignored.
  unfinished = tmp_path / f'tags{beam_tagging.STAGING}unfinished'
  unfinished.mkdir()
  (unfinished / 'part-00000-of-00001.jsonl').write_text(
      json.dumps(dict(rows[0], labels=[])) + '\n')
  options = beam_options.pipeline_options(IN_PROCESS)
  model = beam_tagging.Model(str(tagging_workdir))
  # Nothing tagged; five rows kept, broken.mp3's with its error.
  assert beam_tagging.run('predict', items, str(prefix), options, model,
                          top_k=2) == items_lib.Tally(0, 0, 5, 1)
  assert spy == []
  got, names = _shard_rows(prefix)
  assert got == sorted(rows, key=lambda r: r['input'])
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
      names + ['music'])


def test_two_worker_processes(tagging_workdir, media, tagger, tmp_path):
  prefix = tmp_path / 'tags'
  assert _beam_predict(tagging_workdir, media['music'], prefix,
                       TWO_WORKERS) == 3  # broken.mp3 fails.
  items = items_lib.collect_items(audio=[str(media['music'])])
  expected = [predict.predict_item(tagger, item, 2) for item in items]
  rows, _ = _shard_rows(prefix)
  assert rows == sorted(expected, key=lambda r: r['input'])


def test_beam_embed_equals_embed_items(tagging_workdir, media, tmp_path):
  files = media['files']
  audio = [files['wav'], files['mp3'], files['corrupt']]
  prefix = tmp_path / 'vectors'
  assert cli.main(['embed', '--workdir', str(tagging_workdir), '--audio',
                   *audio, '--out', str(prefix), '--beam_pipeline_options',
                   IN_PROCESS]) == 3  # The corrupt file fails.
  rows, _ = _shard_rows(prefix)
  assert [r['input'] for r in rows] == sorted(audio)
  tagger = tagger_lib.Tagger.from_workdir(tagging_workdir, head=False)
  reports = {}
  vectors, errors = embed.embed_items(
      tagger, items_lib.collect_items(audio=audio), progress=False,
      reports=reports)
  by_input = {r['input']: r for r in rows}
  assert [k for k, _ in errors] == [files['corrupt']]
  assert by_input[files['corrupt']]['error'] == errors[0][1]
  assert by_input[files['corrupt']]['vectors'] == {}
  for name, found in vectors.items():
    for key, vector in found:
      np.testing.assert_array_equal(
          np.asarray(by_input[key]['vectors'][name], np.float32), vector)
  for key, report in reports.items():
    assert by_input[key]['warnings'] == report['warnings']
    assert by_input[key]['duration_s'] == pytest.approx(
        report['duration_s'], abs=1e-4)


@pytest.mark.parametrize('extra, message', [
    (('--format', 'csv'), '--format csv cannot be used with '
     '--beam_pipeline_options'),
    (('--beam_pipeline_options', 'direct_num_workers=two'),
     "argument --direct_num_workers: invalid int value: 'two'"),
    (('--beam_pipeline_options', 'runner=DirectRunner,no_such_option=1'),
     "unknown option(s) ['no_such_option']"),
])
def test_bad_flags_exit_2_naming_them(media, tmp_path, capsys, extra,
                                      message):
  code = cli.main(['predict', '--workdir', str(tmp_path), '--audio',
                   media['files']['wav'], '--out', str(tmp_path / 'tags'),
                   '--beam_pipeline_options', IN_PROCESS, *extra])
  err = capsys.readouterr().err
  assert code == 2 and message in err and '--beam_pipeline_options' in err
  code = cli.main(['embed', '--workdir', str(tmp_path), '--audio',
                   media['files']['wav'], '--out', str(tmp_path / 'v'),
                   '--beam_pipeline_options', 'runner'])
  assert code == 2 and 'expected one argument' in capsys.readouterr().err


def test_predict_needs_out_with_beam(media, tmp_path, capsys):
  code = cli.main(['predict', '--workdir', str(tmp_path), '--audio',
                   media['files']['wav'], '--beam_pipeline_options',
                   IN_PROCESS])
  assert code == 2
  assert ('--beam_pipeline_options writes sharded JSON lines: give --out '
          'PREFIX') in capsys.readouterr().err

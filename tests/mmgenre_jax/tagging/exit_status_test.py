"""The exit statuses of `mmgenre predict`, `embed` and `finetune`.

0 when every input was done, 3 when some failed (every input still has its
row), 4 when none could be (mmgenre_jax/cli/flags.py); on the tiny trained
pipeline (tests/conftest.py tagging_workdir) and the `media` files, whose
broken.mp3 cannot be decoded.
"""

import csv
import json
import pathlib

import pytest

from helpers import tagging_pipeline
from mmgenre_jax import cli
from mmgenre_jax.cli import flags
from mmgenre_jax.tagging.finetune import fitted_head as head_lib

IN_PROCESS = 'runner=DirectRunner,direct_running_mode=in_memory'


def _inputs(media, kind):
  """The --audio files of each case: all good, some failed, all failed."""
  files = media['files']
  return {'good': [files['wav'], files['flac']],
          'some': [files['wav'], files['corrupt']],
          'none': [files['corrupt']]}[kind]


def test_statuses_are_distinct_and_not_taken():
  statuses = {flags.EXIT_OK, flags.EXIT_SOME_FAILED, flags.EXIT_ALL_FAILED}
  assert statuses == {0, 3, 4}  # 1: a bug's traceback, 2: a usage error.
  assert flags.exit_status(5, 0) == flags.EXIT_OK
  assert flags.exit_status(5, 2) == flags.EXIT_SOME_FAILED
  assert flags.exit_status(5, 5) == flags.EXIT_ALL_FAILED


@pytest.mark.parametrize('kind, status', [('good', 0), ('some', 3),
                                          ('none', 4)])
def test_predict_exit_status(tagging_workdir, media, tmp_path, capsys, kind,
                             status):
  audio = _inputs(media, kind)
  out = tmp_path / 'tags.json'
  code = cli.main(['predict', '--workdir', str(tagging_workdir), '--audio',
                   *audio, '--out', str(out), '--no-progress'])
  assert code == status
  rows = json.loads(out.read_text())
  assert sorted(r['input'] for r in rows) == sorted(audio)  # A row each.
  failed = sum(r['error'] is not None for r in rows)
  err = capsys.readouterr().err
  if failed:
    assert f'{failed} of {len(audio)} inputs failed' in err
  # A resumed run tags nothing and keeps the rows: the same status.
  assert cli.main(['predict', '--workdir', str(tagging_workdir), '--audio',
                   *audio, '--out', str(out), '--no-progress']) == status


@pytest.mark.parametrize('kind, status', [('good', 0), ('some', 3),
                                          ('none', 4)])
def test_embed_exit_status(tagging_workdir, media, tmp_path, kind, status):
  audio = _inputs(media, kind)
  out = tmp_path / 'vectors'
  code = cli.main(['embed', '--workdir', str(tagging_workdir), '--audio',
                   *audio, '--out', str(out), '--no-progress'])
  assert code == status
  with open(out / 'errors.tsv', newline='', encoding='utf-8') as f:
    errors = list(csv.DictReader(f, delimiter='\t'))
  assert len(errors) == {'good': 0, 'some': 1, 'none': 1}[kind]


@pytest.mark.parametrize('task', ['predict', 'embed'])
@pytest.mark.parametrize('kind, status', [('good', 0), ('some', 3),
                                          ('none', 4)])
def test_beam_exit_status(tagging_workdir, media, tmp_path, task, kind,
                          status):
  audio = _inputs(media, kind)
  prefix = tmp_path / 'rows'
  args = [task, '--workdir', str(tagging_workdir), '--audio', *audio,
          '--out', str(prefix), '--beam_pipeline_options', IN_PROCESS]
  assert cli.main(args) == status
  rows = [json.loads(line) for path in tmp_path.glob('rows-*.jsonl')
          for line in path.read_text().splitlines()]
  assert sorted(r['input'] for r in rows) == sorted(audio)
  # A rerun keeps every row and tags nothing: the same status.
  assert cli.main(args) == status


def _labels_csv(path, rows):
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(['input', 'labels'])
    writer.writerows(rows)
  return path


def _finetune(workdir, labels, out):
  return cli.main(['finetune', '--workdir', str(workdir), '--labels',
                   str(labels), '--out', str(out), '--no-progress'])


@pytest.fixture(scope='module')
def tones(tmp_path_factory):
  """Five low and five high tones: labels 'calm' and 'bright'."""
  root = tmp_path_factory.mktemp('tones')
  rows = []
  for i, hz in enumerate([80, 110, 150, 200, 260, 900, 1200, 1600, 2100,
                          2800]):
    path = tagging_pipeline.tone(root / f't{i}.wav', 4.0, 22050, hz)
    rows.append((path, 'calm' if hz < 400 else 'bright'))
  return rows


def test_finetune_exit_status_all_good_and_some_failed(
    tagging_workdir, media, tones, tmp_path, capsys):
  assert _finetune(tagging_workdir, _labels_csv(tmp_path / 'good.csv', tones),
                   tmp_path / 'good') == 0
  rows = tones + [(media['files']['corrupt'], 'calm'),  # fails to embed
                  (str(tmp_path / 'gone.wav'), 'bright')]  # row skipped
  capsys.readouterr()
  assert _finetune(tagging_workdir, _labels_csv(tmp_path / 'some.csv', rows),
                   tmp_path / 'some') == 3
  err = capsys.readouterr().err
  assert 'gone.wav' in err and media['files']['corrupt'] in err
  assert sorted(head_lib.load(tmp_path / 'some').labels) == ['bright',
                                                            'calm']


def test_finetune_exit_status_when_every_example_fails(
    tagging_workdir, media, tmp_path, capsys):
  # Each label has enough rows, but no example embeds: no head.
  corrupt = pathlib.Path(media['files']['corrupt']).read_bytes()
  rows = []
  for i in range(8):
    path = tmp_path / f'broken{i}.mp3'
    path.write_bytes(corrupt + bytes([i]))
    rows.append((str(path), 'calm' if i < 4 else 'bright'))
  code = _finetune(tagging_workdir, _labels_csv(tmp_path / 'none.csv', rows),
                   tmp_path / 'none')
  assert code == 4
  err = capsys.readouterr().err
  assert 'failed to embed' in err
  assert not head_lib.is_head(tmp_path / 'none')

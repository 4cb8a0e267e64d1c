"""`mmgenre predict`, `embed` and `figures` without Beam, with the inputs
and the outputs in a bucket (a GCS emulator, tests/conftest.py gcs_server):
the rows, vectors and files must be those of the same run on local disk,
the URLs in place of the paths.
"""

import json

from etils import epath
import numpy as np

from helpers import gcs_emulator
from helpers import tagging_pipeline
from mmgenre_jax import cli


def _music(tmp_path, bucket_dir):
  """Two short tones on local disk and the same files in the bucket."""
  music = tmp_path / 'music'
  music.mkdir()
  tagging_pipeline.tone(music / 'a.wav', 4.0, 16000, 440)
  tagging_pipeline.tone(music / 'b.wav', 3.0, 16000, 220)
  gcs_emulator.upload(music, f'{bucket_dir}/music')
  return str(music), f'{bucket_dir}/music'


def _rows(text, music):
  """JSON rows with `music` named `.`, without their timings and stamps."""
  rows = json.loads(text.replace(music, '.'))
  for row in rows:
    del row['duration_s'], row['sources']
  return rows


def test_predict_writes_and_resumes_an_object(tagging_workdir, tmp_path,
                                              bucket_dir, capsys):
  music, url = _music(tmp_path, bucket_dir)
  local_out, out = tmp_path / 'tags.json', f'{bucket_dir}/tags.json'
  for audio, target in ((music, local_out), (url, out)):
    assert cli.main(['predict', '--workdir', str(tagging_workdir),
                     '--audio', audio, '--out', str(target),
                     '--no-progress']) == 0
  rows = _rows(epath.Path(out).read_text(), url)
  assert rows == _rows(local_out.read_text(), music)
  assert len(rows) == 2
  capsys.readouterr()
  # A rerun starts from the object's rows: nothing to tag, rows unchanged.
  assert cli.main(['predict', '--workdir', str(tagging_workdir), '--audio',
                   url, '--out', out, '--no-progress']) == 0
  assert f'Resuming {out}: 2 rows kept.' in capsys.readouterr().err
  assert _rows(epath.Path(out).read_text(), url) == rows


def test_embed_reads_and_writes_a_bucket(tagging_workdir, tmp_path,
                                         bucket_dir):
  music, url = _music(tmp_path, bucket_dir)
  local_out, out = tmp_path / 'vectors', f'{bucket_dir}/vectors'
  for audio, target in ((music, local_out), (url, out)):
    assert cli.main(['embed', '--workdir', str(tagging_workdir), '--audio',
                     audio, '--out', str(target), '--no-progress']) == 0
  names = sorted(p.name for p in local_out.iterdir())
  assert sorted(p.name for p in epath.Path(out).iterdir()) == names
  for name in names:
    if name.endswith('.npy'):
      with epath.Path(out, name).open('rb') as f:
        np.testing.assert_array_equal(np.load(f),
                                      np.load(local_out / name))
  index = epath.Path(out, 'index.tsv').read_text().replace(url, music)
  assert ([line.split('\t')[:3] for line in index.splitlines()] ==
          [line.split('\t')[:3] for line in
           (local_out / 'index.tsv').read_text().splitlines()])


def test_figures_of_a_workdir_in_a_bucket(tagging_workdir, bucket_dir):
  # The stage's checkpoint (the CAM figures) and its event files (the
  # curves) are what the figure code read as local paths.
  workdir = f'{bucket_dir}/W'
  gcs_emulator.upload(tagging_workdir, workdir)
  assert cli.main(['figures', workdir, '--only', 'cam_two_classes',
                   'training_curves']) == 0
  for name in ('cam_two_classes.png', 'training_curves.png'):
    assert epath.Path(workdir, 'figures', name).read_bytes()[:4] == (
        b'\x89PNG')


def test_finetune_on_labelled_files_in_a_bucket(tagging_workdir, tmp_path,
                                                bucket_dir):
  # The labels CSV names its files relative to its folder, a URL prefix.
  tones = tmp_path / 'tones'
  tones.mkdir()
  rows = ['input,labels']
  for i, hz in enumerate((900, 1200, 1500, 1800, 200, 300)):
    tagging_pipeline.tone(tones / f't{i}.wav', 2.0, 16000, hz)
    rows.append(f't{i}.wav,{"high" if hz > 500 else ""}')
  (tones / 'labels.csv').write_text('\n'.join(rows) + '\n')
  url = f'{bucket_dir}/tones'
  gcs_emulator.upload(tones, url)
  heads = tmp_path / 'local_head', tmp_path / 'bucket_head'
  for folder, head in zip((tones, url), heads):
    assert cli.main(['finetune', '--workdir', str(tagging_workdir),
                     '--labels', f'{folder}/labels.csv', '--out', str(head),
                     '--no-progress']) == 0
  # The same head: same examples, same weights (their name is a digest),
  # the same cache keys (digests of the files' bytes).
  local, remote = (json.loads((h / 'head.json').read_text()) for h in heads)
  for head in (local, remote):
    del head['created'], head['name']  # The time, the --out folder's name.
  assert json.dumps(remote).replace(url, str(tones)) == json.dumps(local)
  assert ({p.name for p in heads[1].rglob('*')} ==
          {p.name for p in heads[0].rglob('*')})

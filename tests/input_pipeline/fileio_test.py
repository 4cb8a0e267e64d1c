"""input_pipeline.fileio: atomic writes, and the modes the umask gives."""

import os
import subprocess
import sys

import pytest

from input_pipeline import fileio

# Writes a file each way the jobs write local files, then prints their modes.
_WRITE_EACH_WAY = '''
import os, sys
out, umask = sys.argv[1], int(sys.argv[2], 8)
os.umask(umask)  # as a shell's `umask` would have set it
from input_pipeline import fileio
fileio.write_json_atomic(os.path.join(out, 'results.json'), {'a': 1})
name = fileio.temp_file(out, prefix='.shard-')
os.replace(name, os.path.join(out, 'train-00000-of-00001.tfrecord'))
for name in sorted(os.listdir(out)):
  print(name, oct(os.stat(os.path.join(out, name)).st_mode & 0o777))
'''


@pytest.mark.parametrize('umask,mode', [(0o022, '0o644'), (0o027, '0o640'),
                                        (0o002, '0o664')])
def test_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
  # A fresh process: FILE_MODE is read from the umask at import.
  printed = subprocess.run(
      [sys.executable, '-c', _WRITE_EACH_WAY, str(tmp_path), oct(umask)],
      check=True, capture_output=True, text=True,
      env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}).stdout
  assert printed.split('\n') == [
      f'results.json {mode}', f'train-00000-of-00001.tfrecord {mode}', '']


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
  path = tmp_path / 'sub' / 'x.json'
  fileio.write_json_atomic(path, {'v': 1})
  assert path.read_text() == '{\n "v": 1\n}\n'
  with pytest.raises(RuntimeError):
    with fileio.atomic_open(path) as f:
      f.write(b'half')
      raise RuntimeError('stopped mid-write')
  assert path.read_text() == '{\n "v": 1\n}\n'
  assert sorted(p.name for p in path.parent.iterdir()) == ['x.json']
  assert path.stat().st_mode & 0o777 == fileio.FILE_MODE


def test_urls_write_read_and_rename_on_a_gcs_server(bucket_dir):
  # A real GCS JSON-API server (tests/helpers/gcs_emulator.py), through the
  # one filesystem layer: epath's gcsfs backend.
  from etils import epath  # pylint: disable=g-import-not-at-top
  assert os.environ['EPATH_USE_TF'] == 'false'
  target = f'{bucket_dir}/sub/x.json'
  fileio.write_json_atomic(target, {'v': 1})
  assert epath.Path(target).read_text() == '{\n "v": 1\n}\n'
  with pytest.raises(ZeroDivisionError):
    with fileio.atomic_open(target) as f:
      f.write(b'half')
      raise ZeroDivisionError
  assert epath.Path(target).read_text() == '{\n "v": 1\n}\n'

  tmp = fileio.temp_file(f'{bucket_dir}/sub', prefix='.shard-')
  assert fileio.is_local(tmp) and os.path.isfile(tmp)
  with open(tmp, 'wb') as f:
    f.write(b'\x00shard' * 1000)
  fileio.publish(tmp, f'{bucket_dir}/sub/shard')
  assert not os.path.exists(tmp)
  fileio.replace(f'{bucket_dir}/sub/shard', f'{bucket_dir}/sub/moved')
  names = sorted(p.name for p in epath.Path(f'{bucket_dir}/sub').iterdir())
  assert names == ['moved', 'x.json']
  with fileio.local_copy(f'{bucket_dir}/sub/moved') as local:
    assert fileio.is_local(local)
    with open(local, 'rb') as f:
      assert f.read() == b'\x00shard' * 1000
  assert not os.path.exists(local)
  with fileio.local_copy(f'{bucket_dir}/missing.wav') as same:
    assert same == f'{bucket_dir}/missing.wav'


def test_listed_folders_answer_from_one_listing(bucket_dir):
  from etils import epath  # pylint: disable=g-import-not-at-top
  epath.Path(f'{bucket_dir}/media/a.ogg').write_bytes(b'a')
  epath.Path(f'{bucket_dir}/media/sub/b.ogg').write_bytes(b'b')
  with fileio.listed_folders():
    assert fileio.is_file(f'{bucket_dir}/media/a.ogg')
    assert not fileio.is_file(f'{bucket_dir}/media/sub')  # A folder.
    assert not fileio.is_file(f'{bucket_dir}/media/c.ogg')
    assert fileio.is_file(f'{bucket_dir}/media/sub/b.ogg')
    # Added after the listing: not seen until the block ends.
    epath.Path(f'{bucket_dir}/media/c.ogg').write_bytes(b'c')
    assert not fileio.is_file(f'{bucket_dir}/media/c.ogg')
  assert fileio.is_file(f'{bucket_dir}/media/c.ogg')
  assert not fileio.is_file(f'{bucket_dir}/nothing/here.ogg')

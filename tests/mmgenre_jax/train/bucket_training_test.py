"""Training and evaluation with the shards and the workdir in a bucket: a
GCS server on 127.0.0.1 (helpers/gcs_emulator.py), reached by gcsfs (epath,
fileio), by tensorstore (orbax's arrays) and by object_records (tf.data's
shard files), never by TensorFlow's own GCS client (docs/scale.md §4).

A tiny run stopped in its second epoch and resumed from the bucket must
give the local uninterrupted run's test metrics (conftest's full_run);
`evaluate --follow` then reads the finished workdir from the bucket.
"""

import json
import os

from etils import epath
import pytest

from helpers import gcs_emulator
from helpers import tiny
from input_pipeline import fileio
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.evaluation import evaluate
from mmgenre_jax.train import loop as train_loop


@pytest.fixture(scope='module')
def bucket(gcs_server, shard_dir):
  """A bucket of this module (tensorstore needs a name of 3+ characters)
  holding the tiny shards."""
  del gcs_server
  url = gcs_emulator.make_bucket(f'mmgenre-train-{os.getpid()}')
  gcs_emulator.upload(shard_dir, f'{url}/shards')
  return url


def test_training_resumed_from_a_bucket_equals_the_local_run(
    bucket, full_run, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # Empty: nothing may be written here.
  _, full_report = full_run
  shards, workdir = f'{bucket}/shards', f'{bucket}/w'
  stopped = train_loop.train_and_evaluate(
      tiny.tiny_train_config(shards, max_steps=3), workdir)
  assert stopped['train_steps'] == 3
  resumed = train_loop.train_and_evaluate(tiny.tiny_train_config(shards),
                                          workdir)
  assert resumed['train_steps'] == 4
  for key in ('roc_auc', 'pr_auc', 'loss'):
    assert resumed[key] == full_report[key], key
  names = {os.path.relpath(p, workdir) for p in fileio.files_under(workdir)}
  assert {workdir_lib.TRAINING_DONE_JSON, 'test_metrics.json'} <= names
  assert any(n.startswith('checkpoints/latest/4/') for n in names)
  assert any(n.startswith('events.out.tfevents.') for n in names)
  done = json.loads(epath.Path(workdir,
                               workdir_lib.TRAINING_DONE_JSON).read_text())
  assert done['step'] == 4
  # Follow mode on the finished workdir: the latest checkpoint, once.
  followed = evaluate.evaluate(tiny.tiny_train_config(shards), workdir,
                               follow=True, timeout_s=60)
  assert followed['step'] == 4
  assert followed['roc_auc'] == full_report['roc_auc']
  assert not list(tmp_path.iterdir())

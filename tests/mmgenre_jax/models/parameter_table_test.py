"""Tests of the parameter summaries (mmgenre_jax/models/parameter_table.py)."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from configs import mumu_audio
from configs import mumu_fusion
from configs import mumu_text
from mmgenre_jax import models
from mmgenre_jax.models import parameter_table
from mmgenre_jax.models import audio

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _last_line(text):
  return text.strip().splitlines()[-1]


def test_main_summary_mode_prints_total_params(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, 'main.py',
       '--config=configs/mumu_audio.py:high-4x70-cosine',
       f'--workdir={tmp_path}', '--mode=summary'],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
      check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert _last_line(result.stdout) == 'total_params=6570802'
  assert 'conv_1/kernel' in result.stdout
  assert '(4, 6, 256, 512)' in result.stdout
  assert 'representation: (1, 4096)' in result.stdout


@pytest.mark.parametrize('config,total', [
    # Text MLP LOGISTIC: 10000x2048 + 2048x2048 + 2048x250 + biases (~25.2M).
    (mumu_text.get_config('logistic'), 25_190_650),
    # A+T+I fusion: (4096 + 2048 + 2048) x K + K (Table 6: 2M and 0.4M).
    (mumu_fusion.get_config('audio+text+image-logistic'), 2_048_250),
    (mumu_fusion.get_config('audio+text+image-cosine'), 409_650),
    # TIMBRE-MLP: 48 x 250 + 250 (Table 6: 0.01M).
    (mumu_audio.get_config('timbre-logistic'), 12_250),
])
def test_print_summary_ends_with_total(config, total, capsys):
  assert parameter_table.print_summary(config) == total
  printed = capsys.readouterr().out
  assert _last_line(printed) == f'total_params={total}'
  assert f'{total:,}' in printed  # The table's total row.
  assert 'head/dense/kernel' in printed


def test_parameter_table_rows_and_total():
  model = audio.create_audio_cnn('low-4x70', num_outputs=250,
                                 target='logistic')
  table, total = parameter_table.parameter_table(model,
                                                 jnp.zeros((1, 322, 96, 1)))
  assert total == 352_890
  rows = {line.split()[0]: line.split()[-1]
          for line in table.splitlines()[2:-1]}
  assert rows == {
      'conv_0/bias': '64', 'conv_0/kernel': '17,920',
      'conv_1/bias': '128', 'conv_1/kernel': '196,608',
      'conv_2/bias': '128', 'conv_2/kernel': '65,536',
      'conv_3/bias': '64', 'conv_3/kernel': '8,192',
      'head/dense/bias': '250', 'head/dense/kernel': '64,000'}
  assert table.splitlines()[-1].split() == ['total', '352,890']


def test_summary_only_traces():
  # A 25M-parameter network summarised from shapes: the variables are
  # ShapeDtypeStructs, never arrays, so nothing is allocated or compiled.
  config = mumu_text.get_config('cosine')
  variables = parameter_table.abstract_variables(
      models.create_model(config.model), models.dummy_inputs(config.model))
  leaves = jax.tree.leaves(variables)
  assert leaves and all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)

"""Shared pytest set-up: CPU only, quiet TensorFlow, a small synthetic corpus."""

import os

# Before any import of TF/JAX: keep TF off GPUs and quiet; JAX on the CPU.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import pathlib  # noqa: E402

import pytest  # noqa: E402

# Copies of the genuine MuMu release files (see data/mumu/PROVENANCE.md).
MUMU_RELEASE_DIR = pathlib.Path(__file__).resolve().parent / 'data' / 'mumu'


@pytest.fixture(scope='session')
def mumu_release_dir() -> pathlib.Path:
  """The genuine MuMu release files shipped beside the project."""
  if not (MUMU_RELEASE_DIR / 'MuMu_dataset_single-label.csv').exists():
    raise FileNotFoundError(
        f'Genuine MuMu release files not found in {MUMU_RELEASE_DIR}.')
  return MUMU_RELEASE_DIR

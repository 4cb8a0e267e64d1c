"""Tests of mmgenre_jax.core.ppmi_svd: PPMI-SVD, scores, `mmgenre factorize`."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline.formats import mumu
from input_pipeline.formats import splits as splits_lib
from mmgenre_jax import cli
from mmgenre_jax.core import ppmi_svd
from mmgenre_jax import workdir as workdir_lib

# 6 items x 4 labels; label 3 co-occurs with label 0 only, item 5 has no label.
HAND_M = np.array([
    [1, 1, 0, 0],
    [1, 0, 1, 0],
    [1, 1, 1, 0],
    [0, 1, 1, 0],
    [1, 0, 0, 1],
    [0, 0, 0, 0],
], np.uint8)


def direct_ppmi(m: np.ndarray) -> np.ndarray:
  """Paper Sec 5.1, Eq. (1), written out label pair by label pair."""
  num_items, num_labels = m.shape
  x = np.zeros((num_labels, num_labels))
  for i in range(num_labels):
    for j in range(num_labels):
      both = np.sum((m[:, i] == 1) & (m[:, j] == 1))
      if both == 0:
        continue
      p_ij = both / num_items
      p_i = m[:, i].sum() / num_items
      p_j = m[:, j].sum() / num_items
      x[i, j] = max(0.0, math.log(p_ij / (p_i * p_j)))
  return x


def test_ppmi_equals_direct_computation():
  x = ppmi_svd.ppmi(HAND_M)
  np.testing.assert_allclose(x, direct_ppmi(HAND_M), rtol=1e-12, atol=1e-12)
  # Spot value: labels 0 and 3 share item 4; P = 1/6, P(G_0) = 4/6,
  # P(G_3) = 1/6 -> log(1/6 / (4/6 * 1/6)) = log(1.5).
  assert x[0, 3] == pytest.approx(math.log(1.5))
  # Labels 1 and 3 never co-occur -> 0, not -inf.
  assert x[1, 3] == 0.0
  np.testing.assert_allclose(x, x.T)


def test_ppmi_accepts_jax_input_and_unused_label():
  m = np.concatenate([HAND_M, np.zeros((6, 1), np.uint8)], axis=1)
  x = ppmi_svd.ppmi(jnp.asarray(m))
  assert np.all(np.isfinite(x))
  np.testing.assert_array_equal(x[4], 0.0)
  np.testing.assert_allclose(x[:4, :4], direct_ppmi(HAND_M), atol=1e-12)


@pytest.mark.parametrize('dim', [1, 2, 4])
def test_label_factors_match_numpy_svd(dim):
  result = ppmi_svd.factorize(HAND_M, dim)
  x = direct_ppmi(HAND_M)
  u, s, _ = np.linalg.svd(x)
  # C C^T = U_d Σ_d U_d^T does not depend on the sign of each column.
  expected = (u[:, :dim] * s[:dim]) @ u[:, :dim].T
  c = result.label_factors
  assert c.shape == (4, dim)
  np.testing.assert_allclose(c @ c.T, expected, atol=1e-10)
  np.testing.assert_allclose(result.singular_values, s[:dim], rtol=1e-12)


def test_full_rank_reconstructs_ppmi():
  result = ppmi_svd.factorize(HAND_M, 4)
  np.testing.assert_allclose(
      result.label_factors @ result.context_factors.T, result.ppmi,
      atol=1e-10)


def test_factorize_is_deterministic_in_sign():
  a = ppmi_svd.factorize(HAND_M, 3).label_factors
  b = ppmi_svd.factorize(HAND_M[::-1].copy(), 3).label_factors
  np.testing.assert_allclose(a, b, atol=1e-10)
  pivots = np.argmax(np.abs(a), axis=0)
  assert np.all(a[pivots, np.arange(3)] > 0)


def test_item_factors_unit_norm_and_empty_item_is_zero():
  result = ppmi_svd.factorize(HAND_M, 3)
  f = result.item_factors
  assert f.shape == (6, 3)
  assert np.all(np.isfinite(f))
  np.testing.assert_allclose(np.linalg.norm(f[:5], axis=1), 1.0, rtol=1e-12)
  np.testing.assert_array_equal(f[5], 0.0)
  assert result.num_empty_items == 1
  # F_d = M C_d before normalisation: item 2 is the sum of labels 0, 1, 2.
  raw = result.label_factors[:3].sum(axis=0)
  np.testing.assert_allclose(f[2], raw / np.linalg.norm(raw), rtol=1e-10)


def test_item_factors_jit_matches_numpy():
  result = ppmi_svd.factorize(HAND_M, 3)
  got = jax.jit(ppmi_svd.item_factors)(jnp.asarray(HAND_M),
                                      jnp.asarray(result.label_factors))
  assert isinstance(got, jax.Array)
  np.testing.assert_allclose(np.asarray(got), result.item_factors,
                             atol=1e-6)
  np.testing.assert_array_equal(np.asarray(got)[5], 0.0)


@pytest.mark.parametrize('dim', [0, 5])
def test_dim_out_of_range_is_a_clear_error(dim):
  with pytest.raises(ValueError, match=r'between 1 and the number of labels'):
    ppmi_svd.factorize(HAND_M, dim)


def test_non_binary_matrix_is_rejected():
  with pytest.raises(ValueError, match='binary'):
    ppmi_svd.factorize(HAND_M * 2, 2)


def _release_args(mumu_release_dir):
  return [
      '--metadata', str(mumu_release_dir / 'MuMu_dataset_single-label.csv'),
      '--labels', str(mumu_release_dir / 'genre_labels_MuMu.tsv')
  ]


def test_factorize_cli_round_trip(mumu_release_dir, tmp_path):
  dataset = mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv')
  split_dir = tmp_path / 'splits'
  splits = splits_lib.mumu_splits(dataset, seed=0)
  splits_lib.write_splits(splits, split_dir)
  out = tmp_path / 'factors'
  rc = cli.main(['factorize', *_release_args(mumu_release_dir), '--splits',
                 str(split_dir), '--dim', '16', '--out', str(out)])
  assert rc == 0
  label_factors = np.load(out / workdir_lib.LABEL_FACTORS_NPY)
  item_factors = np.load(out / workdir_lib.ITEM_FACTORS_NPY)
  labels = workdir_lib.read_lines(out / workdir_lib.LABELS_TSV)
  items = workdir_lib.read_lines(out / workdir_lib.ITEMS_TSV)
  assert labels == list(dataset.labels)
  assert len(labels) == 16
  # Only the train + val albums form M (paper Sec 7.3).
  assert items == splits['train'] + splits['val']
  assert not set(items) & set(splits['test'])
  assert label_factors.dtype == np.float32
  assert label_factors.shape == (16, 16)
  assert item_factors.shape == (len(items), 16)
  expected = ppmi_svd.factorize(dataset.label_matrix(items), 16)
  np.testing.assert_allclose(label_factors, expected.label_factors,
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(item_factors, axis=1), 1.0,
                             rtol=1e-5)
  # Every album of this file has one label, so each item factor is the
  # normalised factor of its label.
  m = dataset.label_matrix(items)
  np.testing.assert_allclose(
      item_factors, ppmi_svd.item_factors(m, label_factors), atol=1e-6)


def test_factorize_cli_without_splits_uses_all_albums(mumu_release_dir,
                                                      tmp_path):
  out = tmp_path / 'factors'
  rc = cli.main(['factorize', *_release_args(mumu_release_dir), '--dim', '8',
                 '--out', str(out)])
  assert rc == 0
  items = workdir_lib.read_lines(out / workdir_lib.ITEMS_TSV)
  assert len(items) == 2321
  label_factors = np.load(out / workdir_lib.LABEL_FACTORS_NPY)
  assert label_factors.shape == (16, 8)
  # One label per album makes the PPMI matrix diagonal (labels never
  # co-occur), so d=8 keeps exactly 8 labels, the rarest ones: log(1/P(G))
  # is largest for them.
  kept = label_factors.any(axis=1)
  assert kept.sum() == 8
  counts = mumu.load_mumu(
      mumu_release_dir / 'MuMu_dataset_single-label.csv',
      labels_path=mumu_release_dir / 'genre_labels_MuMu.tsv').label_matrix(
          items).sum(axis=0)
  assert counts[kept].max() < counts[~kept].min()


def test_factorize_cli_dim_too_large(mumu_release_dir, tmp_path, capsys):
  out = tmp_path / 'factors'
  rc = cli.main(['factorize', *_release_args(mumu_release_dir), '--dim', '17',
                 '--out', str(out)])
  assert rc == 2
  err = capsys.readouterr().err
  assert 'd=17' in err and '16' in err and '--dim' in err
  assert not (out / workdir_lib.LABEL_FACTORS_NPY).exists()


def test_factorize_cli_splits_from_other_metadata(mumu_release_dir, tmp_path,
                                                  capsys):
  split_dir = tmp_path / 'splits'
  splits_lib.write_splits({'train': ['NOT_AN_ALBUM'], 'val': [], 'test': []},
                          split_dir)
  rc = cli.main(['factorize', *_release_args(mumu_release_dir), '--splits',
                 str(split_dir), '--dim', '4', '--out', str(tmp_path / 'f')])
  assert rc == 2
  assert 'NOT_AN_ALBUM' in capsys.readouterr().err

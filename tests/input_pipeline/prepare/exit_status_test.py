"""The exit status of `mmgenre prepare` (mmgenre_jax/cli/flags.py).

0 when the manifest is written (skips within --max-skip-fraction), 4 when
the skip budget stops the run, on the pool and on Beam; the hand-made
corpus has 2 broken tracks of 7 (28 %: over the default budget of 0.2).
"""

import pytest

from input_pipeline import layout
from mmgenre_jax import cli
from mmgenre_jax.cli import flags

from helpers import mumu_corpus

IN_PROCESS = 'runner=DirectRunner,direct_running_mode=in_memory'


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp('corpus')
  mumu_corpus.make_corpus(root)
  return root


def _prepare(root, out, *extra):
  return cli.main(['prepare', '--dataset', 'mumu', '--data', str(root),
                   '--out', str(out), '--splits', str(root / 'splits'),
                   '--image-size', str(mumu_corpus.IMAGE_SIZE),
                   '--no-progress', '--no-windows', *extra])


@pytest.mark.parametrize('executor', [('--workers', '1'),
                                      ('--beam_pipeline_options',
                                       IN_PROCESS)])
def test_prepare_stopped_by_the_skip_budget_exits_4(corpus, tmp_path, capsys,
                                                    executor):
  out = tmp_path / 'shards'
  assert _prepare(corpus, out, *executor) == flags.EXIT_ALL_FAILED == 4
  error = capsys.readouterr().err
  assert error.startswith('mmgenre prepare: error: too many inputs are '
                          'skipped: 2 of 7 audio files')
  assert not (out / layout.MANIFEST_JSON).exists()
  assert (out / layout.SKIPPED_TSV).exists()
  # Within a budget that accepts them: the run is complete, exit 0.
  assert _prepare(corpus, out, *executor, '--max-skip-fraction',
                  str(mumu_corpus.BUDGET)) == flags.EXIT_OK
  assert (out / layout.MANIFEST_JSON).exists()

"""Tests of input_pipeline.beam.prepare: `mmgenre prepare` on Apache Beam.

The Beam pipeline (DirectRunner in this process) must write what the
process pool writes: the same shard files with the same records in the same
order, the same skipped.tsv, splits and tf-idf space, the same manifest but
for its timing and executor, and the same statistics up to float64 rounding.
DirectRunner's multi_threading mode splits every stage's input between two
workers (as multi_processing does, without starting processes), so the
outputs cannot depend on which worker saw which item. The multi_processing
runs are benchmarks/beam_prepare.py's (it checks their shards too).
"""

import csv
import json
import pathlib

import apache_beam
import numpy as np
import pytest

from input_pipeline.beam import prepare as beam_prepare
from input_pipeline.beam import report as beam_report
from input_pipeline.beam import shards as beam_shards
from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import mumu
from input_pipeline.prepare import job as prepare_job
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import release_items
from input_pipeline.prepare import shards as prepare_shards
from input_pipeline.formats import splits as splits_lib
from input_pipeline import synthetic
from input_pipeline.records import tfrecord
from mmgenre_jax import cli

from helpers import mumu_corpus

# prepare_test's readers of what prepare wrote are used as they are.
# pylint: disable=protected-access

IN_PROCESS = 'runner=DirectRunner'
TWO_THREADS = ('runner=DirectRunner,direct_num_workers=2,'
               'direct_running_mode=multi_threading')
# What may differ between two runs that write the same files.
VOLATILE = ('elapsed_s', 'created', 'executor')
VOLATILE_ARGS = ('out', 'beam_pipeline_options')
# Defect kinds of the synthetic corpus -> the skipped.tsv stage naming them.
DEFECT_STAGE = {'empty_audio': 'audio', 'corrupt_audio': 'audio',
                'corrupt_image': 'image', 'empty_reviews': 'text'}


def _prepare(root, out, beam=None, **settings):
  return prepare_job.prepare(
      'mumu', root, out,
      prepare_job.Settings(beam_pipeline_options=beam, workers=1, **settings),
      progress=False)


def _files(out: pathlib.Path):
  return sorted(p.relative_to(out).as_posix() for p in out.rglob('*')
                if p.is_file())


def _assert_records_equal(got, want, where: str) -> None:
  assert len(got) == len(want), where
  for i, (a, b) in enumerate(zip(got, want)):
    assert a.keys() == b.keys(), (where, i)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=f'{where} #{i}')


def _stable(manifest):
  kept = {k: v for k, v in manifest.items() if k not in VOLATILE}
  kept['args'] = {k: v for k, v in manifest['args'].items()
                  if k not in VOLATILE_ARGS}
  return kept


def _assert_same_outputs(pool_out: pathlib.Path, beam_out: pathlib.Path):
  """Beam's outputs are the pool's, example for example."""
  pool = json.loads((pool_out / layout.MANIFEST_JSON).read_text())
  beam = json.loads((beam_out / layout.MANIFEST_JSON).read_text())
  assert pool['executor'] == 'pool'
  assert beam['executor'] == 'beam:DirectRunner'
  assert _stable(beam) == _stable(pool)
  assert _files(beam_out) == _files(pool_out)
  for kind, entry in pool['modalities'].items():
    for split in entry['shards']:
      _assert_records_equal(
          mumu_corpus.read_records(beam_out, beam, kind, split),
          mumu_corpus.read_records(pool_out, pool, kind, split),
          f'{kind} {split}')
  # The shards byte for byte (their sha256 are in the manifests), skipped.tsv
  # row for row, the splits and the tf-idf space.
  for name in _files(pool_out):
    if name not in (layout.MANIFEST_JSON, layout.AUDIO_STATS_NPZ):
      assert (beam_out / name).read_bytes() == (
          pool_out / name).read_bytes(), name
  if pool['audio_stats']:
    want = np.load(pool_out / layout.AUDIO_STATS_NPZ)
    got = np.load(beam_out / layout.AUDIO_STATS_NPZ)
    assert int(got['count']) == int(want['count']) > 0
    # The same float64 sums, added in another order.
    for key in ('mean', 'std'):
      np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6)


@pytest.fixture(scope='module')
def synthetic_run(tmp_path_factory):
  """(corpus, the pool's shards) of a small synthetic corpus with defects."""
  corpus = tmp_path_factory.mktemp('corpus')
  synthetic.generate_corpus(corpus, num_albums=8, seed=0, defects=1,
                            workers=1, progress=False)
  out = tmp_path_factory.mktemp('pool')
  _prepare(corpus, out, image_size=32, shard_size=3,
           enrichment=corpus / 'enrichment.tsv')
  return corpus, out


@pytest.mark.parametrize('options', [IN_PROCESS, TWO_THREADS],
                         ids=['in_process', 'two_threads'])
def test_beam_writes_the_pool_shards(synthetic_run, tmp_path, options):
  corpus, pool_out = synthetic_run
  out = tmp_path / 'beam'
  manifest = _prepare(corpus, out, options, image_size=32, shard_size=3,
                      enrichment=corpus / 'enrichment.tsv')
  _assert_same_outputs(pool_out, out)
  assert not (out / beam_prepare.REPORT_JSON).exists()
  # Every planted defect of an album in the splits is a skipped.tsv row.
  skipped = {(r['stage'], r['item_id'])
             for r in mumu_corpus.skipped_rows(out)}
  with open(corpus / 'defects.tsv', newline='') as f:
    defects = list(csv.DictReader(f, delimiter='\t'))
  in_splits = set().union(*splits_lib.read_splits(out / 'splits').values())
  album_of = mumu.load_mumu(
      corpus / 'MuMu_dataset_multi-label.csv').track_album
  planted = {(DEFECT_STAGE[d['kind']], d['item_id']) for d in defects
             if album_of.get(d['item_id'], d['item_id']) in in_splits}
  assert planted and planted <= skipped
  assert sum(manifest['skipped'].values()) == len(skipped)


def test_jobs_travel_in_files_not_in_the_job_graph(synthetic_run, tmp_path):
  # A runner ships the graph to every worker (Dataflow: at most 10 MB), so
  # the items' paths and review texts are read from OUT by the workers.
  corpus_dir, _ = synthetic_run
  corpus = release_items.load_mumu_corpus(corpus_dir,
                                          skips=prepare_corpus.SkipLog())
  specs = prepare_job._record_specs('mumu', corpus, 32, windows=True)
  steps = prepare_job.media_steps(corpus, specs, seed=0, windows=True,
                              image_size=32)
  staged = beam_prepare.stage_jobs(corpus, tmp_path, steps, text=True)
  assert [p.name for p in staged] == [beam_prepare.MEDIA_JOBS,
                                      beam_prepare.TEXT_JOBS]
  read = [[beam_prepare.Job.from_json(line)
           for line in path.read_text('ascii').splitlines()]
          for path in staged]
  assert read == [beam_prepare.media_jobs(corpus, steps),
                  beam_prepare.text_jobs(corpus)]
  reviews = [review for job in read[1] for review in job.reviews]
  assert reviews and any(not r.isascii() or '\n' in r for r in reviews)
  p = apache_beam.Pipeline()
  beam_prepare.build(p, corpus, tmp_path, steps,
                     patch_shape=prepare_job.PATCH_SHAPE, shard_size=3,
                     text_specs=specs['text'])
  graph = p.to_runner_api().SerializeToString()
  for job in read[0][:3] + read[1][:3]:
    assert job.item.item_id.encode() not in graph
  assert max(reviews, key=len).encode('utf-8')[:40] not in graph


def test_records_the_runner_lost_fail_the_run():
  # The layout counts each item's records where they are made; a shard
  # writer that got fewer (a runner losing a worker's output) must not pass.
  shard = {'file': 'image/train-00000-of-00001.tfrecord', 'records': 2,
           'sha256': '0' * 64}
  report = beam_report.Report({
      'skipped': [], 'layouts': [['image', 'train', 3, [3]]],
      'shards': [['image', 'train', 0, shard]], 'stats_count': 0,
      'text': None})
  with pytest.raises(prepare_job.PrepareError,
                     match=r'image train: the Beam pipeline made 3 records '
                     r'but wrote 2 .* No manifest was written'):
    report.record(prepare_shards.ModalityResult(), 'image', 'train', 3, 0)
  shard['records'] = 3
  result = prepare_shards.ModalityResult()
  beam_report.Report({
      'skipped': [], 'layouts': [['image', 'train', 3, [3]]],
      'shards': [['image', 'train', 0, shard]], 'stats_count': 0,
      'text': None}).record(result, 'image', 'train', 3, 0)
  assert result.counts['train'] == {'read': 3, 'written': 3, 'skipped': 0,
                                    'records': 3}


def test_beam_writes_the_pool_shards_of_every_defect(tmp_path):
  # The hand-made corpus: a corrupt and a missing track, an empty cover, an
  # empty review, an unknown label, and a track of 3 whole-track windows
  # (one group, kept in one shard of 2 records).
  root = tmp_path / 'corpus'
  split_dir = mumu_corpus.make_corpus(root)
  settings = dict(splits=split_dir, image_size=mumu_corpus.IMAGE_SIZE,
                  shard_size=2, max_skip_fraction=mumu_corpus.BUDGET)
  _prepare(root, tmp_path / 'pool', **settings)
  manifest = _prepare(root, tmp_path / 'beam', IN_PROCESS, **settings)
  _assert_same_outputs(tmp_path / 'pool', tmp_path / 'beam')
  shards = manifest['modalities']['audio_windows']['shards']['val']
  assert [s['records'] for s in shards] == [3]


def test_beam_without_a_tfidf_space_skips_every_text_as_the_pool(tmp_path):
  root = tmp_path / 'corpus'
  split_dir = mumu_corpus.make_corpus(root)
  # Identical training texts: max_df=0.5 prunes every term.
  with open(root / 'reviews.jsonl', 'w') as f:
    for album in mumu_corpus.ALBUMS:
      f.write(json.dumps({'asin': album, 'reviewText': 'Same words.'}) + '\n')
  settings = dict(splits=split_dir, image_size=8, windows=False,
                  max_skip_fraction=1.0)
  _prepare(root, tmp_path / 'pool', **settings)
  manifest = _prepare(root, tmp_path / 'beam', IN_PROCESS, **settings)
  _assert_same_outputs(tmp_path / 'pool', tmp_path / 'beam')
  assert 'text' in manifest['omitted_modalities']
  assert manifest['skipped']['text'] == 5


def test_beam_fails_as_the_pool_without_training_audio(tmp_path):
  root = tmp_path / 'corpus'
  mumu_corpus.make_corpus(root)
  # The only training album's track (T3) is corrupt.
  bad_splits = tmp_path / 'bad_splits'
  splits_lib.write_splits({'train': ['A2'], 'val': ['A4'], 'test': ['A5']},
                          bad_splits)
  for name, beam in (('pool', None), ('beam', IN_PROCESS)):
    with pytest.raises(prepare_job.PrepareError, match='No training track'):
      _prepare(root, tmp_path / name, beam, splits=bad_splits,
               image_size=mumu_corpus.IMAGE_SIZE)
    assert not (tmp_path / name / layout.MANIFEST_JSON).exists()
    assert not list((tmp_path / name).rglob(f'*{fileio.TMP_SUFFIX}'))
  assert (tmp_path / 'beam' / layout.SKIPPED_TSV).read_bytes() == (
      tmp_path / 'pool' / layout.SKIPPED_TSV).read_bytes()


def test_pool_and_beam_runs_are_the_same_complete_run(synthetic_run,
                                                      tmp_path):
  corpus, pool_out = synthetic_run
  settings = dict(image_size=32, shard_size=3,
                  enrichment=corpus / 'enrichment.tsv', workers=1)
  for beam in (None, IN_PROCESS):
    args = prepare_job.run_args(
        'mumu', corpus, pool_out,
        prepare_job.Settings(beam_pipeline_options=beam, **settings))
    assert prepare_job.is_complete(pool_out, args)
  assert not prepare_job.is_complete(
      pool_out,
      prepare_job.run_args(
          'mumu', corpus, pool_out,
          prepare_job.Settings(**{
              **settings, 'shard_size': 4
          })))


@pytest.mark.parametrize('sizes', [[1] * 7, [3, 0, 1, 4, 2, 0, 2, 1],
                                   [0, 0], []])
def test_shard_layout_is_the_sharded_writers(tmp_path, sizes):
  with tfrecord.ShardedWriter(tmp_path / 'kind', 'train', shard_size=3,
                              root=tmp_path) as writer:
    for index, count in enumerate(sizes):
      writer.write_group([f'{index}/{j}'.encode() for j in range(count)])
  layout_ = beam_shards.shard_layout(list(enumerate(sizes)), 3)
  assert layout_.records == [s.records for s in writer.shards]
  assert layout_.items == len(sizes)
  for shard, info in enumerate(writer.shards):
    for record in tfrecord.read_records([tmp_path / info.file]):
      assert layout_.shard_of[int(record.split(b'/')[0])] == shard


def test_cli_rejects_unknown_beam_options_before_writing(tmp_path, capsys):
  out = tmp_path / 'shards'
  assert cli.main(['prepare', '--dataset', 'mumu', '--data', str(tmp_path),
                   '--out', str(out), '--no-progress',
                   '--beam_pipeline_options',
                   'runner=DirectRunner,direct_num_workerz=2']) == 2
  assert 'direct_num_workerz' in capsys.readouterr().err
  assert not out.exists()

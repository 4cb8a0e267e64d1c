"""`mmgenre prepare`: features of a corpus into TFRecord shards + manifest.

  mmgenre prepare --dataset mumu --data runs/data/synthetic \
      --out runs/data/shards
  mmgenre prepare --dataset catalog --manifest my/catalog.csv \
      --out runs/data/catalog_shards

  mmgenre prepare --dataset mumu --data runs/data/synthetic \
      --out runs/data/shards --beam_pipeline_options runner=DirectRunner,\
direct_num_workers=2,direct_running_mode=multi_processing

A catalog (docs/data_formats.md §1.3) is one CSV of albums: album_id, audio,
cover, reviews, artist_id, labels, split; its shards are laid out as MuMu's.

The features are computed in --workers processes here, or, with
--beam_pipeline_options, by one Apache Beam pipeline on the runner those
options name (input_pipeline/beam/prepare.py, docs/scale.md); both write the
same files, and the manifest's `executor` says which ran.

The split: MSD-I's release split (the `set` column) unless --splits says
`compute` or a directory; MuMu's computed with --seed unless --splits DIR
(the paper's split: DIR holding the authors' splits/items_index_{train,val,
test}_<dataset>.tsv as they ship, zenodo 831189; docs/data_formats.md §2);
a catalog's its `split` column when it has one, else computed with --seed.
Skips the work (one line, exit 0) when --out already holds a complete run
with the same settings (input_pipeline.prepare.job.is_complete: the manifest's
recorded arguments match, --workers and --beam_pipeline_options aside, and
its skips are within --max-skip-fraction); --force prepares it again. Bad
inputs are skipped and reported in skipped.tsv; a run within
--max-skip-fraction is a success (exit 0: the budget is how many skips the
user accepts, so a real corpus's few bad files do not stop a script), more
than --max-skip-fraction of a kind skipped (or no usable training audio)
stops it with the inputs-failed status (flags.EXIT_ALL_FAILED, 4; no
manifest, skipped.tsv written). Worker processes that cannot start (a
program read from standard input: input_pipeline/prepare/workers.py) are a
usage error (exit 2), no item tried.
What is written is input_pipeline.prepare.job's docstring and
docs/data_formats.md §3.
"""

import argparse

from input_pipeline import layout
from input_pipeline.features import frontends
from input_pipeline.formats import mumu
from input_pipeline.prepare import job as prepare_job
from input_pipeline.prepare import split_choice
from mmgenre_jax.cli import flags

# The --splits keywords; any other value is a directory.
SPLITS_RELEASE = 'release'
SPLITS_COMPUTE = 'compute'
_SPLITS_KEYWORDS = {SPLITS_RELEASE: split_choice.RELEASE_SPLITS,
                    SPLITS_COMPUTE: split_choice.COMPUTED_SPLITS,
                    'computed': split_choice.COMPUTED_SPLITS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--dataset', required=True,
                      choices=('mumu', 'msdi', 'catalog'),
                      help='Corpus format: a MuMu or MSD-I release '
                      'directory (--data), or a catalog CSV (--manifest).')
  parser.add_argument('--data', default=None,
                      help='mumu, msdi: the corpus directory '
                      '(docs/data_formats.md §1).')
  parser.add_argument('--manifest', default=None, metavar='FILE',
                      help='catalog: the catalog CSV (docs/data_formats.md '
                      '§1.3); a taxonomy.tsv beside it is used.')
  parser.add_argument('--out', required=True, help='Output directory.')
  parser.add_argument('--splits', default=None,
                      metavar='{release,compute,DIR}',
                      help='Where the train/val/test split comes from: '
                      f'`{SPLITS_RELEASE}`, the release split (MSD-I: the '
                      '`set` column of MSD-I_dataset.tsv, the paper\'s; the '
                      f'msdi default); `{SPLITS_COMPUTE}`, an artist-filtered '
                      'split computed with --seed (80/10/10 MuMu, 70/15/15 '
                      'MSD-I; the mumu default, used only when no split '
                      'files are given); or a directory DIR (a directory '
                      'named like a keyword: ./release). DIR holds either '
                      'the authors\' split files as they ship, '
                      'items_index_{train,val,test}_<dataset>.tsv (MuMu: '
                      'the splits/ folder of zenodo 831189, the paper\'s '
                      'split; a set of album ids, which every modality '
                      'follows, and optionally one of track ids, which '
                      'audio follows; MSD-I: one set of track ids), or our '
                      'own items_index_{train,val,test}.tsv (e.g. from '
                      '`mmgenre splits`). Ids in no file, or in a file but '
                      'not in the corpus, are reported in skipped.tsv. The '
                      'manifest records splits_source release (the release '
                      'split or the authors\' files), computed or '
                      'directory.')
  parser.add_argument('--image-size', type=int,
                      default=prepare_job.DEFAULT_IMAGE_SIZE,
                      help='Side C of the network\'s square input crop '
                      f'(default {prepare_job.DEFAULT_IMAGE_SIZE}); covers are '
                      'stored at round(C * 256 / 224) px (256 for 224) so '
                      'that training can take random-resized crops, and '
                      'evaluation takes the centre C x C.')
  parser.add_argument('--shard-size', type=int,
                      default=prepare_job.DEFAULT_SHARD_SIZE,
                      help=f'Records per shard (default '
                      f'{prepare_job.DEFAULT_SHARD_SIZE}).')
  parser.add_argument('--enrichment', default=None,
                      help='mumu, catalog: entity dictionary '
                      '(entity<TAB>categories) to enrich review texts with '
                      '(semantic enrichment, paper Sec 3.3).')
  parser.add_argument('--workers', type=int, default=None,
                      help='Worker processes (default: all CPU cores; '
                      'unused with --beam_pipeline_options).')
  parser.add_argument(
      '--beam_pipeline_options', default=None, metavar='K=V,...',
      help='Run the preparation as one Apache Beam pipeline with these '
      'pipeline options, comma-separated (e.g. runner=DirectRunner,'
      'direct_num_workers=2,direct_running_mode=multi_processing, or a '
      'Dataflow/Flink/Spark runner\'s; a bare key is a boolean flag). The '
      'same shards, statistics and skipped.tsv as without it '
      '(input_pipeline/beam/prepare.py, docs/scale.md).')
  parser.add_argument(
      '--frontend', default=frontends.DEFAULT.name,
      choices=sorted(frontends.BY_NAME),
      help='The audio front end that computes the log-CQT patches and '
      f'windows (default {frontends.DEFAULT.name}: polyphase resampling and '
      f'the CQT in JAX; {frontends.LIBROSA_SOXR_HQ.name}: librosa, the '
      'features of shards with no recorded front end). The manifest '
      'records it; models trained on these shards are fed by it only.')
  parser.add_argument('--seed', type=int, default=0,
                      help='Audio crop seed, and split seed of --splits '
                      f'{SPLITS_COMPUTE} (default 0).')
  parser.add_argument('--min-albums', type=int, default=1,
                      help='mumu, catalog: keep labels on >= this many albums '
                      f'(the paper: {mumu.PAPER_MIN_ALBUMS}; default 1).')
  parser.add_argument('--no-windows', action='store_true',
                      help='Do not write the whole-track audio_windows '
                      'records (prediction windows, docs/fidelity.md; every '
                      'split); '
                      'faster and smaller, but whole-track evaluation and '
                      'extraction then cannot run on these shards.')
  parser.add_argument(
      '--max-skip-fraction', type=float,
      default=prepare_job.DEFAULT_MAX_SKIP_FRACTION,
      help='Fail (no manifest) when more than this fraction '
      'of the release rows, review lines or items of a '
      'modality are skipped; a few bad inputs are skipped '
      f'and reported in {layout.SKIPPED_TSV} (default '
      f'{prepare_job.DEFAULT_MAX_SKIP_FRACTION}; 1 never fails).')
  flags.add_progress_argument(parser)
  parser.add_argument('--force', action='store_true',
                      help='Prepare even when --out already holds a '
                      f'complete run with the same settings (its '
                      f'{layout.MANIFEST_JSON} records them).')
  flags.add_exit_statuses(
      parser, f'the shards and {layout.MANIFEST_JSON} are written (inputs '
      f'skipped within --max-skip-fraction are listed in '
      f'{layout.SKIPPED_TSV}), or --out already held them; the same with '
      '--beam_pipeline_options', '',
      'too many inputs skipped: more than --max-skip-fraction of a kind, or '
      'no usable training audio; no manifest, every skipped input in '
      f'{layout.SKIPPED_TSV}')


def _corpus_arg(args: argparse.Namespace) -> str:
  """The corpus: --manifest of a catalog, --data otherwise (ValueError
  naming the flag when the wrong one is given)."""
  if args.dataset == 'catalog':
    if args.manifest is None or args.data is not None:
      raise ValueError('--dataset catalog reads a catalog CSV: give '
                       '--manifest FILE (and no --data).')
    return args.manifest
  if args.data is None or args.manifest is not None:
    raise ValueError(f'--dataset {args.dataset} reads a corpus directory: '
                     'give --data DIR (--manifest is for --dataset catalog).')
  return args.data


def main(args: argparse.Namespace) -> int:
  try:
    data = _corpus_arg(args)
  except ValueError as e:
    return flags.fail('prepare', e)
  settings = prepare_job.Settings(
      splits=_SPLITS_KEYWORDS.get(args.splits, args.splits),
      image_size=args.image_size,
      shard_size=args.shard_size, enrichment=args.enrichment,
      workers=args.workers, seed=args.seed, min_albums=args.min_albums,
      windows=not args.no_windows, max_skip_fraction=args.max_skip_fraction,
      beam_pipeline_options=args.beam_pipeline_options,
      frontend=args.frontend)
  if not args.force and prepare_job.is_complete(
      args.out, prepare_job.run_args(args.dataset, data, args.out,
                                     settings)):
    print(f'[prepare] {args.out} already holds these shards '
          f'({layout.MANIFEST_JSON} complete, same settings), skipped')
    return 0
  try:
    manifest = prepare_job.prepare(args.dataset, data, args.out, settings,
                                   progress=not args.no_progress)
  except (OSError, ValueError) as e:
    return flags.fail('prepare', e)
  print(prepare_job.summary(manifest))
  print(f'Shards and manifest written to {args.out}')
  return 0

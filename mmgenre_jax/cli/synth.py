"""`mmgenre synth`: writes the deterministic synthetic corpus.

  mmgenre synth --out runs/data/synthetic --albums 500 --seed 0
  mmgenre synth --format catalog --out runs/data/catalog

--format release (the default) writes the MuMu and MSD-I release files, the
audio and the covers; --format catalog also writes the albums in the
generic catalog format beside them (OUT/catalog.csv, OUT/taxonomy.tsv, one
review text per album in OUT/reviews/; docs/data_formats.md §1.3), what
`mmgenre prepare --dataset catalog --manifest OUT/catalog.csv` reads.

Skips the work (one line, exit 0) when --out already holds the corpus these
settings would write (input_pipeline.synthetic.is_complete); --force writes it
again.
"""

import argparse
import pathlib
import time

from input_pipeline.formats import catalog
from input_pipeline import layout
from input_pipeline import synthetic
from mmgenre_jax.cli import flags


FORMATS = ('release', 'catalog')


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--out', required=True,
                      help='Output directory (new, empty, or an earlier '
                      'synthetic corpus, which is replaced).')
  parser.add_argument('--format', choices=FORMATS, default='release',
                      help='release: the MuMu / MSD-I release files; '
                      f'catalog: also {layout.CATALOG_CSV} and '
                      f'{layout.CATALOG_TAXONOMY_TSV} (default: '
                      '%(default)s).')
  parser.add_argument('--albums', type=int, default=500,
                      help='Number of albums (default: %(default)s).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Corpus seed (default: %(default)s).')
  parser.add_argument('--defects', type=int, default=0,
                      help='Broken inputs of each kind to include, listed '
                      'in defects.tsv (default: %(default)s).')
  parser.add_argument('--text-signal', type=float,
                      default=synthetic.DEFAULT_TEXT_SIGNAL,
                      help='Genre information in reviews, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--audio-signal', type=float,
                      default=synthetic.DEFAULT_AUDIO_SIGNAL,
                      help='Genre information in audio, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--image-signal', type=float,
                      default=synthetic.DEFAULT_IMAGE_SIGNAL,
                      help='Genre information in covers, 0-1 (default: '
                      '%(default)s).')
  parser.add_argument('--artist-signal', type=float,
                      default=synthetic.DEFAULT_ARTIST_SIGNAL,
                      help='Strength of each artist\'s fingerprint, 0-1 '
                      '(default: %(default)s).')
  parser.add_argument('--genres', nargs='+', default=None, metavar='GENRE',
                      help='Top-level genres to use (default: the 15 MSD-I '
                      'genres).')
  parser.add_argument('--workers', type=int, default=None,
                      help='Worker processes (default: all CPU cores).')
  flags.add_progress_argument(parser)
  parser.add_argument('--force', action='store_true',
                      help='Write the corpus even when --out already holds '
                      f'it ({layout.CORPUS_SUMMARY_JSON} matches these '
                      'settings).')


def main(args: argparse.Namespace) -> int:
  start = time.monotonic()
  # Everything that changes the corpus; workers and progress do not.
  settings = dict(
      num_albums=args.albums, seed=args.seed, defects=args.defects,
      text_signal=args.text_signal, audio_signal=args.audio_signal,
      image_signal=args.image_signal, artist_signal=args.artist_signal,
      genres=args.genres)
  if not args.force and synthetic.is_complete(args.out, **settings):
    print(f'[synth] {args.out} already holds this corpus '
          f'({layout.CORPUS_SUMMARY_JSON} matches), skipped')
    return _write_catalog(args)
  try:
    summary = synthetic.generate_corpus(
        args.out, **settings, workers=args.workers,
        progress=not args.no_progress)
  except (ValueError, FileExistsError, NotADirectoryError) as e:
    return flags.fail('synth', e)
  size = sum(p.stat().st_size for p in pathlib.Path(args.out).rglob('*')
             if p.is_file())
  sets = ', '.join(f'{name} {s["tracks"]}'
                   for name, s in summary['msdi_sets'].items())
  print(f'Wrote {summary["num_albums"]} albums, {summary["num_tracks"]} '
        f'tracks, {summary["num_artists"]} artists, {summary["num_labels"]} '
        f'labels, {summary["num_reviews"]} reviews to {args.out} '
        f'({size / 2**20:.1f} MiB, {time.monotonic() - start:.0f} s). '
        f'MSD-I tracks: {sets}.')
  return _write_catalog(args)


def _write_catalog(args: argparse.Namespace) -> int:
  """--format catalog: the corpus's albums as a catalog (cheap, so always
  rewritten)."""
  if args.format == 'catalog':
    path = catalog.write_from_mumu(args.out)
    print(f'Wrote the catalog {path} (and {layout.CATALOG_TAXONOMY_TSV}, '
          f'{layout.CATALOG_REVIEWS_DIR}/ beside it).')
  return 0

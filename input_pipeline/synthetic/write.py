"""Writes a synthetic corpus: album files in parallel, then the metadata.

generate_corpus draws the plan (plan.py), writes every album's audio and
cover in worker processes, then the MuMu, MSD-I and extra metadata files in
the layout of docs/data_formats.md §1 (names from input_pipeline.layout), and
corpus_summary.json last: is_complete tells from it whether a directory
already holds the corpus some settings would write.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import pathlib
import shutil
import sys
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import soundfile
import tqdm

from input_pipeline import layout
from input_pipeline.synthetic import audio
from input_pipeline.synthetic import covers
from input_pipeline.synthetic import draws
from input_pipeline.synthetic import items
from input_pipeline.synthetic import plan
from input_pipeline.synthetic import reviews
from input_pipeline.synthetic import taxonomy

# Bumped when the same seed would give a different corpus.
GENERATOR_VERSION = 1
# The 'generator' of corpus_summary.json.
_GENERATOR = 'input_pipeline.synthetic'

# Signal strengths: probability that a genre attribute follows the item's
# label. Text > audio > image in genre information, as in the paper
# (Table 6: TEXT 0.917 > AUDIO 0.888 > IMAGE 0.743 AUC). Text at 0.4: strong
# enough to lead the single modalities, weak enough that the text stage does
# not saturate and leave fusion nothing to add (the values tried:
# BENCHMARKS.md §6b).
DEFAULT_TEXT_SIGNAL = 0.4
DEFAULT_AUDIO_SIGNAL = 0.5
DEFAULT_IMAGE_SIGNAL = 0.4
# Strength of every artist's fingerprint (signature motif, emblem, name and
# pet words): strong enough that an artist in two splits inflates scores.
DEFAULT_ARTIST_SIGNAL = 0.7


# --- Files of one album (runs in a worker process) -------------------------


@dataclasses.dataclass(frozen=True)
class _AlbumTask:
  album: items.Album
  out_dir: str
  seed: int
  audio_signal: float
  image_signal: float
  artist_signal: float
  labels: Tuple[str, ...]
  empty_audio: Tuple[str, ...]
  corrupt_audio: Tuple[str, ...]
  corrupt_image: bool


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
  # The format's magic bytes, then garbage: recognised, but not decodable.
  keep = 12
  return data[:keep] + rng.bytes(max(4096, len(data) // 10))


def _write_album_files(task: _AlbumTask) -> int:
  """Writes the audio files and the cover of one album; returns bytes."""
  album = task.album
  out = pathlib.Path(task.out_dir)
  written = 0
  formats = {row[0]: row[2:] for row in plan.AUDIO_FORMATS}
  for position, track in enumerate(album.tracks):
    path = out / items.audio_path(track)
    if track.track_id in task.empty_audio:
      path.write_bytes(b'')
      continue
    rng = draws.item_rng(task.seed, draws.AUDIO, album.index, position)
    params = audio.draw_audio_params(track.label, rng, task.audio_signal,
                                     task.labels, album.artist,
                                     task.artist_signal)
    samples = audio.synthesize(params, sample_rate=track.sample_rate,
                               duration=track.duration,
                               channels=track.channels, rng=rng)
    buffer = io.BytesIO()
    file_format, subtype, options = formats[track.ext]
    soundfile.write(buffer, samples, track.sample_rate, format=file_format,
                    subtype=subtype, **options)
    data = buffer.getvalue()
    if track.track_id in task.corrupt_audio:
      data = _corrupt(data, rng)
    path.write_bytes(data)
    written += len(data)
  rng = draws.item_rng(task.seed, draws.IMAGE, album.index)
  params = covers.draw_image_params(album.cover_label, rng,
                                    task.image_signal, task.labels)
  image = covers.render_cover(params, album.artist, task.artist_signal,
                              album.cover_size, rng)
  path = out / items.cover_path(album)
  covers.save_cover(image, path, album.cover_mode, rng)
  if task.corrupt_image:
    path.write_bytes(_corrupt(path.read_bytes(), rng))
  return written + path.stat().st_size


# --- Metadata files --------------------------------------------------------

METADATA_FILES = (layout.MUMU_MULTI_LABEL_CSV, layout.MUMU_LABELS_TSV,
                  layout.MUMU_TAXONOMY_TSV, layout.REVIEWS_JSONL,
                  layout.MSDI_TSV, layout.ENRICHMENT_TSV, layout.DEFECTS_TSV,
                  layout.CORPUS_SUMMARY_JSON)
# What this generator owns inside an output directory.
# `mmgenre synth --format catalog` adds the catalog files (catalog.py).
CATALOG_FILES = (layout.CATALOG_CSV, layout.CATALOG_TAXONOMY_TSV)
OWNED_NAMES = (set(METADATA_FILES) | set(CATALOG_FILES) |
               {layout.AUDIO_DIR, layout.COVERS_DIR,
                layout.CATALOG_REVIEWS_DIR})


def _open_write(path: pathlib.Path):
  # '\n' line ends on every platform: the metadata must be byte-identical.
  return open(path, 'w', encoding='utf-8', newline='')


def write_mumu_csv(path: pathlib.Path, albums: Sequence[items.Album]) -> None:
  """One row per track, MuMu release columns; genres a quoted list."""
  with _open_write(path) as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(('amazon_id', 'album_mbid', 'MSD_track_id',
                     'recording_mbid', 'artist_mbid', 'genres'))
    for album in albums:
      for track in album.tracks:
        writer.writerow((album.amazon_id, album.mbid, track.track_id,
                         track.recording_mbid, album.artist.mbid,
                         ','.join(album.labels)))


def write_msdi_tsv(path: pathlib.Path, albums: Sequence[items.Album],
                   sets: Dict[int, str]) -> None:
  """MSD-I release format: a track's genre is its album's primary genre."""
  with _open_write(path) as f:
    f.write('msd_track_id\tgenre\talbum_index\tset\tmsd_artist_id\t'
            'image_url\n')
    for album in albums:
      for track in album.tracks:
        f.write(f'{track.track_id}\t{album.artist.primary}\t{album.index}\t'
                f'{sets[album.artist.index]}\t{album.artist.msd_id}\t'
                f'{items.cover_path(album)}\n')


def _write_lines(path: pathlib.Path, lines: Sequence[str]) -> None:
  with _open_write(path) as f:
    f.write(''.join(line + '\n' for line in lines))


def _prepare_out_dir(out: pathlib.Path) -> None:
  """Creates `out`, or clears a corpus this generator wrote there before."""
  if out.exists() and not out.is_dir():
    raise NotADirectoryError(f'--out {out} is a file; give a directory.')
  if out.exists():
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in OWNED_NAMES)
    if foreign:
      raise FileExistsError(
          f'--out {out} holds files this generator did not write '
          f'({", ".join(foreign[:5])}); give an empty or new directory, or '
          'the directory of an earlier synthetic corpus.')
    # The summary first: a corpus half cleared is never taken as complete.
    (out / layout.CORPUS_SUMMARY_JSON).unlink(missing_ok=True)
    for name in (layout.AUDIO_DIR, layout.COVERS_DIR,
                 layout.CATALOG_REVIEWS_DIR):
      if (out / name).is_dir():
        shutil.rmtree(out / name)
    for name in METADATA_FILES + CATALOG_FILES:
      (out / name).unlink(missing_ok=True)
  (out / layout.AUDIO_DIR).mkdir(parents=True)
  (out / layout.COVERS_DIR).mkdir()


def _pool_context():
  """fork when it is safe (fast, works from a notebook), else forkserver."""
  methods = multiprocessing.get_all_start_methods()
  # Forking a process that runs JAX, TF or torch threads can deadlock.
  threaded = any(name in sys.modules for name in ('jax', 'tensorflow',
                                                  'torch'))
  if 'fork' in methods and not threaded:
    return multiprocessing.get_context('fork')
  return multiprocessing.get_context(
      'forkserver' if 'forkserver' in methods else 'spawn')


def _check_signal(name: str, value: float) -> float:
  value = float(value)
  if not 0.0 <= value <= 1.0:
    raise ValueError(f'{name}={value} is out of range; signals are in [0, 1] '
                     '(0: no genre information, 1: every attribute follows '
                     'the genre).')
  return value


def generate_corpus(out_dir,
                    *,
                    num_albums: int = 500,
                    seed: int = 0,
                    defects: int = 0,
                    text_signal: float = DEFAULT_TEXT_SIGNAL,
                    audio_signal: float = DEFAULT_AUDIO_SIGNAL,
                    image_signal: float = DEFAULT_IMAGE_SIGNAL,
                    artist_signal: float = DEFAULT_ARTIST_SIGNAL,
                    genres: Optional[Sequence[str]] = None,
                    workers: Optional[int] = None,
                    progress: bool = True) -> dict:
  """Writes the synthetic corpus to `out_dir` (docs/data_formats.md §1).

  Args:
    out_dir: a new or empty directory, or one holding an earlier synthetic
      corpus (which is replaced).
    num_albums: albums to write (>= 1); ~3.5 tracks and ~5 reviews each.
    seed: the corpus; the same seed gives the same corpus.
    defects: K >= 0: K broken inputs of each kind in plan.DEFECT_KINDS,
      listed in defects.tsv.
    text_signal: genre information in the reviews, [0, 1].
    audio_signal: genre information in the audio, [0, 1].
    image_signal: genre information in the covers, [0, 1].
    artist_signal: strength of each artist's fingerprint, [0, 1].
    genres: top-level genres to use (default: the 15 MSD-I genres); the
      taxonomy and label list keep only these and their sub-genres.
    workers: processes writing audio and covers (default os.cpu_count());
      the corpus does not depend on it.
    progress: show a tqdm progress bar.

  Returns:
    The summary also written to corpus_summary.json: counts of albums,
    tracks, artists, labels, reviews and files, per format, per set, ...
  """
  num_albums, seed, defects = _checked_counts(num_albums, seed, defects)
  signals = {name: _check_signal(name, value) for name, value in (
      ('text_signal', text_signal), ('audio_signal', audio_signal),
      ('image_signal', image_signal), ('artist_signal', artist_signal))}
  genres = tuple(taxonomy.GENRES if genres is None else genres)
  unknown = [g for g in genres if g not in taxonomy.TAXONOMY]
  if unknown or not genres or len(set(genres)) != len(genres):
    raise ValueError(f'genres={list(genres)}: give distinct names among '
                     f'{list(taxonomy.GENRES)}.')
  workers = (os.cpu_count() or 1) if workers is None else int(workers)
  if workers < 1:
    raise ValueError(f'workers={workers}; use 1 or more processes.')
  out = pathlib.Path(out_dir)
  labels = tuple(taxonomy.labels_of(genres))

  artists, albums = plan.plan_corpus(seed, num_albums, genres)
  sets = plan.assign_sets(seed, artists, albums)
  broken = plan.choose_defects(seed, albums, defects)
  _prepare_out_dir(out)

  # Files first (the slow part, in parallel), metadata last.
  tasks = [_AlbumTask(
      album=album, out_dir=os.fspath(out), seed=seed,
      audio_signal=signals['audio_signal'],
      image_signal=signals['image_signal'],
      artist_signal=signals['artist_signal'], labels=labels,
      empty_audio=tuple(t.track_id for t in album.tracks
                        if t.track_id in broken['empty_audio']),
      corrupt_audio=tuple(t.track_id for t in album.tracks
                          if t.track_id in broken['corrupt_audio']),
      corrupt_image=album.amazon_id in broken['corrupt_image'])
           for album in albums]
  _write_media(tasks, workers, progress)

  write_mumu_csv(out / layout.MUMU_MULTI_LABEL_CSV, albums)
  _write_lines(out / layout.MUMU_LABELS_TSV, sorted(labels))
  _write_lines(out / layout.MUMU_TAXONOMY_TSV, ['label\tparent'] + [
      f'{label}\t{taxonomy.PARENT.get(label, "")}' for label in labels])
  num_reviews = _write_reviews(out / layout.REVIEWS_JSONL, albums, seed,
                               signals, labels,
                               set(broken['empty_reviews']))
  write_msdi_tsv(out / layout.MSDI_TSV, albums, sets)
  _write_lines(out / layout.ENRICHMENT_TSV, [
      f'{entity}\t{categories}' for genre in genres
      for entity, categories in reviews.ENTITIES[genre]])
  _write_defects(out / layout.DEFECTS_TSV, albums, broken)

  summary = _summary(albums, artists, sets, labels, genres, seed, defects,
                     signals, num_reviews)
  with _open_write(out / layout.CORPUS_SUMMARY_JSON) as f:
    f.write(json.dumps(summary, indent=2) + '\n')
  return summary


def _checked_counts(num_albums, seed, defects) -> Tuple[int, int, int]:
  if int(num_albums) < 1:
    raise ValueError(f'num_albums={num_albums}; write at least 1 album.')
  if int(seed) < 0:
    raise ValueError(f'seed={seed}; use a non-negative integer.')
  if int(defects) < 0:
    raise ValueError(f'defects={defects}; use 0 or more.')
  return int(num_albums), int(seed), int(defects)


def _write_media(tasks: Sequence['_AlbumTask'], workers: int,
                 progress: bool) -> None:
  """Every album's audio and cover files, in `workers` processes."""
  bar = tqdm.tqdm(total=len(tasks), desc='synth', unit='album',
                  disable=not progress)
  if workers == 1 or len(tasks) == 1:
    for task in tasks:
      _write_album_files(task)
      bar.update()
  else:
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=_pool_context()) as pool:
      for future in concurrent.futures.as_completed(
          [pool.submit(_write_album_files, task) for task in tasks]):
        future.result()
        bar.update()
  bar.close()


def _write_reviews(path: pathlib.Path, albums, seed: int, signals,
                   labels, empty_reviews) -> int:
  """reviews.jsonl, one JSON object a line; returns the number written."""
  num_reviews = 0
  with _open_write(path) as f:
    for album in albums:
      for review in reviews.make_reviews(
          album, draws.item_rng(seed, draws.TEXT, album.index),
          signals['text_signal'], signals['artist_signal'], labels,
          empty=album.amazon_id in empty_reviews):
        f.write(json.dumps(review, ensure_ascii=False) + '\n')
        num_reviews += 1
  return num_reviews


def _write_defects(path: pathlib.Path, albums, broken) -> None:
  """defects.tsv: kind, item id and path of every planted defect."""
  defect_rows = []
  tracks = {t.track_id: t for a in albums for t in a.tracks}
  by_id = {a.amazon_id: a for a in albums}
  for kind in plan.DEFECT_KINDS:
    for item in broken[kind]:
      if kind in ('empty_audio', 'corrupt_audio'):
        path_in_corpus = items.audio_path(tracks[item])
      elif kind == 'corrupt_image':
        path_in_corpus = items.cover_path(by_id[item])
      else:
        path_in_corpus = layout.REVIEWS_JSONL
      defect_rows.append(f'{kind}\t{item}\t{path_in_corpus}')
  _write_lines(path, ['kind\titem_id\tpath'] + defect_rows)


def is_complete(out_dir,
                *,
                num_albums: int = 500,
                seed: int = 0,
                defects: int = 0,
                text_signal: float = DEFAULT_TEXT_SIGNAL,
                audio_signal: float = DEFAULT_AUDIO_SIGNAL,
                image_signal: float = DEFAULT_IMAGE_SIGNAL,
                artist_signal: float = DEFAULT_ARTIST_SIGNAL,
                genres: Optional[Sequence[str]] = None) -> bool:
  """Whether `out_dir` holds the corpus generate_corpus would write there.

  corpus_summary.json is written last (and removed first when a corpus is
  replaced), so a directory whose summary has this generator version and
  these settings holds a finished corpus. The top-level genres are read from
  genre_taxonomy.tsv (the summary only counts them), and the audio and cover
  files are counted against the summary. Never raises: anything missing or
  unreadable is not complete.

  Args:
    out_dir: the directory to look at.
    num_albums, seed, defects, text_signal, audio_signal, image_signal,
      artist_signal, genres: the settings, as in generate_corpus (workers
      and progress do not change the corpus).

  Returns:
    True when generating again with these settings would write the same
    corpus.
  """
  out = pathlib.Path(out_dir)
  try:
    summary = json.loads((out / layout.CORPUS_SUMMARY_JSON).read_text(
        encoding='utf-8'))
    rows = [line.split('\t') for line in (
        out / layout.MUMU_TAXONOMY_TSV).read_text(
            encoding='utf-8').splitlines()[1:]]
    num_audio = sum(1 for _ in (out / layout.AUDIO_DIR).iterdir())
    num_covers = sum(1 for _ in (out / layout.COVERS_DIR).iterdir())
    expected = {
        'generator': _GENERATOR,
        'version': GENERATOR_VERSION,
        'seed': int(seed),
        'num_albums': int(num_albums),
        'defects_per_kind': int(defects),
        'signals': {'text_signal': float(text_signal),
                    'audio_signal': float(audio_signal),
                    'image_signal': float(image_signal),
                    'artist_signal': float(artist_signal)},
    }
    genres = tuple(taxonomy.GENRES if genres is None else genres)
  except (OSError, UnicodeDecodeError, ValueError, TypeError):
    return False
  if not isinstance(summary, dict) or any(
      summary.get(key) != value for key, value in expected.items()):
    return False
  top_level = tuple(row[0] for row in rows if len(row) == 2 and not row[1])
  files = summary.get('num_files')
  return (top_level == genres and isinstance(files, dict) and
          files.get('audio') == num_audio and
          files.get('covers') == num_covers and
          all((out / name).is_file() for name in METADATA_FILES))


def _summary(albums, artists, sets, labels, genres, seed, defects, signals,
             num_reviews) -> dict:
  tracks = [t for a in albums for t in a.tracks]

  def counts(values):
    return {str(k): v for k, v in sorted(collections.Counter(values).items())}

  per_set = {}
  for name, _ in plan.MSDI_SET_FRACTIONS:
    in_set = [a for a in albums if sets[a.artist.index] == name]
    per_set[name] = {
        'tracks': sum(len(a.tracks) for a in in_set),
        'albums': len(in_set),
        'artists': len({a.artist.index for a in in_set})}
  return {
      'generator': _GENERATOR,
      'version': GENERATOR_VERSION,
      'seed': seed,
      'num_albums': len(albums),
      'num_tracks': len(tracks),
      'num_artists': len(artists),
      'num_labels': len(labels),
      'num_top_level_genres': len(genres),
      'num_reviews': num_reviews,
      'num_files': {'audio': len(tracks), 'covers': len(albums),
                    'metadata': len(METADATA_FILES),
                    'total': len(tracks) + len(albums) + len(METADATA_FILES)},
      'signals': signals,
      'defects_per_kind': defects,
      'mean_labels_per_album': round(
          float(np.mean([len(a.labels) for a in albums])), 4),
      'audio_seconds': round(sum(t.duration for t in tracks), 3),
      'audio_formats': counts(t.ext for t in tracks),
      'sample_rates': counts(t.sample_rate for t in tracks),
      'channels': counts(t.channels for t in tracks),
      'cover_formats': counts(a.cover_ext for a in albums),
      'cover_modes': counts(a.cover_mode for a in albums),
      'msdi_sets': per_set,
      'albums_per_genre': counts(a.artist.primary for a in albums),
      'albums_per_label': counts(label for a in albums for label in a.labels),
  }

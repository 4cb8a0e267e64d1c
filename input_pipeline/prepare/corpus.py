"""What `mmgenre prepare` makes of every corpus: Items, and what it skips.

A corpus reader (release_items.py: MuMu, MSD-I; catalog_items.py: a catalog)
reads a corpus into a `Corpus`: for every modality and split, the Items to
turn into records, each with its labels and its input file, or why the file
is missing. Everything left out on the way goes to the `SkipLog`, the rows
of OUT/skipped.tsv: release rows that are malformed or repeat an item (stage
`metadata`: row_reporter), review lines that are malformed (`reviews`),
albums and tracks with no known label or in a split file but not in the
corpus (`labels`) or in no split file (`metadata`).
`Corpus.metadata` counts them, read = kept + skipped (`count`);
`skip_fractions` and `SkipBudget` are the --max-skip-fraction check over
them and the modalities:

  skips = prepare_corpus.SkipLog()
  corpus = release_items.load_mumu_corpus('runs/data/synthetic', skips=skips)
  budget = prepare_corpus.SkipBudget(0.2, corpus, 'OUT/skipped.tsv')
  budget.check(prepare_corpus.skip_fractions(corpus, skips), 'at the end')

No TensorFlow or JAX here.
"""

import collections
import csv
import dataclasses
import io
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from etils import epath

from input_pipeline import errors as input_errors
from input_pipeline import fileio
from input_pipeline import layout
from input_pipeline.formats import release_format

SKIPPED_COLUMNS = ('stage', 'split', 'item_id', 'path', 'reason')
# What the failure budget counts (skip_fractions keys), as an error names it.
BUDGET_KINDS = {'rows': 'rows of {metadata_file}',
                'review_lines': 'lines of {reviews_file}',
                'audio': 'audio files', 'image': 'covers',
                'text': 'album texts'}
AUDIO_EXTENSIONS = ('wav', 'flac', 'ogg', 'mp3')
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png')


class PrepareError(input_errors.InputError, RuntimeError):
  """The corpus cannot be prepared at all (not a per-item problem)."""


class TooManySkippedError(input_errors.InputsFailedError, PrepareError):
  """Too many inputs were skipped (SkipBudget, no usable training audio):
  every one was tried and is in skipped.tsv; no manifest is written."""


@dataclasses.dataclass(frozen=True)
class Item:
  """One record to make.

  Attributes:
    split: the split name.
    item_id: the id reported in skipped.tsv (track or album id).
    keys: the record's id keys (track_id and/or album_id).
    labels: label indices.
    path: the input file, or None when it is missing.
    missing: why `path` is None (names the files looked for).
    wanted: when `path` is None, the file (pattern) that was looked for.
  """
  split: str
  item_id: str
  keys: Dict[str, str]
  labels: List[int]
  path: Optional[str] = None
  missing: str = ''
  wanted: str = ''


@dataclasses.dataclass
class Corpus:
  """A corpus reduced to what prepare writes.

  Attributes:
    dataset: 'mumu', 'msdi' or 'catalog'.
    labels: the label vocabulary (record label indices point into it).
    splits: split name -> item ids (albums for MuMu, tracks for MSD-I).
    items: modality -> split -> Items, in split order.
    texts: MuMu only: album id -> its review texts.
    reviews_path: MuMu only: the reviews file, for skip reports.
    metadata_file: the release file (MuMu CSV, MSD-I TSV) name.
    metadata: what the release files held and kept, `count` dicts:
      `rows` (data rows of the release file), `albums` (MuMu, catalog) or
      `tracks` (MSD-I: the tracks of the rows kept), `review_lines` (MuMu).
    omitted: modality -> why it has no Items (a catalog without the
      column); `items` has no key for it.
    splits_source, splits_from: the manifest's, when the splits are the
      authors' files of a --splits DIR ('release'); '' otherwise (the
      manifest's follow from the `splits` argument).
    track_splits: MuMu with the authors' track-level set: split name ->
      the track ids of the audio Items; {} otherwise.
  """
  dataset: str
  labels: tuple
  splits: Dict[str, List[str]]
  items: Dict[str, Dict[str, List[Item]]]
  texts: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  reviews_path: str = ''
  metadata_file: str = ''
  metadata: Dict[str, Dict[str, int]] = dataclasses.field(
      default_factory=dict)
  omitted: Dict[str, str] = dataclasses.field(default_factory=dict)
  splits_source: str = ''
  splits_from: str = ''
  track_splits: Dict[str, List[str]] = dataclasses.field(
      default_factory=dict)


def count(what: str, read: int, kept: int, skipped: int) -> Dict[str, int]:
  """{read, kept, skipped}, checked: read = kept + skipped."""
  if read != kept + skipped:
    raise AssertionError(f'{what}: read {read} != kept {kept} + skipped '
                         f'{skipped}; this is a bug in prepare.')
  return {'read': read, 'kept': kept, 'skipped': skipped}


class SkipLog:
  """Rows of skipped.tsv, with counts per stage and split."""

  def __init__(self):
    self.rows: List[tuple] = []
    self.counts = collections.Counter()

  def add(self, stage: str, split: str, item_id: str, path, reason: str):
    # One line, no tabs; what cannot be written as UTF-8 (an id or a file
    # name with bytes that are not UTF-8) escaped as \xff, so that writing
    # skipped.tsv cannot fail on the very row it reports.
    reason = ' '.join(str(reason).split())
    self.rows.append((stage, split, *(release_format.printable(value) for
                                      value in (item_id, os.fspath(path or ''),
                                                reason))))
    self.counts[stage, split] += 1

  def add_missing(self, modality: str, item: 'Item') -> None:
    """The row of an item whose input file is missing (item.path None)."""
    self.add(modality, item.split, item.item_id, item.wanted, item.missing)

  def count(self, stage: str, split: Optional[str] = None) -> int:
    return sum(n for (st, sp), n in self.counts.items()
               if st == stage and (split is None or sp == split))

  def write(self, path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter='\t', lineterminator='\n',
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerow(SKIPPED_COLUMNS)
    writer.writerows(self.rows)
    fileio.write_atomic(path, buffer.getvalue().encode('utf-8'))


def find_file(directory: epath.Path, stem: str,
              extensions: Sequence[str]) -> Optional[epath.Path]:
  """directory/stem.ext for the first ext of `extensions` that exists."""
  for ext in extensions:
    for candidate in (ext, ext.upper()):
      path = directory / f'{stem}.{candidate}'
      # Not Path.is_file: an id of several KB (a damaged row) makes a name
      # too long to stat, which is no file, not an error.
      if fileio.is_file(path):
        return path
  return None


def row_reporter(skips: SkipLog, path) -> release_format.OnBadRow:
  """on_bad_row of a release file: a `metadata` row of skipped.tsv."""
  def report(item_id: str, line: int, reason: str) -> None:
    # One bad row must not stop the job: it is left out and reported.
    skips.add('metadata', '', item_id, path, f'line {line}: {reason}')
  return report


def skip_fractions(corpus: Corpus, skips: SkipLog, *,
                   missing_only: bool = False) -> Dict[str, Tuple[int, int]]:
  """What the failure budget counts: kind -> (skipped, read).

  Kinds are BUDGET_KINDS: the release file's rows, the review lines (MuMu)
  and the items of every modality (audio_windows are the audio tracks).

  Args:
    corpus: the corpus read.
    skips: the skip log.
    missing_only: count only the inputs known to be skipped before any
      feature is computed (for modalities: the missing files).
  """
  fractions = {}
  for kind in ('rows', 'review_lines'):
    if kind in corpus.metadata:
      counts = corpus.metadata[kind]
      fractions[kind] = counts['skipped'], counts['read']
  for modality, splits in corpus.items.items():
    items = [item for split_items in splits.values() for item in split_items]
    skipped = (sum(1 for item in items if item.path is None and item.wanted)
               if missing_only else skips.count(modality))
    fractions[modality] = skipped, len(items)
  return fractions


def report_missing(corpus: Corpus, skips: SkipLog) -> None:
  """Reports every missing input file, before (instead of) any feature."""
  for modality, splits in corpus.items.items():
    for items in splits.values():
      for item in items:
        if item.path is None and item.wanted:
          skips.add_missing(modality, item)


class SkipBudget:
  """The --max-skip-fraction check, with the names its error gives."""

  def __init__(self, limit: float, corpus: Corpus, report):
    """limit: the fraction; report: the skipped.tsv the error names."""
    self.limit = limit
    self.names = {kind: name.format(
        metadata_file=corpus.metadata_file,
        reviews_file=layout.REVIEWS_JSONL) for kind, name in
                  BUDGET_KINDS.items()}
    self.report = report

  def check(self, fractions: Mapping[str, Tuple[int, int]],
            when: str) -> None:
    """Raises a TooManySkippedError naming every kind over the budget."""
    over = {kind: (n, read) for kind, (n, read) in fractions.items()
            if read and n / read > self.limit}
    if not over:
      return
    shown = '; '.join(f'{n} of {read} {self.names[kind]} ({n / read:.1%})'
                      for kind, (n, read) in over.items())
    worst = max(n / read for n, read in over.values())
    raise TooManySkippedError(
        f'too many inputs are skipped: {shown}, more than '
        f'--max-skip-fraction {self.limit:g} of them; stopped {when}. '
        f'Every skipped input and the reason is in {self.report}. Fix those '
        'inputs (or check --data), or accept them with --max-skip-fraction '
        f'{math.ceil(worst * 100) / 100:g}.')

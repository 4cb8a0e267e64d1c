"""Where `mmgenre prepare` takes a corpus's splits from (--splits).

A corpus reader (release_items.py, catalog_items.py) is given `splits`: None
(the dataset's DEFAULT_SPLITS), RELEASE_SPLITS (the release file's own
split: MSD-I's `set` column, a catalog's `split` column), COMPUTED_SPLITS
(artist-filtered, with the seed: input_pipeline/formats/splits.py) or a
directory of items_index_*.tsv: our own, or the authors'
items_index_{split}_<dataset>.tsv as they ship, MuMu's paper split among
them (release_split_sets). splits_arg and checked_splits resolve and check
it, resolve_splits reads it, SplitOrigin names its files in skipped.tsv and
report_unsplit reports the items in none of them:

  splits = split_choice.checked_splits('mumu', None)   # 'computed'
  split_choice.splits_source(splits)                   # 'computed'

No TensorFlow or JAX here.
"""

import dataclasses
import os
from typing import Callable, Collection, Dict, List, Mapping, Optional

from input_pipeline.formats import catalog as catalog_lib
from input_pipeline.formats import splits as splits_lib
from input_pipeline.prepare import corpus as prepare_corpus

# Where the splits come from (`splits`, `mmgenre prepare --splits`): the
# release file's own split (MSD-I's `set` column), an artist-filtered split
# computed with the seed, or any other value: a directory of
# items_index_*.tsv (the authors' files in it are a `release` split too).
RELEASE_SPLITS = 'release'
COMPUTED_SPLITS = 'computed'
DIRECTORY_SPLITS = 'directory'  # Only as the manifest's splits_source.
# MSD-I's release file holds its split (the paper's); MuMu's file does not:
# its paper split ships as separate files (zenodo 831189), given with
# --splits DIR, so without them it is computed; a catalog's is its `split`
# column when it has one (splits_arg).
DEFAULT_SPLITS = {'mumu': COMPUTED_SPLITS, 'msdi': RELEASE_SPLITS}
# The kinds of ids a set of the authors' split files holds.
ALBUM_IDS = 'album'
TRACK_IDS = 'track'


def splits_arg(dataset: str, splits, data=None) -> str:
  """`splits` as recorded: RELEASE_SPLITS, COMPUTED_SPLITS or a directory.

  Args:
    dataset: 'mumu', 'msdi' or 'catalog'.
    splits: None (the dataset's DEFAULT_SPLITS; a catalog's: RELEASE_SPLITS
      when the CSV `data` has a `split` column, else COMPUTED_SPLITS),
      RELEASE_SPLITS, COMPUTED_SPLITS, or a directory of items_index_*.tsv
      (str or path; a directory named like a keyword is given as a path or
      './release').
    data: the corpus (a catalog: its CSV).
  """
  if splits is None:
    if dataset == 'catalog':
      return (RELEASE_SPLITS if data is not None and
              'split' in catalog_lib.header(data) else COMPUTED_SPLITS)
    return DEFAULT_SPLITS.get(dataset, COMPUTED_SPLITS)
  if isinstance(splits, str) and splits in (RELEASE_SPLITS, COMPUTED_SPLITS):
    return splits
  return os.fspath(splits)


def checked_splits(dataset: str, splits, data=None) -> str:
  """splits_arg(dataset, splits, data); a PrepareError when the dataset has
  no such split (the MuMu release file has no split column: its split is
  the authors' files, --splits DIR; a catalog without a `split` column has
  none either)."""
  splits = splits_arg(dataset, splits, data)
  if dataset == 'mumu' and splits == RELEASE_SPLITS:
    raise prepare_corpus.PrepareError(
        f'--splits {RELEASE_SPLITS}: the MuMu release file has no train/'
        'val/test column; the authors\' split (the paper\'s) ships as '
        'files: give --splits DIR, DIR holding their splits/'
        'items_index_{train,val,test}_<dataset>.tsv (zenodo 831189), or '
        'use --splits compute (the default: an artist-filtered 80/10/10 '
        'split with --seed) or --splits DIR of items_index_*.tsv from '
        '`mmgenre splits`.')
  if (dataset == 'catalog' and splits == RELEASE_SPLITS and data is not None
      and 'split' not in catalog_lib.header(data)):
    raise prepare_corpus.PrepareError(
        f'--splits {RELEASE_SPLITS}: {data} has no `split` column; add one '
        '(train, val or test per album), or use --splits compute (an '
        'artist-filtered 80/10/10 split with --seed, the default without '
        'the column) or --splits DIR.')
  return splits


def splits_source(splits: str) -> str:
  """The manifest's `splits_source` of a splits_arg: release, computed or
  directory (a Corpus read from the authors' files says `release` itself:
  Corpus.splits_source)."""
  if splits in (RELEASE_SPLITS, COMPUTED_SPLITS):
    return splits
  return DIRECTORY_SPLITS


def resolve_splits(computed: Callable[[], Dict[str, List[str]]],
                    splits: str, release=None) -> Dict[str, List[str]]:
  """The splits named by a splits_arg; release: the release split's reader."""
  if splits == COMPUTED_SPLITS:
    return computed()
  if splits == RELEASE_SPLITS:
    return release()
  return splits_lib.read_splits(splits)


@dataclasses.dataclass(frozen=True)
class SplitOrigin:
  """Where split ids came from, as the rows of skipped.tsv name it.

  Attributes:
    splits: the splits_arg (a keyword or the directory).
    split_set: the authors' set the ids are of; None: our own files (the
      rows name the directory and 'the split files', as they always have).
  """
  splits: str
  split_set: Optional[splits_lib.SplitSet] = None

  def path(self, split: Optional[str] = None) -> str:
    """The path column of an id of `split` (None: of an id in no file)."""
    if self.split_set is None:
      return self.splits
    if split is None:
      return os.path.join(self.splits, self.split_set.files)
    return os.fspath(self.split_set.paths[split])

  def files(self, split: Optional[str] = None) -> str:
    """How a reason names the file of `split` (None: all the files)."""
    if self.split_set is None:
      return 'the split files'
    if split is None:
      return self.split_set.files
    return self.split_set.paths[split].name


def release_split_sets(splits: str, kinds: Mapping[str, Collection[str]]
                       ) -> Dict[str, splits_lib.SplitSet]:
  """The authors' split files of a --splits DIR, by the ids they hold.

  Each set (items_index_{train,val,test}_<suffix>.tsv) is of the kind of
  which it holds corpus ids (MuMu: the album-level set holds album ids, the
  track-level set track ids), whatever its suffix.

  Args:
    splits: a splits_arg; only a directory can hold the authors' files.
    kinds: ALBUM_IDS / TRACK_IDS -> the corpus ids of that kind; the first
      kind's set is required.

  Returns:
    kind -> its set; {} when `splits` holds none (a keyword, or our own
    items_index_{split}.tsv).

  Raises:
    PrepareError: naming the files, when a set holds ids of no kind or of
      two, two sets hold one kind, the first kind has none, or the directory
      holds our own split files too.
    DataFormatError: a set lacks a split, or repeats an id (file and line).
  """
  if splits in (RELEASE_SPLITS, COMPUTED_SPLITS):
    return {}
  sets = splits_lib.release_sets(splits)
  if not sets:
    return {}
  own = [splits_lib.split_file(splits, name).name
         for name in splits_lib.SPLIT_NAMES
         if splits_lib.split_file(splits, name).is_file()]
  if own:
    raise prepare_corpus.PrepareError(
        f'--splits {splits} holds the authors\' split files '
        f'({", ".join(s.files for s in sets)}) and our own '
        f'({", ".join(own)}); which split is meant? Keep one kind of file '
        'in the directory.')
  by_kind = {}
  for split_set in sets:
    kind = _kind_of(splits, split_set, kinds)
    if kind in by_kind:
      raise prepare_corpus.PrepareError(
          f'--splits {splits}: {by_kind[kind].files} and {split_set.files} '
          f'both hold {kind} ids; give one set of {kind} ids.')
    by_kind[kind] = split_set
  first = next(iter(kinds))
  if first not in by_kind:
    raise prepare_corpus.PrepareError(
        f'--splits {splits}: {", ".join(s.files for s in sets)} hold '
        f'{" and ".join(by_kind)} ids but no set holds {first} ids; the '
        f'{first}-level set (items_index_{{train,val,test}}_<dataset>.tsv '
        f'of {first} ids) is needed.')
  return by_kind


def _kind_of(splits: str, split_set: splits_lib.SplitSet,
             kinds: Mapping[str, Collection[str]]) -> str:
  """The one kind of corpus ids split_set holds (else a PrepareError)."""
  ids = [i for items in split_set.splits.values() for i in items]
  held = {kind: sum(1 for i in ids if i in known)
          for kind, known in kinds.items()}
  matched = [kind for kind, n in held.items() if n]
  if len(matched) == 1:
    return matched[0]
  found = ' and '.join(f'{n} {kind} ids' for kind, n in held.items() if n)
  raise prepare_corpus.PrepareError(
      f'--splits {splits}: {split_set.files} holds '
      f'{found or "none of the corpus ids"} (of {len(ids)} ids); a set of '
      f'the authors\' files holds {" or ".join(kinds)} ids of this corpus '
      'only. Is it the split of this corpus?')


def report_unsplit(skips: prepare_corpus.SkipLog, ids, split_of, release,
                   splits_dir, what: str, files: str = 'the split files'
                   ) -> int:
  """Reports the release file's items in no split file; returns how many.

  files: how the reason names the split files (SplitOrigin.files).
  """
  unsplit = [i for i in ids if i not in split_of]
  for item_id in unsplit:
    skips.add('metadata', '', item_id, splits_dir,
              f'{what} is in {release} but in none of {files}, so '
              'it is not prepared; add it to a split file to use it')
  return len(unsplit)

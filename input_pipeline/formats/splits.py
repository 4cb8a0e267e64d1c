"""Artist-filtered train/val/test splits (Oramas et al. 2018, Secs. 6.1, 7.3).

The paper splits MuMu 80/10/10 by album and MSD-I 70/15/15 by track, with no
artist and no album in two splits, so that a classifier cannot score by
recognising the artist. Items that share any artist or album (an album whose
tracks name several artists, an artist with several albums) form one
connected component, and components, not items, are assigned to splits.

MSD-I also ships the authors' split, its `set` column
(msdi.MSDIDataset.release_splits): `mmgenre prepare` uses that by default,
and these functions only with `--splits compute`. MuMu's split (the paper's)
ships as separate files, `splits/items_index_{train,val,test}_<dataset>.tsv`
of the authors' data (zenodo 831189): release_sets reads them as shipped
for `mmgenre prepare --splits DIR`; without them prepare computes one here.

  mmgenre splits --dataset mumu --metadata MuMu_dataset_multi-label.csv \
      --labels genre_labels_MuMu.tsv --out splits/ --seed 0

writes splits/items_index_{train,val,test}.tsv, one id per line (the command
line is mmgenre_jax/cli/splits.py).
"""

import dataclasses
import re
from typing import Dict, List, Mapping, Sequence

from etils import epath
import numpy as np

from input_pipeline import fileio
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format

SPLIT_NAMES = ('train', 'val', 'test')
# MuMu: 80/10/10 by album (paper Sec. 7.3).
MUMU_PROPORTIONS = (0.8, 0.1, 0.1)
# MSD-I: 70/15/15 by track (paper Sec. 6.1).
MSDI_PROPORTIONS = (0.7, 0.15, 0.15)
# A component larger than this fraction of the smallest split's target would
# overshoot that split on its own, so it goes to the largest split (train)
# before the others are dealt out.
HUGE_COMPONENT_FRACTION = 0.5
# MusicBrainz 'Various Artists'. It is kept as an artist like any other, so
# compilations form one large component that goes to train (297 of the 2,321
# albums of the genuine single-label file): the no-shared-artist rule holds
# literally.
VARIOUS_ARTISTS_MBID = '89ad4ac3-39f7-470e-963a-56509c546377'
# Prefix of the group keys that are artists (counted in summaries).
ARTIST_KEY = 'artist:'


# Our split files: items_index_{split}.tsv. `mmgenre prepare` writes the
# track-level split it used (the authors' MuMu track set) beside them as
# tracks_index_{split}.tsv, a name no --splits DIR reads as the authors'.
ITEMS_PREFIX = 'items_index'
TRACKS_PREFIX = 'tracks_index'
# The authors' split files (zenodo 831189 `splits/`): the split, then the
# dataset the set is of, as shipped (e.g. items_index_train_mumu.tsv).
RELEASE_FILE = re.compile(r'items_index_(train|val|test)_(.+)\.tsv')


def split_file(split_dir, name: str,
               prefix: str = ITEMS_PREFIX) -> epath.Path:
  return epath.Path(split_dir) / f'{prefix}_{name}.tsv'


@dataclasses.dataclass(frozen=True)
class SplitSet:
  """One set of the authors' split files and the ids they hold.

  Attributes:
    suffix: the dataset suffix of items_index_{split}_<suffix>.tsv.
    paths: split name -> its file, for every name in SPLIT_NAMES.
    splits: split name -> item ids, in file order.
  """
  suffix: str
  paths: Dict[str, epath.Path]
  splits: Dict[str, List[str]]

  @property
  def files(self) -> str:
    """Its file names as one: items_index_{train,val,test}_<suffix>.tsv."""
    return f'items_index_{{{",".join(SPLIT_NAMES)}}}_{self.suffix}.tsv'


def _check_proportions(proportions: Sequence[float]) -> np.ndarray:
  p = np.asarray(proportions, np.float64)
  if (p.shape != (len(SPLIT_NAMES),) or np.any(p < 0) or
      not np.isclose(p.sum(), 1.0) or p[0] <= 0):
    raise ValueError(
        f'proportions must be {len(SPLIT_NAMES)} non-negative numbers for '
        f'{SPLIT_NAMES} summing to 1 with train > 0, got {list(proportions)}.')
  return p


def connected_components(
    item_groups: Mapping[str, Sequence[str]]) -> List[List[str]]:
  """Groups items that share a group key, directly or through other items.

  Args:
    item_groups: item id -> its group keys.

  Returns:
    The components, each a list of item ids in input order, ordered by their
    first item's input position.
  """
  items = list(item_groups)
  parent = list(range(len(items)))

  def find(i):
    while parent[i] != i:
      parent[i] = parent[parent[i]]  # Path halving keeps the trees flat.
      i = parent[i]
    return i

  first_with_key = {}
  for i, item in enumerate(items):
    for key in item_groups[item]:
      j = first_with_key.setdefault(key, i)
      root_i, root_j = find(i), find(j)
      if root_i != root_j:
        parent[max(root_i, root_j)] = min(root_i, root_j)
  components = {}
  for i, item in enumerate(items):
    components.setdefault(find(i), []).append(item)
  return list(components.values())


def artist_filtered_split(item_groups: Mapping[str, Sequence[str]],
                          proportions: Sequence[float],
                          seed: int = 0) -> Dict[str, List[str]]:
  """Splits items so that no group key is in two splits.

  Components are shuffled by `seed`; components too big for the smaller
  splits go to train first, then each component goes to the split that is
  least filled relative to its target, so every split ends near its target
  count (within about one component).

  Args:
    item_groups: item id -> the group keys it belongs to (its artists and
      its album). Items sharing any key end up in the same split.
    proportions: target fractions of items for SPLIT_NAMES; sum to 1.
    seed: shuffling seed; the result is a pure function of the inputs.

  Returns:
    split name -> item ids, in input order.
  """
  p = _check_proportions(proportions)
  components = connected_components(item_groups)
  n_items = len(item_groups)
  targets = p * n_items
  order = np.random.default_rng(seed).permutation(len(components))
  positive = targets[targets > 0]
  # Single items are never 'huge': tiny inputs must still fill every split.
  huge = max(1.0, HUGE_COMPONENT_FRACTION * positive.min()) if n_items else 1
  big = [c for c in order if len(components[c]) > huge]
  rest = [c for c in order if len(components[c]) <= huge]
  train = int(np.argmax(p))

  counts = np.zeros(len(SPLIT_NAMES))
  assignment = {}
  for c in big:
    assignment[c] = train
    counts[train] += len(components[c])
  open_splits = np.flatnonzero(targets > 0)
  for c in rest:
    size = len(components[c])
    # The least-filled split takes the component whatever its size, so that
    # multi-album artists are not steered towards the big split. argmin
    # takes the first of equal fills: ties go to the earlier split.
    fill = counts[open_splits] / targets[open_splits]
    split = open_splits[int(np.argmin(fill))]
    assignment[c] = split
    counts[split] += size

  position = {item: i for i, item in enumerate(item_groups)}
  splits = {name: [] for name in SPLIT_NAMES}
  for c, split in assignment.items():
    splits[SPLIT_NAMES[split]].extend(components[c])
  for name in SPLIT_NAMES:
    splits[name].sort(key=position.__getitem__)
  return splits


def mumu_item_groups(dataset: mumu.MuMuDataset) -> Dict[str, List[str]]:
  """album_id -> its artists, release group (album_mbid) and tracks."""
  groups = {}
  for album in dataset.albums.values():
    keys = [ARTIST_KEY + a for a in album.artist_ids]
    # Two Amazon products of one release group, or sharing a track, are
    # the same album for the no-album-overlap rule.
    if album.album_mbid:
      keys.append('album:' + album.album_mbid)
    keys.extend('track:' + t for t in album.track_ids)
    groups[album.album_id] = keys
  return groups


def msdi_item_groups(dataset: msdi.MSDIDataset) -> Dict[str, List[str]]:
  """track_id -> its artist and album."""
  groups = {}
  for track in dataset.tracks.values():
    keys = []
    if track.artist_id:
      keys.append(ARTIST_KEY + track.artist_id)
    if track.album_index:
      keys.append('album:' + track.album_index)
    groups[track.track_id] = keys
  return groups


def mumu_splits(dataset: mumu.MuMuDataset,
                seed: int = 0) -> Dict[str, List[str]]:
  """80/10/10 artist-filtered split of MuMu albums: name -> album ids."""
  return artist_filtered_split(mumu_item_groups(dataset), MUMU_PROPORTIONS,
                               seed)


def msdi_splits(dataset: msdi.MSDIDataset,
                seed: int = 0) -> Dict[str, List[str]]:
  """70/15/15 artist- and album-filtered split of MSD-I: name -> track ids."""
  return artist_filtered_split(msdi_item_groups(dataset), MSDI_PROPORTIONS,
                               seed)


def overlapping_keys(splits: Mapping[str, Sequence[str]],
                     item_groups: Mapping[str, Sequence[str]]
                    ) -> Dict[str, List[str]]:
  """Group keys found in more than one split: key -> split names."""
  where = {}
  for name, items in splits.items():
    for item in items:
      for key in item_groups[item]:
        where.setdefault(key, set()).add(name)
  return {key: sorted(names) for key, names in where.items()
          if len(names) > 1}


def summarize(splits: Mapping[str, Sequence[str]],
              item_groups: Mapping[str, Sequence[str]]) -> str:
  """One line per split: items and artists, with their percentages."""
  artists = {
      name: {k for item in items for k in item_groups[item]
             if k.startswith(ARTIST_KEY)} for name, items in splits.items()}
  n_items = max(sum(len(items) for items in splits.values()), 1)
  n_artists = max(sum(len(a) for a in artists.values()), 1)
  lines = []
  for name in SPLIT_NAMES:
    items = splits.get(name, ())
    lines.append(
        f'{name:>5}: {len(items):7d} items ({100 * len(items) / n_items:5.1f}'
        f'%), {len(artists.get(name, ())):7d} artists '
        f'({100 * len(artists.get(name, ())) / n_artists:5.1f}%)')
  return '\n'.join(lines)


def _check_ids(splits: Mapping[str, Sequence[str]]) -> None:
  seen = {}
  for name in SPLIT_NAMES:
    if name not in splits:
      raise ValueError(f'splits has no {name!r} entry; it needs all of '
                       f'{SPLIT_NAMES}.')
    for item in splits[name]:
      if not item or item != item.strip() or '\t' in item or '\n' in item:
        raise ValueError(f'item id {item!r} in split {name!r} is empty or has '
                         'whitespace at its ends, a tab or a newline.')
      if item in seen:
        raise ValueError(f'item {item!r} is in split {seen[item]!r} and in '
                         f'split {name!r}; every item must be in one split.')
      seen[item] = name


def write_splits(splits: Mapping[str, Sequence[str]], out_dir,
                 prefix: str = ITEMS_PREFIX) -> None:
  """Writes out_dir/items_index_{train,val,test}.tsv, one id per line.

  Each file is written to a temporary file in out_dir and then renamed, so a
  reader never sees a half-written list.

  Args:
    splits: split name -> item ids, for every name in SPLIT_NAMES.
    out_dir: the directory (created if needed).
    prefix: the files' prefix (TRACKS_PREFIX: tracks_index_{split}.tsv).
  """
  _check_ids(splits)
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for name in SPLIT_NAMES:
    path = split_file(out_dir, name, prefix)
    fileio.write_atomic(
        path, ''.join(f'{item}\n' for item in splits[name]).encode('utf-8'))


def read_splits(split_dir) -> Dict[str, List[str]]:
  """Reads split_dir/items_index_{train,val,test}.tsv.

  Args:
    split_dir: a directory written by write_splits (or `mmgenre splits`).

  Returns:
    split name -> item ids, in file order.
  """
  return _read_files({name: split_file(split_dir, name)
                      for name in SPLIT_NAMES}, split_dir)


def release_sets(split_dir) -> List[SplitSet]:
  """Reads the authors' split files of split_dir, as they ship.

  The authors' data (zenodo 831189, `splits/`) names them
  items_index_{train,val,test}_<dataset>.tsv, one id per line, a set per
  dataset suffix (MuMu: one of album ids, one of track ids). A set lacking a
  split is an error naming its files; an id in two files of one set is an
  error naming the file and line.

  Args:
    split_dir: the directory; a path that is no directory holds no set.

  Returns:
    One SplitSet per suffix, sorted by suffix; [] when there is none.
  """
  split_dir = epath.Path(split_dir)
  if not split_dir.is_dir():
    return []
  found = {}
  for path in sorted(split_dir.iterdir()):
    match = RELEASE_FILE.fullmatch(path.name)
    if match and path.is_file():
      found.setdefault(match[2], {})[match[1]] = path
  sets = []
  for suffix, paths in sorted(found.items()):
    missing = [split_file(split_dir, f'{name}_{suffix}').name
               for name in SPLIT_NAMES if name not in paths]
    if missing:
      raise release_format.format_error(
          split_dir, None, f'{" and ".join(missing)} not found beside '
          f'{", ".join(sorted(p.name for p in paths.values()))}; the '
          f'authors\' split of {suffix!r} is the three files '
          f'{SplitSet(suffix, {}, {}).files}.')
    paths = {name: paths[name] for name in SPLIT_NAMES}
    sets.append(SplitSet(suffix, paths, _read_files(paths, split_dir)))
  return sets


def _read_files(paths: Mapping[str, epath.Path],
                split_dir) -> Dict[str, List[str]]:
  """split name -> the ids of its file, no id in two of the files."""
  splits = {}
  seen = {}
  for name in SPLIT_NAMES:
    path = paths[name]
    if not path.exists():
      raise FileNotFoundError(
          f'{path} not found; write the splits with `mmgenre splits '
          f'--dataset ... --metadata ... --out {split_dir}`.')
    items = []
    with release_format.open_text(path) as f:
      for line_number, line, _ in release_format.text_lines(f):
        item = line.strip()
        if not item:
          continue
        # The files decide every item's split: a bad id is an error, not a
        # line left out (docs/data_formats.md §1.4).
        reason = release_format.bad_text(item)
        if reason is not None:
          raise release_format.format_error(path, line_number, reason + '.')
        if '\t' in item:
          raise release_format.format_error(
              path, line_number,
              f'{item!r} has a tab; expected one id per line.')
        if item in seen:
          raise release_format.format_error(
              path, line_number, f'{item!r} is already in '
              f'{seen[item][0]} line {seen[item][1]}; every item must be in '
              'one split.')
        seen[item] = (path.name, line_number)
        items.append(item)
    splits[name] = items
  return splits

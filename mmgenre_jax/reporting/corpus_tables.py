"""Tables 1 and 4 of the paper: how the prepared corpus's genres spread.

Table 1 (Sec 6.1): MSD-I instances per genre in train / val / test and each
genre's share of the whole. Table 4 (Sec 7.1.1): the ten most and the ten
least represented MuMu genres and the percentage of albums carrying each.
Both are counted from the labels the stages saved with their
representations (every item of every split, nothing is trained), with the
paper's values beside ours (paper.PAPER_TABLE1, paper.PAPER_TABLE4).

  table = corpus_tables.table1([figure_inputs.Pipeline.read('runs/msdi')])
  table.data['rows'][0]   # {'genre': 'Blues', 'train': 41, ..., 'paper': ...}
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmgenre_jax.data import representations
from mmgenre_jax.pipelines import definition
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import paper
from mmgenre_jax.reporting import sections

# How many genres each list of Table 4 holds (Sec 7.1.1: "top 10").
TABLE4_SIZE = 10
# The datasets of each table: MSD-I (Table 1); MuMu or a catalog prepared
# as MuMu (Table 4; the paper's values only beside MuMu).
TABLE1_DATASETS = ('msdi',)
TABLE4_DATASETS = ('mumu', 'catalog')


# ------------------------------------------------------------- the inputs


def _pipelines_of(pipelines: Sequence[figure_inputs.Pipeline],
                  datasets: Sequence[str], table: str
                  ) -> List[figure_inputs.Pipeline]:
  """The pipelines of `datasets`, in the order given; MissingInput if none."""
  found = [p for p in pipelines if p.info.get('dataset') in datasets]
  if not found:
    raise figure_inputs.MissingInput(
        f'{table} needs a pipeline workdir of dataset '
        f'{" or ".join(map(repr, datasets))}; none of '
        f'{[str(p.workdir) for p in pipelines]} is one.')
  return found


def _all_splits(pipeline: figure_inputs.Pipeline, stage
                ) -> Optional[Dict[str, Dict[str, np.ndarray]]]:
  """split -> the stage's representations file, or None if one is missing."""
  try:
    return {split: pipeline.scored(stage, split)
            for split in representations.SPLITS}
  except figure_inputs.MissingInput:
    return None


def _shard_stages(pipeline: figure_inputs.Pipeline) -> List[Dict[str, Any]]:
  """Trained stages reading the shards (lowest seed), the audio one first.

  A network trained on the shards has every item of its modality's shards
  in its representations; the audio network's rows are tracks on MSD-I
  (the cover network's may be albums), hence first.
  """
  stages = pipeline.stages(lambda s: definition.recorded_reads_shards(s) and
                           definition.recorded_scores_labels(s))
  return sorted(stages, key=lambda s: list(s['outputs']) != ['audio'])


# ----------------------------------------------------------------- Table 1


def split_counts(labels: np.ndarray, num_labels: int) -> np.ndarray:
  """Items per label of one split.

  Args:
    labels: int [N] class ids (single-label) or {0, 1} [N, L] multi-hot.
    num_labels: L.

  Returns:
    int64 [L] the number of items carrying each label.
  """
  labels = np.asarray(labels)
  if labels.ndim == 1:
    return np.bincount(labels.astype(np.int64), minlength=num_labels)
  return (labels > 0).sum(axis=0).astype(np.int64)


def _unique_rows(data: Mapping[str, np.ndarray]) -> np.ndarray:
  """Labels [N', ...] of the first row of each id (an item counts once)."""
  _, first = np.unique(data['ids'], return_index=True)
  return np.asarray(data['labels'])[np.sort(first)]


def _percent(count: float, total: float) -> float:
  return 100.0 * count / total if total else 0.0


def _table1_rows(names: Sequence[str], counts: Mapping[str, np.ndarray]
                 ) -> List[Dict[str, Any]]:
  """Table 1's rows: the paper's genres in its order, then any others.

  Args:
    names: the L label names of the representations.
    counts: split -> int [L] items per label.

  Returns:
    One dict per genre: genre, train, val, test, total, percent (of all
    items of the three splits) and paper ({train, val, test, percent} from
    paper.PAPER_TABLE1, None for a genre the paper lacks). A paper genre
    missing from `names` has None counts.
  """
  total = sum(int(c.sum()) for c in counts.values())
  order = list(paper.PAPER_TABLE1) + sorted(
      n for n in names if n not in paper.PAPER_TABLE1)
  rows = []
  for genre in order:
    row: Dict[str, Any] = {'genre': genre}
    if genre in names:
      j = list(names).index(genre)
      for split in representations.SPLITS:
        row[split] = int(counts[split][j])
      row['total'] = sum(row[s] for s in representations.SPLITS)
      row['percent'] = _percent(row['total'], total)
    else:
      row.update({s: None for s in representations.SPLITS},
                 total=None, percent=None)
    values = paper.PAPER_TABLE1.get(genre)
    row['paper'] = (None if values is None else
                    dict(zip(('train', 'val', 'test', 'percent'), values)))
    rows.append(row)
  return rows


def _cell(value, digits: int = 2) -> str:
  if value is None:
    return '—'
  return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def _table1_lines(rows: List[Dict[str, Any]], totals: Dict[str, int],
                  unit: str, source: str) -> List[str]:
  """Markdown of Table 1: ours, then the paper's, per genre."""
  lines = [f'{unit.capitalize()} per genre in each split of the prepared '
           f'data ({source}), ours beside the paper\'s '
           f'{paper.TABLE1_SOURCE}; % is the genre\'s share of all three '
           'splits.', '',
           '| Genre | Train | Val | Test | % | Paper train | Paper val | '
           'Paper test | Paper % |',
           '|---|---|---|---|---|---|---|---|---|']
  for row in rows:
    ours = [row[s] for s in representations.SPLITS] + [row['percent']]
    theirs = ([None] * 4 if row['paper'] is None else
              [row['paper'][k] for k in ('train', 'val', 'test', 'percent')])
    lines.append('| ' + ' | '.join([row['genre']] + [
        _cell(v) for v in ours + theirs]) + ' |')
  paper_sums = [sum(v[i] for v in paper.PAPER_TABLE1.values())
                for i in range(3)]
  lines.append('| **Total** | ' + ' | '.join(
      [str(totals[s]) for s in representations.SPLITS] + ['100.00'] +
      [str(n) for n in paper_sums] + ['—']) + ' |')
  lines += ['', f'The paper\'s rows sum to {sum(paper_sums):,} tracks, not '
            'the 30,713 of its Sec 6.1 text; its percentages are of the '
            f'{sum(paper_sums):,}.']
  return lines


def table1(pipelines: Sequence[figure_inputs.Pipeline]) -> sections.Table:
  """Table 1 (Sec 6.1): MSD-I instances per genre in train / val / test.

  Counted from the saved representations of a trained stage of the msdi
  pipeline that reads the shards (the audio network first: its rows are
  tracks, one per track of the shards), lowest seed, all three splits
  extracted; each id counts once. These files hold every prepared item's
  label (the shards' splits/ files hold ids only), and their per-split
  totals are the shards' manifest split_sizes. The first msdi pipeline of
  `pipelines` with such a stage is used.

  Args:
    pipelines: the pipeline workdirs of a report.

  Returns:
    The section; data: {'workdir', 'stage', 'unit' ('tracks', or 'albums'
    where the stage's rows are albums), 'rows': [{'genre', 'train', 'val',
    'test', 'total', 'percent', 'paper'}] in the paper's genre order,
    'totals': {'train', 'val', 'test', 'total'}}.

  Raises:
    figure_inputs.MissingInput: no msdi pipeline, or none with a trained
      shard-reading stage whose three splits are extracted with labels.
  """
  for pipeline in _pipelines_of(pipelines, TABLE1_DATASETS, 'Table 1'):
    for stage in _shard_stages(pipeline):
      splits = _all_splits(pipeline, stage)
      if splits is not None:
        return _table1(pipeline, stage, splits)
  raise figure_inputs.MissingInput(
      'Table 1: no msdi pipeline has a trained network stage with its '
      'train, val and test representations extracted (--mode=extract '
      '--split=all).')


def _table1(pipeline: figure_inputs.Pipeline, stage,
            splits: Mapping[str, Mapping[str, np.ndarray]]
            ) -> sections.Table:
  where = pipeline.stage_dir(stage)
  names = figure_inputs.label_names(splits['train'], where)
  counts = {split: split_counts(_unique_rows(data), len(names))
            for split, data in splits.items()}
  totals = {split: int(c.sum()) for split, c in counts.items()}
  totals['total'] = sum(totals.values())
  track_level = any(np.any(d['ids'] != d['album_ids'])
                    for d in splits.values())
  unit = 'tracks' if track_level else 'albums'
  rows = _table1_rows(names, counts)
  source = f'`{pipeline.workdir.name}/{stage["name"]}` representations'
  return sections.Table(
      title='Table 1 (Sec 6.1): MSD-I instances per genre',
      lines=_table1_lines(rows, totals, unit, source),
      data={'workdir': str(pipeline.workdir), 'stage': stage['name'],
            'unit': unit, 'rows': rows, 'totals': totals})


# ----------------------------------------------------------------- Table 4


def album_counts(labels: Mapping[str, Sequence[str]],
                 names: Sequence[str]) -> Dict[str, int]:
  """Label name -> the number of albums carrying it (0 for none).

  Args:
    labels: album id -> its label names (one entry per album).
    names: every label of the prepared data, in its order.
  """
  counts = {name: 0 for name in names}
  for album_labels in labels.values():
    for name in set(album_labels):
      counts[name] = counts.get(name, 0) + 1
  return counts


def ranked(counts: Mapping[str, int], size: int = TABLE4_SIZE
           ) -> Tuple[List[Tuple[int, str, int]], List[Tuple[int, str, int]],
                      List[str]]:
  """(most, least, unused) of Table 4.

  Labels carrying at least one album are ranked by album count, most
  first, ties by name; `most` is the first `size` of the ranking, `least`
  its last `size` (most first too, as `most` reads) without the labels
  already in `most` (fewer than 2 x size labels: the rest). Labels on no
  album are `unused`, not least represented: the prepared data has them
  but no album to count.

  Args:
    counts: label name -> albums carrying it.
    size: how many labels each list holds.

  Returns:
    most and least as [(rank from 1, label, albums)], unused label names
    sorted.
  """
  ranking = sorted(((-n, name) for name, n in counts.items() if n > 0))
  ranking = [(i + 1, name, -n) for i, (n, name) in enumerate(ranking)]
  most = ranking[:size]
  least = ranking[max(size, len(ranking) - size):]
  unused = sorted(name for name, n in counts.items() if n <= 0)
  return most, least, unused


def _album_labels(pipeline: figure_inputs.Pipeline
                  ) -> Tuple[Dict[str, List[str]], List[str], List[str]]:
  """(album id -> label names, label names, stages read) of a pipeline.

  Every album of train + val + test of the shard-reading stages (lowest
  seed) whose three splits are extracted, their albums joined (an album
  without one modality is still in another's files); labels are the
  prepared ones, the same in every stage, so an album's first rows give
  them. Falls back to any label-scoring stage.

  Raises:
    figure_inputs.MissingInput: no stage has its three splits extracted.
  """
  stages = _shard_stages(pipeline) or pipeline.stages(
      definition.recorded_scores_labels)
  albums: Dict[str, List[str]] = {}
  names: Optional[List[str]] = None
  read = []
  for stage in stages:
    splits = _all_splits(pipeline, stage)
    if splits is None:
      continue
    stage_names = figure_inputs.label_names(splits['train'],
                                            pipeline.stage_dir(stage))
    if names is None:
      names = stage_names
    elif stage_names != names:
      continue  # another label space; not the same prepared labels
    for data in splits.values():
      figure_inputs.labels_by_album(data, names, albums)
    read.append(stage['name'])
  if names is None:
    raise figure_inputs.MissingInput(
        f'Table 4: no stage of {pipeline.workdir} has its train, val and '
        'test representations extracted with labels (--mode=extract '
        '--split=all).')
  return albums, names, read


def _table4_rows(entries: Sequence[Tuple[int, str, int]], albums: int,
                 paper_column: Optional[Sequence[Tuple[str, float]]]
                 ) -> List[Dict[str, Any]]:
  """Rows of one list: rank, genre, albums, percent, and the paper's row
  at the same position of its column (None where it has none)."""
  rows = []
  for i, (rank, name, n) in enumerate(entries):
    theirs = (paper_column[i] if paper_column is not None and
              i < len(paper_column) else (None, None))
    rows.append({'rank': rank, 'genre': name, 'albums': n,
                 'percent': _percent(n, albums), 'paper_genre': theirs[0],
                 'paper_percent': theirs[1]})
  return rows


def _table4_lines(most, least, unused, albums: int, labels: int,
                  with_paper: bool, source: str) -> List[str]:
  """Markdown of Table 4: the most, then the least represented list."""
  lines = [f'The labels of all {albums} albums of train + val + test '
           f'({source}; {labels} labels): the most and the least '
           'represented genres (labels carrying at least one album, ranked '
           'by albums, ties by name) and the % of albums carrying each.']
  if with_paper:
    lines[0] += (f' The paper\'s {paper.TABLE4_SOURCE} beside them, row for '
                 'row; its text gives only its first row, so the other '
                 'paper cells are empty.')
  header = '| Rank | Genre | Albums | % of albums |'
  rule = '|---|---|---|---|'
  if with_paper:
    header += ' Paper genre | Paper % |'
    rule += '---|---|'
  for caption, rows in (('Most represented', most),
                        ('Least represented', least)):
    lines += ['', f'**{caption}**', '', header, rule]
    for row in rows:
      cells = [str(row['rank']), row['genre'], str(row['albums']),
               _cell(row['percent'])]
      if with_paper:
        cells += [row['paper_genre'] or '—', _cell(row['paper_percent'])]
      lines.append('| ' + ' | '.join(cells) + ' |')
  if unused:
    lines += ['', f'{len(unused)} labels of the prepared data carry no '
              f'album and are not ranked: {", ".join(unused)}.']
  return lines


def table4(pipelines: Sequence[figure_inputs.Pipeline]) -> sections.Table:
  """Table 4 (Sec 7.1.1): the ten most and least represented genres.

  Counted over every album of train + val + test of the first mumu (or
  catalog) pipeline of `pipelines` with extracted representations: the
  shard-reading stages' files (lowest seed), one row per album (track rows
  give their album its first track's labels). The percentage of a genre is
  its albums over all albums. Labels are ranked by albums, ties broken by
  name; the ten least represented are the ranking's last ten labels that
  carry at least one album (a label on no album is listed apart as unused,
  not as least represented), shown most first as the ten most are. The
  paper's values (paper.PAPER_TABLE4) stand beside ours row for row when
  the pipeline's dataset is 'mumu'; a catalog has none.

  Args:
    pipelines: the pipeline workdirs of a report.

  Returns:
    The section; data: {'workdir', 'dataset', 'stages', 'albums', 'labels',
    'most': [{'rank', 'genre', 'albums', 'percent', 'paper_genre',
    'paper_percent'}], 'least': [...] as 'most', 'unused': [label]}.

  Raises:
    figure_inputs.MissingInput: no mumu / catalog pipeline, or none with a
      stage whose three splits are extracted with labels.
  """
  reasons = []
  for pipeline in _pipelines_of(pipelines, TABLE4_DATASETS, 'Table 4'):
    try:
      labels, names, read = _album_labels(pipeline)
    except figure_inputs.MissingInput as e:
      reasons.append(str(e))
      continue
    return _table4(pipeline, labels, names, read)
  raise figure_inputs.MissingInput(' '.join(reasons))


def _table4(pipeline: figure_inputs.Pipeline,
            labels: Mapping[str, Sequence[str]], names: Sequence[str],
            read: Sequence[str]) -> sections.Table:
  dataset = pipeline.info.get('dataset')
  with_paper = dataset == 'mumu'
  most, least, unused = ranked(album_counts(labels, names))
  albums = len(labels)
  most = _table4_rows(most, albums,
                      paper.PAPER_TABLE4['most'] if with_paper else None)
  least = _table4_rows(least, albums,
                       paper.PAPER_TABLE4['least'] if with_paper else None)
  source = (f'`{pipeline.workdir.name}` stages '
            f'{", ".join(f"`{s}`" for s in read)}')
  name = 'MuMu' if with_paper else dataset
  return sections.Table(
      title=(f'Table 4 (Sec 7.1.1): the {TABLE4_SIZE} most and least '
             f'represented {name} genres'),
      lines=_table4_lines(most, least, unused, albums, len(names),
                          with_paper, source),
      data={'workdir': str(pipeline.workdir), 'dataset': dataset,
            'stages': list(read), 'albums': albums, 'labels': len(names),
            'most': most, 'least': least, 'unused': unused})

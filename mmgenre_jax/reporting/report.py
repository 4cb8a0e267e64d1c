"""Results report of pipeline workdirs: report.md and results.json.

  mmgenre report runs/mumu_cosine     # one pipeline workdir
  mmgenre report runs                 # every pipeline workdir beneath runs/

Reads W/pipeline.json (docs/workdirs.md §3) and each stage's
test_metrics.json, and writes W/report.md (our values beside the paper's, in
the layout of the paper's Table 6 / Table 2, then the paper's findings checked
on our numbers) and W/results.json (one object per trained model, RESULT_KEYS).
`mmgenre report` (mmgenre_jax/cli/report.py) also prints the markdown.
Workdirs may be local directories or gs://bucket/... URLs (docs/tpu_pod.md
§4). File names come from mmgenre_jax/workdir.py.
"""

import math
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from etils import epath

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import specs
from mmgenre_jax.pipelines import definition
from mmgenre_jax.reporting import paper
from mmgenre_jax.reporting import sections

# The keys of every results.json object, in this order (README, "Results").
# `params` and `epoch_s` are the row's own model's; `features_params` and
# `features_epoch_s` are those of the network that made its input vectors
# when the paper's table reports that one (MuMu AUDIO: the track CNN, whose
# figures Table 6 gives), else null.
RESULT_KEYS = ('dataset', 'modality', 'target', 'settings', 'params',
               'epoch_s', 'features_params', 'features_epoch_s', 'roc_auc',
               'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5', 'precision', 'recall',
               'macro_f1', 'seed', 'config', 'workdir')
METRIC_KEYS = ('roc_auc', 'pr_auc', 'adiv@1', 'adiv@3', 'adiv@5',
               'precision', 'recall', 'macro_f1')
# COSINE counts as "near" LOGISTIC when its AUC is at most this many points
# below (the paper's A+T+I gap is 0.005, Table 6); above is near too.
AUC_NEAR = 0.02

# ------------------------------------------------------------------ reading


def find_pipelines(path) -> List[epath.Path]:
  """W itself when W/pipeline.json exists, else every pipeline workdir below."""
  path = epath.Path(path)
  if (path / workdir_lib.PIPELINE_JSON).exists():
    return [path]
  # walk, not glob('**/...'): epath refuses recursive globs (one listing per
  # directory on GCS either way).
  found = sorted(root for root, _, files in path.walk()
                 if workdir_lib.PIPELINE_JSON in files)
  if not found:
    raise FileNotFoundError(
        f'No {workdir_lib.PIPELINE_JSON} in {path} or below; give a pipeline '
        'workdir (python main.py --config=configs/mumu_cosine.py '
        '--workdir=W).')
  return found


def _number(value: Any) -> Optional[float]:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return None if math.isnan(value) else float(value)


def pipeline_results(workdir) -> List[Dict[str, Any]]:
  """results.json objects of one pipeline workdir (stages with metrics).

  Alignment stages have no classifier and no row; stages without
  test_metrics.json yet (pending, running) are left out.
  """
  workdir = epath.Path(workdir)
  pipeline = workdir_lib.read_json(workdir / workdir_lib.PIPELINE_JSON,
                                   strict=True)
  if pipeline is None:
    raise FileNotFoundError(
        f'{workdir / workdir_lib.PIPELINE_JSON} not found.')
  by_name = {stage['name']: stage for stage in pipeline['stages']}
  rows = []
  for stage in pipeline['stages']:
    if not definition.recorded_scores_labels(stage):
      continue
    metrics = _test_metrics(workdir, stage)
    if metrics is None:
      continue
    row = dict.fromkeys(RESULT_KEYS)
    labels = stage.get('row') or {}
    for key in ('dataset', 'modality', 'target', 'settings', 'seed'):
      row[key] = labels.get(key)
    if row['dataset'] is None:
      row['dataset'] = pipeline.get('dataset')
    row['params'], row['epoch_s'] = _cost(metrics)
    features = by_name.get(labels.get('features_stage'))
    features_metrics = features and _test_metrics(workdir, features)
    if features_metrics:
      row['features_params'], row['features_epoch_s'] = _cost(
          features_metrics)
    for key in METRIC_KEYS:
      row[key] = _number(metrics.get(key))
    row['config'] = stage['config']
    row['workdir'] = str(workdir_lib.stage_dir(workdir, stage))
    rows.append(row)
  return rows


def _test_metrics(workdir: epath.Path, stage: Mapping[str, Any]
                  ) -> Optional[Dict[str, Any]]:
  """A recorded stage's test_metrics.json, or None before it has one."""
  return workdir_lib.read_json(
      workdir_lib.stage_dir(workdir, stage) / workdir_lib.TEST_METRICS_JSON,
      strict=True)


def _cost(metrics: Mapping[str, Any]) -> Tuple[Optional[int],
                                               Optional[float]]:
  """(parameter count, seconds per epoch) of a stage's test metrics."""
  params = metrics.get('params', metrics.get('num_params'))
  return (None if params is None else int(params),
          _number(metrics.get('epoch_s')))


# ------------------------------------------------------------------ markdown


def _fmt(value: Optional[float], digits: int = 3) -> str:
  return '–' if value is None else f'{value:.{digits}f}'


def _params(value: Optional[int]) -> str:
  if value is None:
    return '–'
  return f'{value / 1e6:.2f}M' if value >= 10_000 else str(value)


def _mean_sd(values: Sequence[Optional[float]]) -> Tuple[Optional[float],
                                                         Optional[float]]:
  values = [v for v in values if v is not None]
  if not values:
    return None, None
  mean = sum(values) / len(values)
  if len(values) < 2:
    return mean, None
  var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
  return mean, math.sqrt(var)


def _group(rows: Sequence[Mapping[str, Any]]
           ) -> Dict[Tuple[str, str, str, str], List[Mapping[str, Any]]]:
  """Rows of the same model over seeds, in first-seen order."""
  groups: Dict[Tuple[str, str, str, str], List[Mapping[str, Any]]] = {}
  for row in rows:
    key = (row['dataset'], row['modality'], row['target'], row['settings'])
    groups.setdefault(key, []).append(row)
  return groups


def _modality_label(modality: str) -> str:
  return ' + '.join(m.upper() for m in modality.split('+'))


def _table6(rows: Sequence[Mapping[str, Any]],
            catalog: bool = False) -> List[str]:
  """Table 6's columns; catalog: a catalog's rows, with no paper values.

  Params and Time are those of the network the paper's row measures: for
  the AUDIO rows the track CNN (`features_params`), not the Sec 4 network
  on its album vectors, whose figures go in a note.
  """
  title = ('### Catalog (multi-label albums): ours' if catalog else
           '### MuMu (multi-label albums): ours (paper, '
           f'{paper.TABLE6_SOURCE})')
  lines = [title, '',
           '| Modality | Target | Settings | Params | Time/epoch (s) | AUC | '
           'ADiv@1 | ADiv@3 | ADiv@5 | runs |',
           '|---|---|---|---|---|---|---|---|---|---|']
  notes = _Notes()
  album_networks = []
  groups = sorted(_group(rows).items(),
                  key=lambda item: paper.table6_order(*item[0][1:]))
  for (_, modality, target, settings), group in groups:
    row_key = (modality, target, settings)
    paper_row = None if catalog else paper.paper_table6(*row_key)
    cells = []
    for i, key in enumerate(('roc_auc', 'adiv@1', 'adiv@3', 'adiv@5')):
      mean, sd = _mean_sd([r[key] for r in group])
      text = _fmt(mean) + (f' ± {sd:.3f}' if sd is not None else '')
      if paper_row:
        flag = notes.mark(paper.impossible_note(*row_key, key))
        text += f' ({paper_row[2 + i]:.3f}{flag})'
      elif not catalog:
        text += ' (–)'
      cells.append(text)
    params, epoch = _table6_cost(group)
    if group[0]['features_params'] is not None:
      album_networks.append((_modality_label(modality), target, group))
    params_text = _params(params)
    epoch_text = _fmt(epoch, 1)
    if paper_row:
      params_text += (f' ({paper_row[0]}'
                      f'{notes.mark(paper.params_note(*row_key))})')
      epoch_text += f' ({paper_row[1]})'
    settings_text = settings.upper().replace('X', 'x')
    lines.append(f'| {_modality_label(modality)} | {target.upper()} | '
                 f'{settings_text} | {params_text} | {epoch_text} | '
                 + ' | '.join(cells) + f' | {len(group)} |')
  lines.append('')
  if catalog:
    lines.append('A catalog of your own: no paper values to compare with.')
  else:
    lines.append('Paper values in parentheses. Time is seconds per training '
                 'epoch: ours on this machine, the paper\'s as Table 6 '
                 'prints them (the paper does not say on what hardware).')
  lines += _album_network_notes(album_networks) + notes.lines()
  return lines


def _table6_cost(group: Sequence[Mapping[str, Any]]
                 ) -> Tuple[Optional[int], Optional[float]]:
  """(Params, mean seconds per epoch) of a Table 6 row's network: the
  feature network's when the row has one (AUDIO: the track CNN)."""
  if group[0]['features_params'] is not None:
    return (group[0]['features_params'],
            _mean_sd([r['features_epoch_s'] for r in group])[0])
  return group[0]['params'], _mean_sd([r['epoch_s'] for r in group])[0]


def _album_network_notes(album_networks) -> List[str]:
  """A note per row whose Params/Time are its feature network's."""
  lines = []
  for label, target, group in album_networks:
    epoch, _ = _mean_sd([r['epoch_s'] for r in group])
    lines.append(
        f'- {label} {target.upper()}: Params and Time are the track CNN\'s, '
        'as in the paper; the row\'s scores come from the Sec 4 network on '
        f'its album-averaged vectors (Sec 7.3.1), {_params(group[0]["params"])} '
        f'parameters and {_fmt(epoch, 2)} s an epoch more.')
  return lines


class _Notes:
  """Footnotes of a table: each text once, numbered in order of use."""

  def __init__(self):
    self._texts: List[str] = []

  def mark(self, text: Optional[str]) -> str:
    """The marker of `text` (' [n]'), or '' for None."""
    if text is None:
      return ''
    if text not in self._texts:
      self._texts.append(text)
    return f' [{self._texts.index(text) + 1}]'

  def lines(self) -> List[str]:
    return [f'- [{i}] {text}.' for i, text in enumerate(self._texts, 1)]


def _table2(rows: Sequence[Mapping[str, Any]]) -> List[str]:
  lines = ['### MSD-I (single-label tracks): ours (paper, '
           f'{paper.TABLE2_SOURCE}), mean ± sd over seeds', '',
           '| Input | Model | P | R | F1 | AUC | runs |',
           '|---|---|---|---|---|---|---|']
  groups = _group(rows)
  by_modality = {key[1]: group for key, group in groups.items()}
  listed = set()
  order = [(name, m) for name, mods in paper.TABLE2_GROUPS for m in mods]
  order += [('other', key[1]) for key in groups
            if key[1] not in paper.PAPER_TABLE2]
  for group_name, modality in order:
    group = by_modality.get(modality)
    if group is None or modality in listed:
      continue
    listed.add(modality)
    paper_row = paper.PAPER_TABLE2.get(modality)
    cells = []
    for i, key in enumerate(('precision', 'recall', 'macro_f1')):
      mean, sd = _mean_sd([r[key] for r in group])
      text = _fmt(mean) + (f' ± {sd:.3f}' if sd is not None else '')
      if paper_row:
        text += f' ({paper_row[1 + i][0]:.3f} ± {paper_row[1 + i][1]:.3f})'
      cells.append(text)
    auc, _ = _mean_sd([r['roc_auc'] for r in group])
    model = paper_row[0] if paper_row else _modality_label(modality)
    lines.append(f'| {group_name} | {model} | ' + ' | '.join(cells) +
                 f' | {_fmt(auc)} | {len(group)} |')
  lines += ['', 'Paper values in parentheses (macro averages over the 15 '
            'genres, 3 runs).']
  return lines


# What an own-head row's scores are (definition.own_head_row), per dataset.
OWN_HEAD_SCORES = {
    'mumu': 'the album mean of the track CNN\'s scores (its whole-track '
            'windows, then its tracks); the AUDIO row above is the Sec 4 '
            'network on the album-averaged track vectors (Sec 7.3.1)',
    'catalog': 'as for mumu: the album mean of the track CNN\'s scores; '
               'the AUDIO row is the Sec 4 network on the album-averaged '
               'track vectors',
    'msdi': 'the CNN\'s own softmax layer; the CNN_AUDIO / CNN_VISUAL rows '
            'above are the Sec 4 network on its vectors (Sec 6.2)',
}


def _own_heads(rows: Sequence[Mapping[str, Any]]) -> List[str]:
  """The networks' own output layers: diagnostics, not the paper's rows."""
  lines = ['### The networks\' own output layers (not rows of the paper\'s '
           'tables)', '',
           '| Dataset | Network | Target | Settings | AUC | F1 | runs |',
           '|---|---|---|---|---|---|---|']
  for (dataset, modality, target, settings), group in _group(rows).items():
    auc, _ = _mean_sd([r['roc_auc'] for r in group])
    f1, _ = _mean_sd([r['macro_f1'] for r in group])
    name = modality[:-len(definition.OWN_HEAD_SUFFIX)].upper()
    lines.append(f'| {dataset} | {name} | {target.upper()} | '
                 f'{settings.upper().replace("X", "x")} | {_fmt(auc)} | '
                 f'{_fmt(f1)} | {len(group)} |')
  lines.append('')
  for dataset in sorted({r['dataset'] for r in rows}):
    if dataset in OWN_HEAD_SCORES:
      lines.append(f'- {dataset}: {OWN_HEAD_SCORES[dataset]}.')
  return lines


# ------------------------------------------------------------------ findings


def _mean_of(rows, dataset, modality, target, key,
             settings: Optional[str] = None) -> Optional[float]:
  """Mean of `key` over the rows of one model (any settings when None)."""
  values = [r[key] for r in rows if r['dataset'] == dataset and
            r['modality'] == modality and r['target'] == target and
            settings in (None, r['settings'])]
  return _mean_sd(values)[0]


def findings(rows: Sequence[Mapping[str, Any]]) -> List[str]:
  """The paper's findings, each 'holds' / 'does not hold' on our numbers."""
  lines = []
  # 1. Fusion beats each single modality (Sec 6.3, 7.4), per pipeline: its
  # widest fusion against every single-modality network it trained.
  by_pipeline: Dict[str, List[Mapping[str, Any]]] = {}
  for r in rows:
    by_pipeline.setdefault(str(epath.Path(r['workdir']).parent),
                           []).append(r)
  for pipeline, mine in by_pipeline.items():
    dataset = mine[0]['dataset']
    metric = 'macro_f1' if dataset == 'msdi' else 'roc_auc'
    singles = [m for m in specs.MODALITY_ORDER[:3]
               if any(r['modality'] == m for r in mine)]
    fusions = {(r['modality'], r['target']) for r in mine
               if '+' in r['modality']}
    if not singles or not fusions:
      continue
    width = max(len(m.split('+')) for m, _ in fusions)
    for modality, target in sorted(f for f in fusions
                                   if len(f[0].split('+')) == width):
      fused = _mean_sd([r[metric] for r in mine if r['modality'] == modality
                        and r['target'] == target])[0]
      single = {}
      for m in singles:
        for t in sorted({r['target'] for r in mine if r['modality'] == m}):
          single[f'{m} {t.upper()}'] = _mean_sd(
              [r[metric] for r in mine
               if r['modality'] == m and r['target'] == t])[0]
      if fused is None or any(v is None for v in single.values()):
        continue
      ok = all(fused > v for v in single.values())
      others = ', '.join(f'{m} {v:.3f}' for m, v in single.items())
      lines.append(
          f'- Fusion beats each single modality ({pipeline}, {metric}): '
          f'{modality} {target.upper()} {fused:.3f} vs {others}: '
          f'**{sections.holds(ok)}**.')
  # 2. COSINE reaches AUC near LOGISTIC with higher ADiv@N (Sec 7.4), on
  # the same network settings (and for fusions the same input vectors: the
  # pipelines fuse one set of vectors under both targets).
  both = sorted({(r['modality'], r['settings']) for r in rows
                 if r['dataset'] == 'mumu' and r['target'] == 'cosine'} &
                {(r['modality'], r['settings']) for r in rows
                 if r['dataset'] == 'mumu' and r['target'] == 'logistic'},
                key=lambda m: (len(m[0].split('+')), m))
  for modality, settings in both:
    auc = {t: _mean_of(rows, 'mumu', modality, t, 'roc_auc', settings)
           for t in ('cosine', 'logistic')}
    adiv = {t: [_mean_of(rows, 'mumu', modality, t, f'adiv@{n}', settings)
                for n in (1, 3, 5)] for t in ('cosine', 'logistic')}
    if None in auc.values() or None in adiv['cosine'] + adiv['logistic']:
      continue
    # The paper's point is that COSINE costs (almost) no AUC: 0.931 vs 0.936
    # for A+T+I (Table 6). Above LOGISTIC counts as near.
    near = auc['cosine'] >= auc['logistic'] - AUC_NEAR
    higher = all(c > l for c, l in zip(adiv['cosine'], adiv['logistic']))
    lines.append(
        f'- COSINE AUC near LOGISTIC (at most {AUC_NEAR} below) with higher '
        f'ADiv@1/3/5 (mumu, {modality} {settings}): AUC '
        f'{auc["cosine"]:.3f} vs '
        f'{auc["logistic"]:.3f}, ADiv '
        + '/'.join(f'{v:.2f}' for v in adiv['cosine']) + ' vs '
        + '/'.join(f'{v:.2f}' for v in adiv['logistic'])
        + f': AUC near **{sections.holds(near)}**, '
        f'ADiv higher **{sections.holds(higher)}**.')
  if not both and any(r['dataset'] == 'mumu' for r in rows):
    lines.append('- COSINE vs LOGISTIC: not checked here (needs COSINE '
                 'and LOGISTIC rows of the same model settings, e.g. the '
                 'fusions of configs/mumu_cosine.py).')
  # 3. audio + MM_AUDIO beats audio alone on MSD-I (Sec 6.3).
  audio = _mean_of(rows, 'msdi', 'audio', 'softmax', 'macro_f1')
  both_audio = _mean_of(rows, 'msdi', 'audio+mm_audio', 'softmax',
                        'macro_f1')
  if audio is not None and both_audio is not None:
    lines.append(
        f'- CNN_AUDIO + MM_AUDIO beats CNN_AUDIO (msdi, macro F1): '
        f'{both_audio:.3f} vs {audio:.3f}: '
        f'**{sections.holds(both_audio > audio)}**.')
  return lines


def markdown(rows: Sequence[Mapping[str, Any]],
             pipelines: Sequence[Mapping[str, Any]],
             extra: Sequence[str] = ()) -> str:
  """The report: one table per dataset, the own-head rows, the findings,
  then `extra` lines (the figures section)."""
  lines = ['# Results', '']
  for pipeline in pipelines:
    lines.append(f'- `{pipeline["workdir"]}`: `--config={pipeline["config"]}`'
                 f' ({len(pipeline["stages"])} stages)')
  lines.append('')
  heads = [r for r in rows if definition.is_own_head(r['modality'])]
  rows = [r for r in rows if not definition.is_own_head(r['modality'])]
  mumu = [r for r in rows if r['dataset'] == 'mumu']
  msdi = [r for r in rows if r['dataset'] == 'msdi']
  catalog = [r for r in rows if r['dataset'] == 'catalog']
  if mumu:
    lines += _table6(mumu) + ['']
  if catalog:
    lines += _table6(catalog, catalog=True) + ['']
  if msdi:
    lines += _table2(msdi) + ['']
  if heads:
    lines += _own_heads(heads) + ['']
  if not rows and not heads:
    lines += ['No stage has test metrics yet.', '']
  lines += ['## The paper\'s findings on these numbers', '']
  lines += findings(rows) or ['- Nothing to check yet.']
  if extra:
    lines += [''] + list(extra)
  return '\n'.join(lines).rstrip('\n') + '\n'


def _to_stderr(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def _write(out_dir: epath.Path, rows, pipelines, extra=()) -> str:
  text = markdown(rows, pipelines, extra)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / workdir_lib.REPORT_MD).write_text(text)
  workdir_lib.write_json(out_dir / workdir_lib.RESULTS_JSON, rows)
  return text


def write_report(path, out_dir=None, *, figures: bool = True,
                 taxonomy=None, genres=None) -> str:
  """Writes report.md, results.json and tables.json for a pipeline workdir
  or a tree.

  Every pipeline workdir W found also gets W/figures/ (figures.py) and its
  own W/report.md, W/results.json and W/tables.json (tables.py), the
  report embedding the figures; a tree's report (`out_dir`) has the tables
  over all its pipelines (Table 7 compares two) and links each pipeline's
  report.

  Args:
    path: a pipeline workdir, or a directory with pipeline workdirs below.
    out_dir: where to write the report of `path` (default `path`).
    figures: draw the figures; False links those already in W/figures/.
    taxonomy: genre taxonomy TSV for the figures' single-parent subset.
    genres: the genres of the words-per-genre section (None: the paper's).

  Returns:
    The markdown of `path`'s report.
  """
  # The figures and tables read the saved representations (numpy, matplotlib,
  # TensorFlow's readers): imported only when a report is written.
  # pylint: disable=g-import-not-at-top
  from mmgenre_jax.reporting import figure_inputs
  from mmgenre_jax.reporting import figures as figures_lib
  # pylint: enable=g-import-not-at-top
  path = epath.Path(path)
  out_dir = epath.Path(out_dir) if out_dir else path
  rows, pipelines, links, readers = [], [], [], []
  for workdir in find_pipelines(path):
    reader = figure_inputs.Pipeline.read(workdir)
    entry = {'workdir': str(workdir), 'config': reader.info['config'],
             'stages': reader.info['stages']}
    own_rows = pipeline_results(workdir)
    drawn = (figures_lib.write_figures(workdir, taxonomy=taxonomy,
                                       log=_to_stderr) if figures
             else figures_lib.drawn_figures(workdir))
    target = out_dir if workdir == path else workdir
    extra = _tables(target, [reader], genres) + (
        figures_lib.markdown(drawn, workdir) if drawn else [])
    if workdir == path:
      return _write(out_dir, own_rows, [entry], extra)
    _write(workdir, own_rows, [entry], extra)
    links.append(f'- [{workdir.relative_to(path)}]'
                 f'({workdir.relative_to(path) / workdir_lib.REPORT_MD})')
    pipelines.append(entry)
    readers.append(reader)
    rows += own_rows
  extra = _tables(out_dir, readers, genres) + [
      '## Each pipeline\'s report and figures', ''] + links
  return _write(out_dir, rows, pipelines, extra)


def _tables(out_dir: epath.Path, readers, genres) -> List[str]:
  """Builds the paper's other tables of `readers` (figure_inputs.Pipeline),
  writes out_dir/tables.json and returns their report sections."""
  from mmgenre_jax.reporting import tables  # pylint: disable=g-import-not-at-top
  built, missing = tables.build(readers, genres)
  out_dir.mkdir(parents=True, exist_ok=True)
  tables.write_json(out_dir, built)
  return tables.markdown(built, missing)

"""Tables 3 and 7 of the paper from the models' saved test predictions.

  table = prediction_tables.table3(pipelines)   # MSD-I, per-genre F1
  table = prediction_tables.table7(pipelines)   # MuMu, top 3 per album

Table 3 (Sec 6.4): the test F1 of each genre for the paper's best model of
each input (CNN_AUDIO + MM_AUDIO, CNN_VISUAL, ALL; Table 3's caption), the
mean over the seeds trained, beside the paper's Neural Model columns and
the paper's human annotator (a listening test we cannot repeat: always the
paper's values, labelled as such).

Table 7 (Sec 7.5): the top-3 labels of the first test albums for the best
LOGISTIC and the best COSINE AUDIO row (by test AUC), side by side, with
the number of distinct labels in each column, on the albums shown and on
every test album; the latter over the label count is the model's ADiv@3
(Sec 7.2), checked against its test_metrics.json.

Both read each stage's test representations (figure_inputs.Pipeline.scored)
and test_metrics.json; nothing is trained. A builder whose inputs the
pipelines lack raises figure_inputs.MissingInput with the reason.
"""

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.core import metrics
from mmgenre_jax.pipelines import definition
from mmgenre_jax.reporting import figure_inputs as inputs
from mmgenre_jax.reporting import paper
from mmgenre_jax.reporting import sections

# Table 7: albums shown, labels per album (the paper's top 3, ADiv@3).
TABLE7_ALBUMS = 20
TABLE7_TOP = 3
# Multi-label datasets whose AUDIO rows Table 7 compares, tried in this
# order (a catalog of one's own has the MuMu pipelines' rows).
TABLE7_DATASETS = ('mumu', 'catalog')
# Left to right, as the paper's Table 7.
TABLE7_TARGETS = ('logistic', 'cosine')
# Table 7's ADiv@3 and the stage's agree when this close (both are a count
# over the label count; only float formatting can part them).
ADIV_TOLERANCE = 1e-9

Stage = Dict[str, Any]


# ---------------------------------------------------------------- shared


def _trained_rows(pipelines: Sequence[inputs.Pipeline],
                  datasets: Sequence[str], modality: str
                  ) -> List[Tuple[inputs.Pipeline, Stage]]:
  """(pipeline, stage) of every trained stage of results.json row
  `modality`, every seed (Pipeline.stages keeps the lowest only)."""
  return [(p, s) for p in pipelines if p.info.get('dataset') in datasets
          for s in p.info['stages']
          if (s.get('row') or {}).get('modality') == modality and
          definition.recorded_scores_labels(s) and
          workdir_lib.is_training_done(p.stage_dir(s))]


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
  """Mean of the values that are defined, None when none is."""
  values = [v for v in values if v is not None]
  return sum(values) / len(values) if values else None


def _cell(value: Optional[float], digits: int = 2) -> str:
  return '–' if value is None else f'{value:.{digits}f}'


def _paper_cell(value: Optional[float]) -> str:
  """A paper value as printed (its zeros are printed '0')."""
  if value is None:
    return '–'
  return '0' if value == 0 else f'{value:.2f}'


# --------------------------------------------------------------- Table 3


def genre_f1(pipeline: inputs.Pipeline, stage: Stage
             ) -> Dict[str, Optional[float]]:
  """Genre name -> test F1 of one single-label stage.

  The prediction is the arg max of the saved scores [N, L], as the stage's
  own evaluation (metrics.singlelabel_report), so the values equal its
  test_metrics.json per_class_f1. None: a genre neither true nor predicted.
  """
  data = pipeline.scored(stage, 'test')
  if np.ndim(data['labels']) != 1:
    raise inputs.MissingInput(
        f'Table 3 is per genre of a single-label dataset; stage '
        f'{stage["name"]!r} has multi-label test labels.')
  names = inputs.label_names(data, pipeline.stage_dir(stage))
  predictions = np.argmax(data['scores'], axis=1)
  return dict(zip(names, metrics.per_class_f1(data['labels'], predictions,
                                              len(names))))


def _table3_order(genres: Sequence[str]) -> List[str]:
  """The paper's genres in Table 3's order, then any others as found."""
  ours = list(dict.fromkeys(genres))
  return ([g for g in paper.PAPER_TABLE3 if g in ours] +
          [g for g in ours if g not in paper.PAPER_TABLE3] +
          [g for g in paper.PAPER_TABLE3 if g not in ours])


def _column_key(heading: str) -> str:
  return heading.lower().replace(' ', '')   # 'Audio' -> 'audio', 'a+v'


def table3(pipelines: Sequence[inputs.Pipeline]) -> sections.Table:
  """Table 3 (Sec 6.4): per-genre test F1 of the best model of each input.

  Ours is the mean over the seeds trained (stages *_s0, _s1, _s2) of each
  genre's F1, skipping a seed where the genre is undefined; the Average row
  is the mean over seeds of each seed's mean per-genre F1 (its macro F1,
  Table 2's F1).

  Args:
    pipelines: the report's pipeline workdirs; the MSD-I ones are read.

  Returns:
    The section; data has 'columns' (key -> the model), 'rows' (one per
    genre, then 'Average': paper_human_annotator, paper_neural_model and
    ours, each key -> F1, and ours_per_seed key -> [F1 or None]).

  Raises:
    figure_inputs.MissingInput: no MSD-I pipeline, or none of the three
      models is trained.
  """
  if not any(p.info.get('dataset') == 'msdi' for p in pipelines):
    raise inputs.MissingInput('Table 3 is of MSD-I; no msdi pipeline here.')
  columns, per_seed = {}, {}
  for heading, modality in paper.TABLE3_COLUMNS:
    found = sorted(_trained_rows(pipelines, ('msdi',), modality),
                   key=lambda found: inputs.seed(found[1]))
    key = _column_key(heading)
    per_seed[key] = [genre_f1(p, s) for p, s in found]
    columns[key] = {'heading': heading, 'modality': modality,
                    'model': paper.PAPER_TABLE2[modality][0],
                    'stages': [s['name'] for _, s in found],
                    'seeds': [inputs.seed(s) for _, s in found]}
  if not any(per_seed.values()):
    raise inputs.MissingInput(
        'none of the models of Table 3 (rows ' +
        ', '.join(m for _, m in paper.TABLE3_COLUMNS) + ') is trained.')
  keys = list(columns)
  genres = _table3_order([g for seeds in per_seed.values()
                          for f1 in seeds for g in f1])
  rows = []
  for genre in genres:
    human, neural = paper.PAPER_TABLE3.get(genre, ((None,) * 3,) * 2)
    seeds = {k: [f1.get(genre) for f1 in per_seed[k]] for k in keys}
    rows.append(_table3_row(genre, human, neural, seeds))
  seeds = {k: [_mean(list(f1.values())) for f1 in per_seed[k]]
           for k in keys}
  rows.append(_table3_row('Average', *paper.PAPER_TABLE3_AVERAGE, seeds))
  return sections.Table(
      title=f'{paper.TABLE3_SOURCE}: per-genre F1 of the best model of '
            'each input, MSD-I test',
      lines=_table3_lines(columns, rows),
      data={'source': paper.TABLE3_SOURCE, 'columns': columns,
            'rows': rows})


def _table3_row(genre: str, human, neural,
                seeds: Mapping[str, List[Optional[float]]]
                ) -> Dict[str, Any]:
  keys = list(seeds)
  return {'genre': genre,
          'paper_human_annotator': dict(zip(keys, human)),
          'paper_neural_model': dict(zip(keys, neural)),
          'ours': {k: _mean(v) for k, v in seeds.items()},
          'ours_per_seed': dict(seeds)}


def _table3_lines(columns: Mapping[str, Mapping[str, Any]],
                  rows: Sequence[Mapping[str, Any]]) -> List[str]:
  keys = list(columns)
  heads = [columns[k]['heading'] for k in keys]
  lines = [
      'Test F1 per genre. **Human annotator (paper)**: the paper\'s '
      'listening and viewing test of one music expert on 300 test songs '
      '(Sec 6.4), the paper\'s values, not ours (no annotator here). '
      '**paper**: the paper\'s Neural Model columns; **ours**: the same '
      'models on our test split, mean over seeds:', '']
  for k in keys:
    column = columns[k]
    stages = ', '.join(f'`{s}`' for s in column['stages']) or 'not trained'
    lines.append(f'- {column["heading"]}: {column["model"]} (row '
                 f'`{column["modality"]}`; {stages})')
  lines += ['', '| Genre | ' + ' | '.join(
      f'Human annotator (paper) {h}' for h in heads) + ' | ' + ' | '.join(
          f'{h}: paper | {h}: ours' for h in heads) + ' |',
            '|---|' + '---:|' * (3 * len(keys))]
  for row in rows:
    cells = [_paper_cell(row['paper_human_annotator'][k]) for k in keys]
    for k in keys:
      cells += [_paper_cell(row['paper_neural_model'][k]),
                _cell(row['ours'][k])]
    genre = f'**{row["genre"]}**' if row['genre'] == 'Average' else (
        row['genre'])
    lines.append(f'| {genre} | ' + ' | '.join(cells) + ' |')
  lines += ['', 'Average: the mean of the genres (the paper\'s row; ours: '
            'the mean over seeds of each seed\'s macro F1). A genre no '
            'split of ours has is `–`.']
  return lines


# --------------------------------------------------------------- Table 7


def _test_metrics(pipeline: inputs.Pipeline, stage: Stage
                  ) -> Optional[Dict[str, Any]]:
  return workdir_lib.read_json(
      pipeline.stage_dir(stage) / workdir_lib.TEST_METRICS_JSON, strict=True)


def best_audio(pipelines: Sequence[inputs.Pipeline], dataset: str,
               target: str
               ) -> Optional[Tuple[inputs.Pipeline, Stage, Dict[str, Any]]]:
  """(pipeline, stage, test metrics) of the AUDIO row of `target` with the
  highest test ROC-AUC (the first on ties), or None."""
  best = None
  for pipeline, stage in _trained_rows(pipelines, (dataset,), 'audio'):
    if stage['row'].get('target') != target:
      continue
    test = _test_metrics(pipeline, stage) or {}
    if test.get('roc_auc') is None:
      continue
    if best is None or test['roc_auc'] > best[2]['roc_auc']:
      best = (pipeline, stage, test)
  return best


def top_labels(pipeline: inputs.Pipeline, stage: Stage
               ) -> Tuple[List[str], List[List[str]], int]:
  """(album ids [N], top-3 label names [N][3], label count L) of a stage's
  test representations, rows in the file's order.

  The top 3 are metrics.top_n of the saved scores [N, L] (ties to the lower
  label index), as the stage's ADiv@3.
  """
  data = pipeline.scored(stage, 'test')
  if np.ndim(data['labels']) != 2:
    raise inputs.MissingInput(
        f'Table 7 is of multi-label albums; stage {stage["name"]!r} has '
        'single-label test labels.')
  names = inputs.label_names(data, pipeline.stage_dir(stage))
  albums = [str(a) for a in data['album_ids']]
  if len(set(albums)) != len(albums):
    raise inputs.MissingInput(
        f'Table 7 is per album; the test file of stage {stage["name"]!r} '
        'has several rows per album.')
  top = metrics.top_n(data['scores'], TABLE7_TOP)
  return albums, [[names[j] for j in row] for row in top], len(names)


def distinct(tops: Sequence[Sequence[str]]) -> int:
  """Number of distinct labels among the top lists."""
  return len({label for top in tops for label in top})


def _table7_model(pipeline, stage, test, tops, num_labels, shown
                  ) -> Dict[str, Any]:
  """One column's model and its counts; shown: its top lists of the
  albums shown."""
  adiv = distinct(tops) / num_labels
  theirs = test.get(f'adiv@{TABLE7_TOP}')
  return {
      'workdir': str(pipeline.workdir), 'stage': stage['name'],
      'settings': stage['row'].get('settings'), 'seed': inputs.seed(stage),
      'roc_auc': test['roc_auc'], 'num_labels': num_labels,
      'test_albums': len(tops), 'distinct_shown': distinct(shown),
      'distinct_all': distinct(tops), f'adiv@{TABLE7_TOP}': adiv,
      f'adiv@{TABLE7_TOP}_test_metrics': theirs,
      f'adiv@{TABLE7_TOP}_agrees': theirs is not None and math.isclose(
          adiv, theirs, rel_tol=0, abs_tol=ADIV_TOLERANCE)}


def _table7_pair(pipelines: Sequence[inputs.Pipeline]) -> Tuple[str, Dict]:
  """(dataset, target -> best_audio) of the first dataset having both."""
  found = {}
  for dataset in TABLE7_DATASETS:
    found[dataset] = {t: best_audio(pipelines, dataset, t)
                      for t in TABLE7_TARGETS}
    if all(found[dataset].values()):
      return dataset, found[dataset]
  have = sorted({t.upper() for best in found.values()
                 for t, b in best.items() if b})
  if not have:
    raise inputs.MissingInput(
        'Table 7 needs the AUDIO rows of both MuMu pipelines (mumu_logistic '
        'and mumu_cosine); no trained AUDIO row with test metrics here.')
  raise inputs.MissingInput(
      f'Table 7 needs both MuMu pipelines (the best LOGISTIC and the best '
      f'COSINE AUDIO row); only {", ".join(have)} here: it is in the '
      'combined report (`mmgenre report runs`).')


def table7(pipelines: Sequence[inputs.Pipeline]) -> sections.Table:
  """Table 7 (Sec 7.5): top-3 labels of the first test albums, LOGISTIC
  beside COSINE, with the number of distinct labels of each column.

  The models are the best AUDIO row of each target by test ROC-AUC (the
  paper's: LOGISTIC/LOW-4x70, COSINE/HIGH-4x70). The albums are the first
  TABLE7_ALBUMS rows of the LOGISTIC model's test representations file; the
  COSINE column is that model's rows of the same albums.

  Args:
    pipelines: the report's pipeline workdirs; MuMu (else a catalog's) read.

  Returns:
    The section; data has 'models' (target -> stage, counts, ADiv@3 ours
    and test_metrics.json's and whether they agree), 'rows' (album ->
    top 3 of each target), 'cosine_more_diverse' ({'shown', 'all'}) and,
    for MuMu, the paper's distinct counts of its 20 albums.

  Raises:
    figure_inputs.MissingInput: not both targets' AUDIO rows (one MuMu
      pipeline alone), or test files without labels or per track.
  """
  dataset, best = _table7_pair(pipelines)
  predicted = {t: top_labels(p, s) for t, (p, s, _) in best.items()}
  first, last = TABLE7_TARGETS
  albums = predicted[first][0][:TABLE7_ALBUMS]
  where = {t: dict(zip(predicted[t][0], predicted[t][1]))
           for t in TABLE7_TARGETS}
  lost = [a for a in albums if a not in where[last]]
  if lost:
    raise inputs.MissingInput(
        f'the {last.upper()} model\'s test file lacks {len(lost)} of the '
        f'first test albums of the {first.upper()} model (e.g. {lost[0]}).')
  rows = [{'album': a, **{t: where[t][a] for t in TABLE7_TARGETS}}
          for a in albums]
  models = {t: _table7_model(p, s, test, predicted[t][1], predicted[t][2],
                             [r[t] for r in rows])
            for t, (p, s, test) in best.items()}
  more = {scope: models['cosine'][f'distinct_{scope}'] >
          models['logistic'][f'distinct_{scope}'] for scope in ('shown',
                                                                 'all')}
  data = {'source': paper.TABLE7_SOURCE, 'dataset': dataset,
          'order': f'the first {len(albums)} rows of the {first.upper()} '
                   'model\'s test representations file',
          'models': models, 'rows': rows, 'cosine_more_diverse': more}
  if dataset == 'mumu':
    # PAPER_TABLE7 rows: (album, LOGISTIC top 3, COSINE top 3).
    data['paper'] = {'settings': dict(paper.TABLE7_SETTINGS),
                     'distinct_shown': {
                         t: distinct([r[1 + i] for r in paper.PAPER_TABLE7])
                         for i, t in enumerate(TABLE7_TARGETS)}}
  return sections.Table(
      title=f'{paper.TABLE7_SOURCE}: top-{TABLE7_TOP} genres of the first '
            f'{TABLE7_ALBUMS} test albums, LOGISTIC vs COSINE audio',
      lines=_table7_lines(data), data=data)


def _table7_lines(data: Mapping[str, Any]) -> List[str]:
  models, rows = data['models'], data['rows']
  key = f'adiv@{TABLE7_TOP}'
  lines = []
  for t in TABLE7_TARGETS:
    m = models[t]
    lines.append(
        f'- {t.upper()}: AUDIO {str(m["settings"]).upper()}, stage '
        f'`{m["stage"]}` of `{m["workdir"]}` (seed {m["seed"]}), test '
        f'AUC {m["roc_auc"]:.3f}: the best {t.upper()} AUDIO row by test '
        'AUC.')
  paper_settings = paper.TABLE7_SETTINGS
  lines += [
      f'- Albums: {data["order"]} (the paper: "the first 20 albums in the '
      'test set"); top 3 best first, ties to the lower label index as in '
      f'ADiv@N. The paper\'s models: LOGISTIC/'
      f'{paper_settings["logistic"].upper()}, COSINE/'
      f'{paper_settings["cosine"].upper()}.', '',
      '| # | Album | ' + ' | '.join(f'{t.upper()} top {TABLE7_TOP}'
                                   for t in TABLE7_TARGETS) + ' |',
      '|---:|---|---|---|']
  for i, row in enumerate(rows, 1):
    lines.append(f'| {i} | {row["album"]} | ' + ' | '.join(
        ', '.join(row[t]) for t in TABLE7_TARGETS) + ' |')
  cells = {
      f'Distinct labels, these {len(rows)} albums':
          [str(models[t]['distinct_shown']) for t in TABLE7_TARGETS],
      'Distinct labels, all test albums':
          [f'{models[t]["distinct_all"]} of {models[t]["num_labels"]} '
           f'labels, {models[t]["test_albums"]} albums'
           for t in TABLE7_TARGETS],
      f'ADiv@{TABLE7_TOP} = distinct / labels (test_metrics.json)':
          [f'{models[t][key]:.3f} '
           f'({_cell(models[t][key + "_test_metrics"], 3)}, '
           f'{"agrees" if models[t][key + "_agrees"] else "DIFFERS"})'
           for t in TABLE7_TARGETS]}
  for name, values in cells.items():
    lines.append(f'| | **{name}** | ' + ' | '.join(values) + ' |')
  cosine, logistic = models['cosine'], models['logistic']
  more = data['cosine_more_diverse']
  lines += [
      '', f'- COSINE is more diverse (Sec 7.5), distinct labels COSINE vs '
      f'LOGISTIC: {cosine["distinct_shown"]} vs '
      f'{logistic["distinct_shown"]} on the {len(rows)} albums shown: '
      f'**{sections.holds(more["shown"])}**; {cosine["distinct_all"]} vs '
      f'{logistic["distinct_all"]} over all test albums: '
      f'**{sections.holds(more["all"])}**. (The paper\'s other point, COSINE\'s '
      'labels deeper in the taxonomy, came from a listening test and is not '
      'checked here.)']
  if 'paper' in data:
    counts = data['paper']['distinct_shown']
    lines.append(
        f'- The paper\'s Table 7 (its own 20 MuMu test albums, not ours): '
        f'{counts["logistic"]} distinct labels LOGISTIC, {counts["cosine"]} '
        'COSINE.')
  for t in TABLE7_TARGETS:
    if not models[t][key + '_agrees']:
      lines.append(
          f'- {t.upper()}: Table 7\'s ADiv@{TABLE7_TOP} '
          f'{models[t][key]:.4f} differs from its test_metrics.json '
          f'({_cell(models[t][key + "_test_metrics"], 4)}): the test '
          'representations and the metrics disagree (another checkpoint?); '
          'extract again (--mode=extract --split=all).')
  return lines

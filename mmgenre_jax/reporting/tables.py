"""The paper's other tables and its words per genre, from saved files.

Tables 1 and 3 (MSD-I, Sec 6.1, 6.4), Table 4 and Table 7 (MuMu, Sec 7.1.1,
7.5) and the words of highest information gain per genre (Sec 7.5): each a
section of W/report.md and a value of W/tables.json, built from what the
stages and `mmgenre prepare` saved (nothing is trained). A table whose
inputs the workdirs lack is listed under "Not drawn" with the reason, as
the figures are. Table 7 compares the two MuMu pipelines, so it is in the
combined report (`mmgenre report runs`), not in either pipeline's own.

  built, missing = tables.build([figure_inputs.Pipeline.read(w) for w in ws])
  lines = tables.markdown(built, missing)
  tables.write_json(out_dir, built)
"""

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from etils import epath

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.reporting import corpus_tables
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import genre_words
from mmgenre_jax.reporting import prediction_tables
from mmgenre_jax.reporting import sections


@dataclasses.dataclass(frozen=True)
class TableSpec:
  """A table of the paper: the datasets whose pipelines it is about, its
  builder (pipelines[, genres=...]) -> sections.Table, and whether the
  builder takes the genres asked for (`mmgenre report --genres`)."""
  datasets: Tuple[str, ...]
  build: Callable[..., sections.Table]
  takes_genres: bool = False


# name -> the table; the order of report.md and the keys of tables.json.
TABLES = {
    'table1': TableSpec(('msdi',), corpus_tables.table1),
    'table3': TableSpec(('msdi',), prediction_tables.table3),
    'table4': TableSpec(('mumu', 'catalog'), corpus_tables.table4),
    'table7': TableSpec(('mumu', 'catalog'), prediction_tables.table7),
    'genre_words': TableSpec(('mumu', 'catalog'), genre_words.genre_words,
                             takes_genres=True),
}


def build(pipelines: Sequence[figure_inputs.Pipeline],
          genres: Optional[Sequence[str]] = None
          ) -> Tuple[Dict[str, sections.Table], Dict[str, str]]:
  """(name -> Table, name -> why not built) of the tables about `pipelines`.

  A table is tried when one of the pipelines is of a dataset it is about
  (an MSD-I workdir gets no "Table 4: not drawn" line).

  Args:
    pipelines: the pipeline workdirs of one report.
    genres: the genres of the words-per-genre section (None: the paper's).
  """
  present = {p.info.get('dataset') for p in pipelines}
  built, missing = {}, {}
  for name, spec in TABLES.items():
    if not present & set(spec.datasets):
      continue
    options = {'genres': genres} if spec.takes_genres else {}
    try:
      built[name] = spec.build(pipelines, **options)
    except figure_inputs.MissingInput as e:
      missing[name] = str(e)
  return built, missing


def markdown(built: Dict[str, sections.Table],
             missing: Dict[str, str]) -> List[str]:
  """The tables' sections, then those not built with the reason."""
  if not built and not missing:
    return []
  lines = ['## The paper\'s other tables', '']
  for table in built.values():
    lines += [f'### {table.title}', ''] + list(table.lines) + ['']
  if missing:
    lines += ['Not drawn:', '']
    lines += [f'- `{name}`: {why}' for name, why in missing.items()]
    lines.append('')
  return lines


def write_json(out_dir, built: Dict[str, sections.Table]) -> None:
  """W/tables.json: name -> {'title', 'data'} of every table built."""
  value: Dict[str, Any] = {name: {'title': t.title, 'data': t.data}
                           for name, t in built.items()}
  workdir_lib.write_json(epath.Path(out_dir) / workdir_lib.TABLES_JSON,
                         value)

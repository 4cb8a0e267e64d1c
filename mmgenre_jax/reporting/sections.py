"""A report section built from a pipeline's saved files: what every table
builder of reporting/tables.py returns.

  table = Table(title='Table 1 (Sec 6.1): MSD-I instances per genre',
                lines=['| Genre | Train | ... |', ...],
                data={'rows': [...]})

`title` is the section's heading in W/report.md, `lines` the markdown
below it, `data` its value in W/tables.json (JSON-able: numbers, strings,
lists and dicts). A builder that cannot build its table from a workdir
raises figure_inputs.MissingInput with the reason, which the report lists
under "Not drawn", as for the figures.
"""

import dataclasses
from typing import Any, Dict, List


def holds(ok: bool) -> str:
  """How a report says whether one of the paper's findings holds."""
  return 'holds' if ok else 'does not hold'


@dataclasses.dataclass(frozen=True)
class Table:
  """One section of the report and its tables.json value."""
  title: str
  lines: List[str]
  data: Dict[str, Any]

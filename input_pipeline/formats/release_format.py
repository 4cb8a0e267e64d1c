"""What every reader of a release file shares: errors, headers, rows.

The MuMu CSV, the MSD-I TSV, the label list, the taxonomy and the review
dump are read the same way: with errors='surrogateescape' so that one bad
row or line can be named and left out (on_bad_row) instead of stopping the
whole file, and with every error naming the file, the line and the fix
(docs/data_formats.md §1).
"""

import os
import re
from typing import Callable, Dict, Mapping, Optional, Sequence

from input_pipeline import errors as input_errors

# Release files are read with errors='surrogateescape': a byte that is not
# UTF-8 becomes a lone surrogate, so the one bad row or line can be named and
# left out instead of the decoder stopping the whole file.
READ_ERRORS = 'surrogateescape'
UNDECODABLE = re.compile('[\udc80-\udcff]')
# on_bad_row(item_id, line, reason): a row left out, with the id it names
# ('' when none can be read), its line in the file and why.
OnBadRow = Callable[[str, int, str], None]


class DataFormatError(input_errors.InputError, ValueError):
  """A release file does not follow its documented format."""


def format_error(path, line: Optional[int], message: str,
                 column: Optional[str] = None) -> DataFormatError:
  """Builds an error that names the file, line and column at fault."""
  where = os.fspath(path)
  if line is not None:
    where += f', line {line}'
  if column is not None:
    where += f', column {column!r}'
  return DataFormatError(f'{where}: {message}')


def read_header(reader, path, required: Sequence[str],
                sep_name: str,
                optional: Sequence[str] = ()) -> Dict[str, int]:
  """Reads a header row and maps each required column to its position.

  Args:
    reader: a csv.reader positioned at the header.
    path: the file, for error messages.
    required: column names that must all be present (extra ones are ignored).
    sep_name: 'comma' or 'tab', for the hint when the separator is wrong.
    optional: column names mapped when present, left out of the result
      when absent.

  Returns:
    column name -> field index, for the required and the optional columns
    present.
  """
  try:
    header = next(reader)
  except StopIteration:
    raise format_error(
        path, 1, f'the file is empty; expected the header '
        f'{",".join(required)!r}.') from None
  header = [name.strip() for name in header]
  missing = [name for name in required if name not in header]
  if missing:
    hint = ''
    if len(header) == 1:
      hint = (f' The header has a single field: is the file {sep_name}-'
              'separated?')
    raise format_error(
        path, 1, f'missing column(s) {missing} in the header {header}; '
        f'expected the columns {list(required)}.{hint}')
  return {name: header.index(name)
          for name in (*required, *optional) if name in header}


class RowError(ValueError):
  """One data row is malformed (raised and caught inside the readers)."""

  def __init__(self, reason: str, column: Optional[str] = None):
    super().__init__(reason)
    self.reason, self.column = reason, column


def undecodable(text: str) -> Optional[str]:
  """Why text read with READ_ERRORS holds bytes that are not UTF-8, or None."""
  bad = UNDECODABLE.search(text)
  if bad is None:
    return None
  return (f'invalid UTF-8 (byte 0x{ord(bad.group()) - 0xdc00:02x} at '
          f'character {bad.start() + 1}); re-encode the file as UTF-8')


def row_values(row: Sequence[str], columns: Mapping[str, int], width: int,
               required: Sequence[str]) -> Dict[str, str]:
  """A data row's stripped values by column name; RowError when malformed."""
  if len(row) != width:
    raise RowError(f'{len(row)} fields where the header has {width} (row: '
                   f'{row!r}); quote values that contain the separator')
  reason = undecodable('\t'.join(row))
  if reason is not None:
    raise RowError(reason)
  values = {name: row[i].strip() for name, i in columns.items()}
  for name in required:
    if not values[name]:
      raise RowError('empty value; every row needs one', name)
  return values


def report_row(on_bad_row: Optional[OnBadRow], path, line: int,
               item_id: str, error: RowError) -> None:
  """Raises a DataFormatError (no on_bad_row) or reports the row left out."""
  if on_bad_row is None:
    raise format_error(path, line, error.reason + '.', error.column)
  where = f'column {error.column!r}: ' if error.column else ''
  on_bad_row(item_id, line, where + error.reason)


def duplicate_reason(first_line: int, first: Mapping[str, str],
                     values: Mapping[str, str], same: str,
                     artist_column: str) -> str:
  """Why a row repeating the item (`same`) of line `first_line` is left out.

  Args:
    first_line, first: the line and values of the item's first row.
    values: the repeating row's values (the same keys).
    same: what the rows share, e.g. 'MSD track id'.
    artist_column: named when the repeat gives the track another artist.
  """
  differ = [name for name in values if values[name] != first[name]]
  if not differ:
    what = f'same {same}, the same row'
  elif artist_column in differ:
    what = (f'same {same} under another artist: {artist_column} '
            f'{values[artist_column]!r}, line {first_line} has '
            f'{first[artist_column]!r}')
  else:
    what = f'same {same}; {", ".join(differ)} differ'
  return (f'duplicate of line {first_line} ({what}); the first row is the '
          'one used, remove this one')

"""What every reader of a user's text file shares: decoding, errors, rows.

Every text file a user gives is read one way (docs/data_formats.md §1.4):
the release files (MuMu CSV, MSD-I TSV, label list, taxonomy, review dump),
a catalog CSV, its review files, the split files, the enrichment dictionary
and finetune's labels CSV. `open_text` opens it (UTF-8 with or without a
BOM, any line end, `.gz` decompressed) with errors='surrogateescape', so
that a byte that is not UTF-8 is named with its line instead of a codec
traceback stopping the whole file; `Table` reads a CSV or TSV into records,
each with what is wrong with it (bad bytes, a NUL, a broken quote, a last
line cut short), `text_lines` a file of lines and `read_text` a whole one;
`bad_text` says what is wrong with a value. A reader then leaves the row
out and reports it (on_bad_row: file, line, column, fix) or, without
on_bad_row or for a file that defines what every item is (a header, the
label list, the taxonomy, the split files, the enrichment dictionary),
raises one error naming the file, line and fix.
"""

import csv
import gzip
import io
import os
import re
from typing import (Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from input_pipeline import errors as input_errors
from input_pipeline import fileio

# A byte that is not UTF-8 becomes a lone surrogate, so the one bad row or
# line can be named and left out instead of the decoder stopping the file.
READ_ERRORS = 'surrogateescape'
# What no value of a text file may hold: a byte that is not UTF-8 (read as a
# lone surrogate) or a NUL (binary data, or a file in another encoding).
_BAD_TEXT = re.compile('[\x00\udc80-\udcff]')
# What a report cannot show as it is: control characters and lone
# surrogates (a surrogate cannot even be written as UTF-8, so skipped.tsv
# would fail on one).
_UNPRINTABLE = re.compile('[\x00-\x1f\x7f\ud800-\udfff]')
# The first two bytes of a UTF-16 file (its BOM), as READ_ERRORS reads them.
_UTF16_BOMS = ('\udcff\udcfe', '\udcfe\udcff')
# csv refuses fields over 128 KiB by default; a value of several MB (a long
# list, a pasted review) is read like any other. csv's limit is per
# process, so it is only ever raised.
FIELD_LIMIT = 2**31 - 1
# The reason's tail for a record that is the file's last line, has no line
# end and is malformed: what an interrupted download or copy leaves.
TRUNCATED = ('the file ends inside this line, without a line end: it may '
             'be cut short (an interrupted download or copy); complete the '
             'line or remove it')
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


def open_text(path):
  """A user's text file, opened the one way every reader opens one.

  UTF-8 with or without a BOM (a spreadsheet's 'CSV UTF-8' export writes
  one) and any line end (CRLF, CR): both are normal and read silently. A
  byte that is not UTF-8 is kept as a lone surrogate (READ_ERRORS) for
  bad_text to name; a `.gz` file is read decompressed.
  """
  if os.fspath(path).endswith('.gz'):
    source = path if fileio.is_local(path) else fileio.open_binary(path)
    return gzip.open(source, 'rt', encoding='utf-8-sig', errors=READ_ERRORS,
                     newline='')
  return io.TextIOWrapper(fileio.open_binary(path), encoding='utf-8-sig',
                          errors=READ_ERRORS, newline='')


def bad_text(text: str) -> Optional[str]:
  """Why a value or line read by open_text is unusable, or None.

  It holds a byte that is not UTF-8 or a NUL; the reason names the first
  one, where it is and the fix.
  """
  bad = _BAD_TEXT.search(text)
  if bad is None:
    return None
  at = f'character {bad.start() + 1}'
  if bad.group() == '\x00':
    return (f'a NUL byte at {at}: binary data, or text in another encoding '
            '(UTF-16?); save the file as UTF-8 text')
  if bad.start() == 0 and text.startswith(_UTF16_BOMS):
    return ('the file is UTF-16 (it starts with a UTF-16 byte order '
            'mark); save it as UTF-8')
  return (f'invalid UTF-8 (byte 0x{ord(bad.group()) - 0xdc00:02x} at {at}); '
          're-encode the file as UTF-8')


def printable(text: str) -> str:
  """text for a report: a byte that is not UTF-8 as \\xff, a control
  character as \\x00 (a lone surrogate cannot be written as UTF-8)."""

  def escape(match) -> str:
    code = ord(match.group())
    if 0xdc80 <= code <= 0xdcff:
      return f'\\x{code - 0xdc00:02x}'
    return f'\\x{code:02x}' if code < 0x100 else f'\\u{code:04x}'

  return _UNPRINTABLE.sub(escape, text)


def text_lines(f) -> Iterator[Tuple[int, str, bool]]:
  """(line number from 1, the line without its line end, whether it had
  one) of each line of a file opened with open_text."""
  for number, line in enumerate(f, start=1):
    text = line.rstrip('\r\n')
    yield number, text, len(text) < len(line)


def read_text(path) -> str:
  """A whole text file (a review file), line ends as '\\n'.

  Raises:
    DataFormatError: a line holds bad_text, named with its line.
    OSError: the file cannot be read.
  """
  with open_text(path) as f:
    text = f.read()
  if _BAD_TEXT.search(text):
    # Lines as a file's iteration (and an editor) counts them.
    for number, line, _ in text_lines(io.StringIO(text, newline='')):
      reason = bad_text(line)
      if reason is not None:
        raise format_error(path, number, reason + '.')
  return re.sub('\r\n?', '\n', text)


class Table:
  """The records of a CSV or TSV file, each with what is wrong with it.

    with release_format.open_text(path) as f:
      table = release_format.Table(f, path)
      columns = table.header(['album_id'])
      for line, row, problem in table: ...

  Quoting is strict: a value quoted in part ('"a"b') or a quote left open
  is a problem of its record, not a silently mangled value.
  """

  def __init__(self, f, path, delimiter: str = ',', quoted: bool = True):
    """f: from open_text; quoted: False for TSVs without quoting."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    self.path, self.names = path, []
    self._last = ''
    self._sep = delimiter
    self._reader = csv.reader(
        self._lines(f), delimiter=delimiter, strict=True,
        quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)

  def _lines(self, f) -> Iterator[str]:
    for line in f:
      self._last = line  # The last line of the record read: its line end.
      yield line

  def header(self, required: Sequence[str],
             optional: Sequence[str] = ()) -> Dict[str, int]:
    """Reads the header: column name -> field index, for the required and
    the optional columns present (extra ones are ignored).

    Raises:
      DataFormatError: the file is empty, or its header is unusable (not
        UTF-8, a NUL, a broken quote, a required column missing).
    """
    try:
      header = next(self._reader)
    except StopIteration:
      raise format_error(
          self.path, 1, f'the file is empty; expected the header '
          f'{",".join((*required, *optional))!r}.') from None
    except csv.Error as e:
      raise format_error(self.path, 1, f'the header is not one row ({e}); '
                         'fix its quotes.') from None
    reason = bad_text(self._sep.join(header))
    if reason is not None:
      raise format_error(self.path, 1, f'the header: {reason}.')
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
      hint = ''
      if len(header) == 1:
        hint = (f' The header has a single field: is the file '
                f'{"comma" if self._sep == "," else "tab"}-separated?')
      raise format_error(
          self.path, 1, f'missing column(s) {missing} in the header '
          f'{header}; expected the columns {list(required)}.{hint}')
    self.names = header
    return {name: header.index(name)
            for name in (*required, *optional) if name in header}

  def __iter__(self) -> Iterator[Tuple[int, List[str], Optional['RowError']]]:
    """(the line it starts on, its fields, None or what is wrong with it)
    of each record that is not blank; a record whose quoting is broken has
    no fields."""
    while True:
      start = self._reader.line_num + 1
      try:
        row = next(self._reader)
      except StopIteration:
        return
      except csv.Error as e:
        yield start, [], self._quote_problem(start, e)
        continue
      if any(field.strip() for field in row):
        yield start, row, self._problem(row)

  def _quote_problem(self, start: int, error: csv.Error) -> 'RowError':
    end = self._reader.line_num
    where = f' (lines {start}-{end})' if end > start else ''
    if 'unexpected end of data' in str(error):
      return RowError(f'a quoted value is not closed{where}; {TRUNCATED}')
    return RowError(f'broken quoting ({error}){where}; quote a value whole '
                    '("a,b") and double the quotes inside it ("")')

  def _problem(self, row: Sequence[str]) -> Optional['RowError']:
    for i, field in enumerate(row):
      reason = bad_text(field)
      if reason is not None:
        return RowError(reason, self.names[i] if i < len(self.names) else None)
    if not self._last.endswith(('\n', '\r')) and len(row) < len(self.names):
      return RowError(f'{len(row)} fields where the header has '
                      f'{len(self.names)}; {TRUNCATED}')
    return None


class RowError(ValueError):
  """One data row is malformed (raised and caught inside the readers)."""

  def __init__(self, reason: str, column: Optional[str] = None):
    super().__init__(reason)
    self.reason, self.column = reason, column


def row_values(row: Sequence[str], columns: Mapping[str, int], width: int,
               required: Sequence[str]) -> Dict[str, str]:
  """A data row's stripped values by column name; RowError when malformed
  (the Table has reported its bytes)."""
  if len(row) != width:
    shown = repr(row)
    shown = shown if len(shown) <= 200 else shown[:200] + '...'
    raise RowError(f'{len(row)} fields where the header has {width} (row: '
                   f'{shown}); quote values that contain the separator')
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
  on_bad_row(printable(item_id), line, where + error.reason)


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

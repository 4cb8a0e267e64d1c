"""The damage corpus of issue 27: each damage written into a small valid file.

Every reader of a user's text file has a Sample here: a small valid file
(LF line ends, a final line end) and where its damages go. `write` puts
one damage into a copy of it:

  path = damage.write(damage.SAMPLES['catalog'], 'bad_id', tmp_path)

The damages (docs/data_formats.md §1.4): a byte that is not UTF-8 in a
value, in an id and in the header, a UTF-8 BOM, CRLF line ends, a NUL byte
in a value, a value of several MB and a last line cut short (in its first
field, with no line end, as an interrupted download leaves it).
"""

import codecs
import dataclasses
import pathlib
from typing import Dict, Optional, Tuple

DAMAGES = ('bad_value', 'bad_id', 'bad_header', 'bom', 'crlf', 'nul',
           'long_line', 'truncated')
# Characters long_line adds to a value: far over csv's 128 KiB field limit.
LONG = 3 * 2**20
BAD_BYTE = b'\xff'


@dataclasses.dataclass(frozen=True)
class Sample:
  """A valid file of one reader and where its damages go.

  Attributes:
    name: the file's name.
    text: the valid file.
    line: the line (from 1) of the data row that bad_value, bad_id, nul
      and long_line damage.
    item_id: that row's id (bad_id puts the bad byte before it); None when
      its rows have none.
    value: a value of that row that is not its id (bad_value and nul go
      after its first character, long_line after it); None when the id is
      the row's only value (then nul and long_line damage the id).
    header: whether the first line is a header (bad_header damages it).
    separator: the field separator; truncated keeps half of the last
      line's first field (of the whole line without one).
    columns: the header names of item_id and value, as a report names
      them; None for a file without columns.
    extra: other files the reader needs beside it: name -> text.
  """
  name: str
  text: str
  line: int
  item_id: Optional[str]
  value: Optional[str]
  header: bool = True
  separator: Optional[str] = None
  columns: Optional[Tuple[str, str]] = None
  extra: Dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def damages(self) -> Tuple[str, ...]:
    """The damages this file can have."""
    absent = {'bad_header': not self.header, 'bad_id': self.item_id is None,
              'bad_value': self.value is None}
    return tuple(d for d in DAMAGES if not absent.get(d))

  @property
  def last_line(self) -> int:
    """The line truncated cuts."""
    return self.text.count('\n')

  @property
  def rows(self) -> int:
    """Its data rows (non-blank lines after the header)."""
    return sum(1 for line in self.text.splitlines() if line.strip()) - (
        1 if self.header else 0)

  def cut_last(self) -> str:
    """What truncated leaves of the last line."""
    last = self.text.splitlines()[-1]
    first = last.split(self.separator)[0] if self.separator else last
    return last[:max(1, len(first) // 2)]


def _lines(text: str):
  return text.encode('utf-8').split(b'\n')


def _after_first(line: bytes, value: str, insert: bytes) -> bytes:
  """line with `insert` after the first character of its first `value`."""
  found = value.encode('utf-8')
  assert found in line, (value, line)
  return line.replace(found, found[:1] + insert + found[1:], 1)


def damaged(sample: Sample, damage: str) -> bytes:
  """The bytes of sample's file with `damage` (one of sample.damages)."""
  if damage not in sample.damages:
    raise ValueError(f'{sample.name} cannot have {damage!r}.')
  data = sample.text.encode('utf-8')
  if damage == 'bom':
    return codecs.BOM_UTF8 + data
  if damage == 'crlf':
    return data.replace(b'\n', b'\r\n')
  lines = _lines(sample.text)
  row = sample.line - 1
  value = sample.value if sample.value is not None else sample.item_id
  if damage == 'bad_value':
    lines[row] = _after_first(lines[row], sample.value, BAD_BYTE)
  elif damage == 'bad_id':
    found = sample.item_id.encode('utf-8')
    lines[row] = lines[row].replace(found, BAD_BYTE + found, 1)
  elif damage == 'bad_header':
    lines[0] = lines[0][:1] + BAD_BYTE + lines[0][1:]
  elif damage == 'nul':
    lines[row] = _after_first(lines[row], value, b'\x00')
  elif damage == 'long_line':
    found = value.encode('utf-8')
    lines[row] = lines[row].replace(found, found + b'x' * LONG, 1)
  elif damage == 'truncated':
    assert lines[-1] == b''
    return b'\n'.join(lines[:-2] + [sample.cut_last().encode('utf-8')])
  return b'\n'.join(lines)


def write(sample: Sample, damage: Optional[str],
          directory: pathlib.Path) -> pathlib.Path:
  """Writes sample's file (damaged, unless damage is None) and its extra
  files into directory; returns the file's path."""
  directory.mkdir(parents=True, exist_ok=True)
  for name, text in sample.extra.items():
    (directory / name).write_text(text, encoding='utf-8')
  path = directory / sample.name
  path.write_bytes(sample.text.encode('utf-8') if damage is None
                   else damaged(sample, damage))
  return path


def _table(*lines: str) -> str:
  return ''.join(f'{line}\n' for line in lines)


# One sample per reader of docs/data_formats.md §1.4; the MuMu samples are
# one corpus (the CSV's albums are those of the reviews, labels and splits).
SAMPLES = {
    'catalog': Sample(
        'catalog.csv', _table(
            'album_id,audio,cover,reviews,artist_id,labels',
            'A1,a1.wav,a1.png,a1.txt,ar1,Rock|Pop',
            'A2,a2.wav,a2.png,a2.txt,ar2,Jazz',
            'A3,a3.wav,a3.png,a3.txt,ar3,Pop',
            'A4,a4.wav,a4.png,a4.txt,ar4,Rock'),
        line=3, item_id='A2', value='ar2', separator=',',
        columns=('album_id', 'artist_id'),
        extra={f'a{i}.txt': 'Reviewed.\n' for i in range(2, 5)}),
    'review_text': Sample(
        'a1.txt', _table('Loud guitars and drums.', 'Anthemic riffs again.'),
        line=2, item_id=None, value='Anthemic', header=False),
    'finetune_labels': Sample(
        'labels.csv', _table('input,labels', 't1.wav,calm',
                             't2.wav,bright|calm', 't3.wav,bright',
                             't4.wav,calm'),
        line=3, item_id='t2.wav', value='bright|calm', separator=',',
        columns=('input', 'labels'),
        extra={f't{i}.wav': 'RIFF' for i in range(1, 5)}),
    'taxonomy': Sample(
        'genre_taxonomy.tsv', _table('label\tparent', 'Rock\t',
                                     'Bebop\tJazz', 'Jazz\t',
                                     'Indie Rock\tRock'),
        line=3, item_id='Bebop', value='Jazz', separator='\t',
        columns=('label', 'parent')),
    'enrichment': Sample(
        'enrichment.tsv', _table('Miles Davis\tJazz musicians,Trumpeters',
                                 'Blue Note\tRecord labels',
                                 'Nirvana\tGrunge bands'),
        line=2, item_id='Blue Note', value='Record labels', header=False,
        separator='\t', columns=('entity', 'categories')),
    'label_list': Sample(
        'genre_labels_MuMu.tsv', _table('Rock', 'Jazz', 'Pop', 'Blues'),
        line=2, item_id='Jazz', value=None, header=False),
    'splits': Sample(
        'items_index_train.tsv', _table('A1', 'A2', 'A3'), line=2,
        item_id='A2', value=None, header=False,
        extra={'items_index_val.tsv': 'A4\n', 'items_index_test.tsv': ''}),
    'release_splits': Sample(
        'items_index_train_mumu.tsv', _table('A1', 'A2', 'A3'), line=2,
        item_id='A2', value=None, header=False,
        extra={'items_index_val_mumu.tsv': 'A4\n',
               'items_index_test_mumu.tsv': ''}),
    'reviews': Sample(
        'reviews.jsonl', _table(
            '{"asin": "A1", "reviewText": "Loud guitars."}',
            '{"asin": "A2", "reviewText": "Smoky saxophone."}',
            '{"asin": "A3", "reviewText": "Slide guitar."}'),
        line=2, item_id='A2', value='Smoky saxophone.', header=False),
    'mumu': Sample(
        'MuMu_dataset_multi-label.csv', _table(
            'amazon_id,album_mbid,MSD_track_id,recording_mbid,artist_mbid,'
            'genres',
            'A1,mb1,T1,rec1,ar1,Rock',
            'A2,mb2,T2,rec2,ar2,"Jazz,Pop"',
            'A3,mb3,T3,rec3,ar3,Pop',
            'A4,mb4,T4,rec4,ar4,Blues'),
        line=3, item_id='T2', value='ar2', separator=',',
        columns=('MSD_track_id', 'artist_mbid')),
    'msdi': Sample(
        'MSD-I_dataset.tsv', _table(
            'msd_track_id\tgenre\talbum_index\tset\tmsd_artist_id\timage_url',
            'TRA\tRock\t1\ttrain\tAR1\ta.jpg',
            'TRB\tJazz\t2\ttrain\tAR2\tb.jpg',
            'TRC\tPop\t3\tval\tAR3\tc.jpg',
            'TRD\tRock\t4\ttest\tAR4\td.jpg'),
        line=3, item_id='TRB', value='AR2', separator='\t',
        columns=('msd_track_id', 'msd_artist_id')),
}

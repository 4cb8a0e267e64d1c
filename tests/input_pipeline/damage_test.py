"""Every reader of a user's text file, on the damage corpus (issue 27).

Each reader of docs/data_formats.md §1.4 reads each damage of
tests/helpers/damage.py: a byte that is not UTF-8 in a value, an id or the
header, a BOM, CRLF, a NUL, a value of several MB and a last line cut
short. A damaged row is one reported row (line, column, fix) and the rows
reconcile (read = kept + reported), or the file is one one-line error
naming the file, line and fix; never a codec traceback, never a silent
drop. Then the same damages through `mmgenre prepare`'s corpus readers
(skipped.tsv rows, the manifest's counts) and the issue's catalog through
the command line.
"""

import collections
import csv
import dataclasses
import json
import pathlib
from typing import Any, List, Optional, Tuple

import pytest

from helpers import damage
from input_pipeline import errors as input_errors
from input_pipeline import layout
from input_pipeline.features import text as text_lib
from input_pipeline.formats import catalog
from input_pipeline.formats import msdi
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format
from input_pipeline.formats import splits as splits_lib
from input_pipeline.prepare import catalog_items
from input_pipeline.prepare import corpus as prepare_corpus
from input_pipeline.prepare import release_items
from mmgenre_jax import cli
from mmgenre_jax.tagging.finetune import examples as examples_lib

SAMPLES = damage.SAMPLES
# Readers that leave a damaged row out and report it; the others are strict
# (their files define every item's labels, split or text, §1.4).
ROW_READERS = ('catalog', 'finetune_labels', 'reviews', 'mumu', 'msdi')
# Strict readers whose last line cut short is still a valid line: it is read
# as it is (prepare then reports what it names, test_prepare_*).
CUT_IS_READ = ('label_list', 'splits', 'release_splits', 'review_text')
FIXES = {'bad_value': 're-encode the file as UTF-8',
         'bad_id': 're-encode the file as UTF-8',
         'bad_header': 're-encode the file as UTF-8',
         'nul': 'save the file as UTF-8 text',
         'truncated': 'cut short'}


@dataclasses.dataclass
class Outcome:
  """What a reader made of a file.

  Attributes:
    kept: the ids of the rows kept, in file order.
    reports: (line, item id or None, reason) of each row left out.
    read: data rows read, by the reader's own count (None: it has none).
    longest: the length of the longest value kept.
  """
  kept: List[str]
  reports: List[Tuple[int, Optional[str], str]] = dataclasses.field(
      default_factory=list)
  read: Optional[int] = None
  longest: int = 0


def _longest(value: Any) -> int:
  if isinstance(value, str):
    return len(value)
  if dataclasses.is_dataclass(value):
    value = vars(value)
  if isinstance(value, dict):
    value = [*value.keys(), *value.values()]
  if isinstance(value, (list, tuple, set, frozenset)):
    return max(map(_longest, value), default=0)
  return 0


def _catalog(path: pathlib.Path) -> Outcome:
  bad = []
  rows, _, read = catalog.read_rows(path, lambda *r: bad.append(r))
  return Outcome([row.album_id for row in rows],
                 [(line, item, why) for item, line, why in bad], read,
                 _longest([(row.artist_ids, row.labels) for row in rows]))


def _finetune(path: pathlib.Path) -> Outcome:
  examples, skipped = examples_lib.read_labels(path)
  reports = []
  for text in skipped:
    line, reason = text.removeprefix(f'{path}:').split(': ', 1)
    reports.append((int(line), None, reason))
  return Outcome([item.key for item, _ in examples], reports,
                 longest=_longest([labels for _, labels in examples]))


def _reviews(path: pathlib.Path) -> Outcome:
  bad = []
  found = text_lib.read_reviews(path, on_bad_line=lambda *r: bad.append(r))
  return Outcome([a for a, texts in found.texts.items() for _ in texts],
                 [(line, None, why) for _, line, why in bad], found.lines,
                 _longest(found.texts))


def _mumu(path: pathlib.Path) -> Outcome:
  bad = []
  dataset = mumu.load_mumu(path, on_bad_row=lambda *r: bad.append(r))
  return Outcome([t for a in dataset.albums.values() for t in a.track_ids],
                 [(line, item, why) for item, line, why in bad],
                 dataset.rows, _longest(dataset.albums))


def _msdi(path: pathlib.Path) -> Outcome:
  bad = []
  dataset = msdi.load_msdi(path, on_bad_row=lambda *r: bad.append(r))
  return Outcome(list(dataset.tracks),
                 [(line, item, why) for item, line, why in bad],
                 dataset.rows, _longest(dataset.tracks))


def _strict(read, ids=list):
  """The Outcome of a strict reader: read(path) -> what ids() lists."""
  def outcome(path: pathlib.Path) -> Outcome:
    found = read(path)
    return Outcome(ids(found), longest=_longest(found))
  return outcome


READERS = {
    'catalog': _catalog,
    'finetune_labels': _finetune,
    'reviews': _reviews,
    'mumu': _mumu,
    'msdi': _msdi,
    'taxonomy': _strict(mumu.read_taxonomy),
    'enrichment': _strict(text_lib.read_enrichment),
    'label_list': _strict(mumu.read_label_list),
    'splits': _strict(lambda path: splits_lib.read_splits(path.parent),
                      lambda found: found['train']),
    'release_splits': _strict(
        lambda path: splits_lib.release_sets(path.parent),
        lambda found: found[0].splits['train']),
    'review_text': _strict(release_format.read_text, str.splitlines),
}
CASES = [(reader, kind) for reader in READERS
         for kind in SAMPLES[reader].damages]


def expected(reader: str, kind: str) -> Tuple[str, Optional[int]]:
  """(what the reader does with the damage, the line it names)."""
  sample = SAMPLES[reader]
  if kind in ('bom', 'crlf'):
    return 'same', None
  if kind == 'long_line':
    return 'long', None
  if kind == 'bad_header':
    return 'error', 1
  if kind == 'truncated':
    if reader in CUT_IS_READ:
      return 'cut', None
    line = sample.last_line
  else:
    line = sample.line
  return ('skip' if reader in ROW_READERS else 'error'), line


def _column(sample: damage.Sample, kind: str) -> Optional[str]:
  """The column a report of the damage names (None: it names none)."""
  if sample.columns is None or kind not in ('bad_value', 'bad_id', 'nul'):
    return None
  return sample.columns[0 if kind == 'bad_id' else 1]


def test_the_corpus_covers_every_reader_and_damage():
  assert set(READERS) == set(SAMPLES)
  assert {kind for _, kind in CASES} == set(damage.DAMAGES)


@pytest.mark.parametrize('reader', list(READERS))
def test_the_valid_sample_is_read_whole(reader, tmp_path):
  sample = SAMPLES[reader]
  outcome = READERS[reader](damage.write(sample, None, tmp_path))
  assert outcome.reports == []
  assert len(outcome.kept) == sample.rows


@pytest.mark.parametrize('reader,kind', CASES)
def test_damage(reader, kind, tmp_path):
  sample = SAMPLES[reader]
  clean = READERS[reader](damage.write(sample, None, tmp_path / 'clean'))
  path = damage.write(sample, kind, tmp_path / 'damaged')
  what, line = expected(reader, kind)
  if what == 'error':
    with pytest.raises(input_errors.InputError) as raised:
      READERS[reader](path)
    message = str(raised.value)
    assert '\n' not in message and str(path) in message
    assert f'line {line}' in message and FIXES[kind] in message, message
    if _column(sample, kind):
      assert f"column '{_column(sample, kind)}'" in message
    return
  outcome = READERS[reader](path)
  # Every row is read once: kept or reported, none silently dropped.
  read = outcome.read if outcome.read is not None else sample.rows
  assert read == sample.rows == len(outcome.kept) + len(outcome.reports)
  if what == 'same':
    assert outcome.kept == clean.kept and not outcome.reports
    assert outcome.longest == clean.longest
  elif what == 'long':
    assert not outcome.reports and outcome.longest > damage.LONG
    assert len(outcome.kept) == len(clean.kept)
  elif what == 'cut':
    assert outcome.kept == clean.kept[:-1] + [sample.cut_last()]
  else:
    [(at, item, reason)] = outcome.reports
    assert at == line and FIXES[kind] in reason, reason
    if _column(sample, kind):
      assert reason.startswith(f"column '{_column(sample, kind)}': "), reason
    if kind == 'bad_id' and item is not None:
      assert item == '\\xff' + sample.item_id  # Printable, not a surrogate.
    gone = len(clean.kept) - len(outcome.kept)
    assert gone == 1, (clean.kept, outcome.kept)


def test_a_quote_left_open_is_one_reported_row(tmp_path):
  sample = SAMPLES['catalog']
  path = tmp_path / 'catalog.csv'
  # A quote opened in line 3 and never closed: lines 3-5 are one record.
  path.write_text(sample.text.replace('ar2,Jazz', '"ar2,Jazz'))
  outcome = _catalog(path)
  assert outcome.kept == ['A1']
  [(line, _, reason)] = outcome.reports
  assert line == 3 and 'lines 3-5' in reason and 'not closed' in reason
  assert outcome.read == 2  # The record of lines 3-5 is one row.
  path.write_text(sample.text.replace('ar2,Jazz', 'ar2,"Ja"zz'))
  [(line, _, reason)] = _catalog(path).reports
  assert line == 3 and 'double the quotes' in reason


def test_a_utf16_file_is_named_as_such(tmp_path):
  path = tmp_path / 'catalog.csv'
  path.write_bytes(SAMPLES['catalog'].text.encode('utf-16'))
  with pytest.raises(release_format.DataFormatError,
                     match=r'line 1: the header: the file is UTF-16 .*save '
                     'it as UTF-8'):
    catalog.read_rows(path)


def test_printable_escapes_what_cannot_be_written():
  assert release_format.printable('A\udcffB\x00\t') == 'A\\xffB\\x00\\x09'
  assert release_format.printable('\ud800ok') == '\\ud800ok'
  assert release_format.printable('Caf\u00e9') == 'Caf\u00e9'


def test_skip_log_writes_ids_and_paths_that_are_not_utf8(tmp_path):
  skips = prepare_corpus.SkipLog()
  skips.add('metadata', '', 'A\udcff', 'dir/\udce9.csv', 'line 2: why')
  skips.write(tmp_path / 'skipped.tsv')
  text = (tmp_path / 'skipped.tsv').read_text(encoding='utf-8')
  assert 'A\\xff\tdir/\\xe9.csv\tline 2: why' in text


# ------------------------------------------------- through prepare's readers

# The corpus each file of the matrix belongs to, and the stage and budget
# kind of its reported rows.
CORPUS_FILES = {
    'catalog': ('catalog', 'metadata', 'rows'),
    'review_text': ('catalog', 'reviews', None),
    'mumu': ('mumu', 'metadata', 'rows'),
    'reviews': ('mumu', 'reviews', 'review_lines'),
    'label_list': ('mumu', None, None),
    'taxonomy': ('mumu', None, None),
    'splits': ('mumu', None, None),
    'msdi': ('msdi', 'metadata', 'rows'),
}
PREPARE_CASES = [(name, kind) for name in CORPUS_FILES
                 for kind in SAMPLES[name].damages]


def _corpus(dataset: str, root: pathlib.Path, damaged: str, kind):
  """Writes the corpus with `damaged`'s file damaged (kind None: clean) and
  reads it as prepare does: (Corpus, skipped.tsv rows)."""
  for name, (owner, _, _) in CORPUS_FILES.items():
    if owner == dataset:
      where = root / 'splits' if name == 'splits' else root
      damage.write(SAMPLES[name], kind if name == damaged else None, where)
  skips = prepare_corpus.SkipLog()
  if dataset == 'catalog':
    found = catalog_items.load_catalog_corpus(root / 'catalog.csv',
                                              skips=skips)
  elif dataset == 'mumu':
    found = release_items.load_mumu_corpus(root, splits=root / 'splits',
                                           skips=skips)
  else:
    found = release_items.load_msdi_corpus(root, skips=skips)
  skips.write(root / 'skipped.tsv')  # Whatever the ids: issue 27.
  with open(root / 'skipped.tsv', newline='', encoding='utf-8') as f:
    rows = list(csv.DictReader(f, delimiter='\t'))
  for row in rows:  # Relative, so that two corpora's rows compare.
    for key, value in row.items():
      row[key] = value.replace(f'{root}/', '')
  return found, rows


def _counts_reconcile(found) -> None:
  for counts in found.metadata.values():
    assert counts['read'] == counts['kept'] + counts['skipped']


@pytest.mark.parametrize('name,kind', PREPARE_CASES)
def test_prepare_reports_each_damage(name, kind, tmp_path):
  dataset, stage, budget = CORPUS_FILES[name]
  clean, clean_rows = _corpus(dataset, tmp_path / 'clean', None, None)
  what, line = expected(name, kind)
  if name == 'review_text':
    # One album's text: a damaged one is skipped, one cut short is a text.
    what = {'error': 'skip', 'cut': 'same'}.get(what, what)
  elif what == 'long' and SAMPLES[name].value is None:
    what = 'cut'  # An id made long names nothing, like one cut short.
  if what == 'error':
    with pytest.raises(input_errors.InputError) as raised:
      _corpus(dataset, tmp_path / 'damaged', name, kind)
    assert '\n' not in str(raised.value) and f'line {line}' in str(
        raised.value)
    return
  found, rows = _corpus(dataset, tmp_path / 'damaged', name, kind)
  _counts_reconcile(found)
  new = list((collections.Counter(map(json.dumps, rows)) - collections.Counter(
      map(json.dumps, clean_rows))).elements())
  new = [json.loads(row) for row in new]
  if what in ('same', 'long'):
    assert not new and found.metadata == clean.metadata
    return
  if what == 'cut':
    # A label or split id cut short names nothing: what it should have
    # named is reported (an unknown label, an album in no split file).
    assert new and all(row['stage'] in ('labels', 'metadata') for row in new)
    return
  reported = [row for row in new if row['stage'] == stage and
              row['path'] == SAMPLES[name].name]
  assert reported, new
  assert reported[0]['reason'].startswith(f'line {line}: ')
  assert FIXES[kind] in reported[0]['reason']
  if budget is not None:
    counts = found.metadata[budget]
    assert counts['read'] == clean.metadata[budget]['read']
    assert counts['skipped'] == clean.metadata[budget]['skipped'] + 1


# ------------------------------------------------------- the catalog


@pytest.fixture(scope='module')
def tiny_catalog(tmp_path_factory) -> pathlib.Path:
  """A MuMu corpus of the hand-made helper, written as a catalog."""
  # pylint: disable-next=g-import-not-at-top
  from helpers import mumu_corpus
  root = tmp_path_factory.mktemp('tiny_catalog')
  mumu_corpus.make_corpus(root)
  return catalog.write_from_mumu(root)


def _prepare_cli(csv_path, out):
  return cli.main(['prepare', '--dataset', 'catalog', '--manifest',
                   str(csv_path), '--out', str(out), '--image-size', '16',
                   '--shard-size', '4', '--no-windows', '--no-progress',
                   '--workers', '1', '--max-skip-fraction', '1'])


def test_prepare_cli_skips_a_catalog_row_that_is_not_utf8(tiny_catalog,
                                                           tmp_path, capsys):
  lines = tiny_catalog.read_bytes().split(b'\n')
  album_id = lines[1].split(b',')[0].decode()
  lines[1] = b'\xff' + lines[1]  # The issue: a bad byte in an album_id.
  lines[2] += b'\xff'  # And one in a value (its last cell).
  bad = tiny_catalog.parent / 'bad_catalog.csv'
  bad.write_bytes(b'\n'.join(lines))
  out = tmp_path / 'out'
  assert _prepare_cli(bad, out) == 0, capsys.readouterr().err
  manifest = json.loads((out / layout.MANIFEST_JSON).read_text())
  rows = manifest['metadata']['counts']['rows']
  assert rows['skipped'] == 2 and rows['read'] == rows['kept'] + 2
  with open(out / layout.SKIPPED_TSV, newline='', encoding='utf-8') as f:
    skipped = [r for r in csv.DictReader(f, delimiter='\t')
               if r['stage'] == 'metadata']
  assert [r['reason'].split(':')[0] for r in skipped] == ['line 2', 'line 3']
  assert skipped[0]['item_id'] == f'\\xff{album_id}'
  assert "column 'album_id': invalid UTF-8" in skipped[0]['reason']
  assert 're-encode the file as UTF-8' in skipped[1]['reason']


def test_prepare_cli_a_catalog_header_not_utf8_is_one_line(tiny_catalog,
                                                           tmp_path, capsys):
  bad = tiny_catalog.parent / 'bad_header.csv'
  bad.write_bytes(b'\xff' + tiny_catalog.read_bytes())
  out = tmp_path / 'out'
  assert _prepare_cli(bad, out) == input_errors.EXIT_CODE
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'Traceback' not in err
  assert err.startswith('mmgenre prepare: error: ')
  assert f'{bad}, line 1: the header: invalid UTF-8' in err
  assert not (out / layout.MANIFEST_JSON).exists()

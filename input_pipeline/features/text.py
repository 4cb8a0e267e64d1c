"""Review text features (paper Sec 3.3, 7.3.2).

The reviews of each album read from reviews.jsonl (`read_reviews`: a
malformed line is reported and left out, or an error), joined in order and
truncated at about 1,500 characters at a sentence end (`aggregate_reviews`);
optional semantic enrichment, the categories of linked entities appended as
words (`read_enrichment`, `enrich`); tf-idf fitted on the training split
(`fit_tfidf`) and saved as JSON (`save_vectorizer`, `load_vectorizer`).

The enrichment and vectorizer readers raise `features.FeatureError` naming
the file and the reason; `read_reviews`, like the other release-format
readers, a `release_format.DataFormatError` naming the file and line.
"""

import ast
import collections
import dataclasses
import json
import os
import re
from typing import (Collection, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

from absl import logging
import numpy as np
from sklearn.feature_extraction import text as sklearn_text

from input_pipeline import features
from input_pipeline import fileio
from input_pipeline.formats import release_format

# path, reason -> a features.FeatureError naming the file.
_error = features.error

MAX_TEXT_CHARS = 1500
# tf-idf settings of the authors' code (docs/fidelity.md; 10k words: Sec 7.3.2).
TFIDF_SETTINGS = {'sublinear_tf': True, 'max_df': 0.5, 'max_features': 10000}
VECTORIZER_FORMAT = 'mmgenre_jax.tfidf'
VECTORIZER_VERSION = 1
# A sentence ends with . ! or ? (possibly repeated, possibly followed by a
# closing quote or bracket) before whitespace: "3.5" and "U2.0" are not ends.
_SENTENCE_END = re.compile(r'[.!?]+[\'")\]\u2019\u201d]*(?=\s)')
_WHITESPACE = re.compile(r'\s+')
_WORD = re.compile(r'\w+')
_NON_WORD = re.compile(r'\W+')


def _parse_review(line: str) -> Tuple[str, object]:
  """(asin, reviewText) of a review line; release_format.RowError when malformed."""
  reason = release_format.bad_text(line)
  if reason is not None:
    raise release_format.RowError(reason)
  try:
    review = json.loads(line)
  except (ValueError, RecursionError) as e:
    # The original Amazon review dumps are Python dict literals ("loose json").
    try:
      review = ast.literal_eval(line)
    except Exception:  # pylint: disable=broad-except
      # Anything literal_eval rejects (SyntaxError, TypeError on an
      # unhashable key, RecursionError on deep nesting) is one bad line.
      # JSONDecodeError's own "line 1 column 5" would read as a file line.
      why = (f'{e.msg.removesuffix(" at")} at character {e.pos + 1}'
             if isinstance(e, json.JSONDecodeError) else type(e).__name__)
      raise release_format.RowError(f'not a JSON object ({why}); expected one review '
                          'per line with keys asin and reviewText') from None
  if not isinstance(review, dict):
    raise release_format.RowError(f'a {type(review).__name__}, expected a JSON object')
  asin = review.get('asin')
  if not isinstance(asin, str) or not asin.strip():
    raise release_format.RowError('missing or empty asin (the album amazon_id)', 'asin')
  return asin.strip(), review.get('reviewText')


@dataclasses.dataclass
class Reviews:
  """What read_reviews read.

  Attributes:
    texts: album_id -> its non-empty review texts, in file order; albums
      without one are absent.
    lines: non-blank lines of the file.
    skipped_lines: malformed lines left out (given to on_bad_line).
  """
  texts: Dict[str, List[str]]
  lines: int = 0
  skipped_lines: int = 0


def read_reviews(path,
                 album_ids: Optional[Collection[str]] = None,
                 *,
                 on_bad_line: Optional[release_format.OnBadRow] = None) -> Reviews:
  """Reads Amazon reviews (reviews.jsonl, optionally .gz).

  Args:
    path: one JSON object (or Python dict literal) per line with at least
      `asin` (= amazon_id) and `reviewText`.
    album_ids: keep only these albums (all when None).
    on_bad_line: None: a malformed line (not a JSON object, no asin, bytes
      that are not UTF-8, a NUL, a last line cut short) is a
      release_format.DataFormatError naming the file and line. Otherwise
      the line is left out and reported as on_bad_line('', line number,
      reason) (a malformed line names no album), and the rest of the file
      is read.

  Returns:
    Reviews. A review whose reviewText is missing or empty is a valid
    review with no text: it is counted (logged), not reported.
  """
  wanted = None if album_ids is None else set(album_ids)
  result = Reviews(collections.defaultdict(list))
  empty = 0
  with release_format.open_text(path) as f:
    for line_number, line, ended in release_format.text_lines(f):
      if not line.strip():
        continue
      result.lines += 1
      try:
        asin, text = _parse_review(line)
      except release_format.RowError as e:
        if not ended:
          e.reason += f'; {release_format.TRUNCATED}'
        release_format.report_row(on_bad_line, path, line_number, '', e)
        result.skipped_lines += 1
        continue
      if wanted is not None and asin not in wanted:
        continue
      if not isinstance(text, str) or not text.strip():
        empty += 1
        continue
      result.texts[asin].append(text)
  if empty:
    logging.info('%s: %d review(s) without reviewText skipped.', path, empty)
  result.texts = dict(result.texts)
  return result


def truncate_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
  """Cuts `text` to at most `max_chars`, dropping the unfinished sentence.

  Cuts after the last sentence end ([.!?]) at or before `max_chars`; with no
  sentence end there, at the last whitespace; with no whitespace either, at
  `max_chars` exactly. A text that fits is returned unchanged.
  """
  if len(text) <= max_chars:
    return text
  # One character more, so a sentence end or a space at the limit counts.
  head = text[:max_chars + 1]
  ends = [m.end() for m in _SENTENCE_END.finditer(head)
          if m.end() <= max_chars]
  if ends:
    return head[:ends[-1]]
  space = max(head.rfind(' '), max((m.start() for m in
                                    _WHITESPACE.finditer(head)), default=-1))
  if space > 0:
    return head[:space].rstrip()
  return text[:max_chars]


def aggregate_reviews(reviews: Sequence[str], *,
                      max_chars: int = MAX_TEXT_CHARS) -> str:
  """The text of an album: its reviews in order, truncated (Sec 7.3.2).

  Each review's whitespace runs (newlines, tabs) become single spaces and
  empty reviews are skipped; the reviews are joined with a space, then
  `truncate_text` keeps at most `max_chars` characters ending at a sentence
  end.

  Args:
    reviews: the review texts of one album, in file order.
    max_chars: the length limit (paper: about 1,500 characters).

  Returns:
    text: str, '' when every review is empty.
  """
  if isinstance(reviews, str):
    raise TypeError('aggregate_reviews takes a sequence of review strings, '
                    'not one string.')
  parts = [_WHITESPACE.sub(' ', r).strip() for r in reviews if r]
  return truncate_text(' '.join(p for p in parts if p), max_chars)


def read_enrichment(path) -> Dict[str, List[str]]:
  """Reads an entity-linking dictionary (docs/data_formats.md §1).

  Each line is `entity<TAB>category1,category2,...`; blank lines and lines
  starting with '#' are skipped. An entity listed twice gets the union of its
  categories (first-seen order). The dictionary enriches every album, so a
  malformed line (no tab, no entity, not UTF-8, a NUL) is an error naming
  it, never left out (docs/data_formats.md §1.4).

  Args:
    path: enrichment.tsv.

  Returns:
    dictionary: {entity: [category, ...]}.

  Raises:
    FeatureError: a missing file or a malformed line (names the line).
  """
  path = os.fspath(path)
  try:
    with release_format.open_text(path) as f:
      lines = list(release_format.text_lines(f))
  except OSError as e:
    raise _error(path, f'cannot read the enrichment dictionary ({e})') from e
  dictionary: Dict[str, List[str]] = {}
  for number, line, ended in lines:
    if not line.strip() or line.startswith('#'):
      continue
    for column, part in zip(('entity', 'categories'), line.split('\t', 1)):
      reason = release_format.bad_text(part)
      if reason is not None:
        raise _error(path, f'line {number}, column {column!r}: {reason}')
    if '\t' not in line:
      cut = '' if ended else f'; {release_format.TRUNCATED}'
      raise _error(path, f'line {number}: expected "entity<TAB>category1,'
                   f'category2,..." but found no tab in {line[:200]!r}{cut}')
    entity, categories = line.split('\t', 1)
    entity = entity.strip()
    if not entity:
      raise _error(path, f'line {number}: empty entity in {line!r}')
    if not _WORD.search(entity):
      logging.warning('%s: line %d: entity %r has no word characters and can '
                      'never match; ignored.', path, number, entity)
      continue
    cats = [c.strip() for c in categories.split(',') if c.strip()]
    known = dictionary.setdefault(entity, [])
    known.extend(c for c in cats if c not in known)
  return dictionary


class _EntityIndex:
  """Entities as lower-case word tuples, for word-sequence lookup.

  Matching word n-grams in a hash table costs O(text words x longest entity)
  whatever the dictionary size (Babelfy-sized dictionaries have ~10^5
  entities, too many for one regex alternation).
  """

  def __init__(self, dictionary: Mapping[str, Sequence[str]]):
    self.categories: Dict[Tuple[str, ...], List[str]] = {}
    for entity, cats in dictionary.items():
      key = tuple(w.lower() for w in _WORD.findall(entity))
      if key:
        known = self.categories.setdefault(key, [])
        known.extend(c for c in cats if c not in known)
    self.longest = max(map(len, self.categories), default=0)

  def find(self, text: str) -> List[Tuple[str, ...]]:
    """Entities found, longest match first at each word, in text order."""
    words = [w.lower() for w in _WORD.findall(text)]
    found, i = [], 0
    while i < len(words):
      for n in range(min(self.longest, len(words) - i), 0, -1):
        key = tuple(words[i:i + n])
        if key in self.categories:
          found.append(key)
          i += n
          break
      else:
        i += 1
    return found


# One cached index: prepare enriches every album with the same dictionary.
_INDEX_CACHE: List = [None, None, -1]  # [dictionary, index, len(dictionary)]


def _entity_index(dictionary) -> _EntityIndex:
  if isinstance(dictionary, _EntityIndex):
    return dictionary
  cached, index, size = _INDEX_CACHE
  if cached is not dictionary or size != len(dictionary):
    index = _EntityIndex(dictionary)
    _INDEX_CACHE[:] = [dictionary, index, len(dictionary)]
  return index


def category_word(category: str) -> str:
  """A category as one token: 'Jazz fusion' -> 'Jazz_fusion'."""
  return _NON_WORD.sub('_', category.strip()).strip('_')


def enrich(text: str, dictionary: Mapping[str, Sequence[str]]) -> str:
  """Appends the categories of the entities mentioned in `text` (Sec 3.3).

  An entity matches case-insensitively as a whole word or phrase (its words
  in sequence, any punctuation or spacing between them); overlapping
  mentions go to the longest entity. The categories of the distinct entities
  found are appended once each, in order of first mention, as single words
  (non-word characters become underscores: 'Rock and roll' ->
  'Rock_and_roll'), so tf-idf sees them as vocabulary terms.

  Args:
    text: album text (`aggregate_reviews`).
    dictionary: {entity: [category, ...]} (`read_enrichment`).

  Returns:
    text, followed by a space and the category words when any entity is
    found; otherwise `text` unchanged.
  """
  index = _entity_index(dictionary)
  words: List[str] = []
  for key in index.find(text):
    for category in index.categories[key]:
      word = category_word(category)
      if word and word not in words:
        words.append(word)
  return f'{text} {" ".join(words)}' if words else text


def fit_tfidf(train_texts: Iterable[str], *,
              max_features: int = TFIDF_SETTINGS['max_features'],
              max_df: float = TFIDF_SETTINGS['max_df'],
              sublinear_tf: bool = TFIDF_SETTINGS['sublinear_tf']
              ) -> sklearn_text.TfidfVectorizer:
  """Fits the tf-idf vector space model on the training texts only.

  Args:
    train_texts: the album texts of the training split.
    max_features: vocabulary size (the most frequent terms).
    max_df: terms in more than this fraction of the texts are dropped.
    sublinear_tf: use 1 + log(tf).

  Returns:
    A fitted sklearn TfidfVectorizer; `.transform(texts)` gives a sparse
    [n_texts, vocabulary] matrix with L2-normalised rows.

  Raises:
    FeatureError: no texts, or no term survives the max_df pruning (too few
      or too similar texts).
  """
  texts = list(train_texts)
  if not texts:
    raise features.FeatureError('fit_tfidf: no training texts to fit the '
                                'tf-idf vectorizer on.')
  vectorizer = sklearn_text.TfidfVectorizer(
      sublinear_tf=sublinear_tf, max_df=max_df, max_features=max_features)
  try:
    vectorizer.fit(texts)
  except ValueError as e:
    raise features.FeatureError(
        f'fit_tfidf: cannot fit on {len(texts)} training texts ({e}); '
        f'max_df={max_df} drops every term found in more than that fraction '
        'of the texts, so a handful of texts, or identical ones, leave no '
        'vocabulary: use more training albums.') from e
  return vectorizer


_SAVED_PARAMS = ('sublinear_tf', 'max_df', 'min_df', 'max_features',
                 'lowercase', 'token_pattern', 'ngram_range', 'analyzer',
                 'strip_accents', 'stop_words', 'norm', 'use_idf',
                 'smooth_idf', 'binary', 'encoding', 'decode_error')


def save_vectorizer(vectorizer: sklearn_text.TfidfVectorizer, path) -> None:
  """Writes a fitted vectorizer as JSON (vocabulary, idf, settings), atomically.

  The JSON holds `terms` (the vocabulary, ordered by column), `idf` (float64
  values, which JSON round-trips exactly) and the settings needed by
  `.transform`, so `load_vectorizer` gives identical output. Custom
  callables (tokenizer, preprocessor) cannot be saved.
  """
  params = vectorizer.get_params()
  for name in ('tokenizer', 'preprocessor'):
    if params.get(name) is not None:
      raise ValueError(f'save_vectorizer cannot save a custom {name}.')
  if not hasattr(vectorizer, 'vocabulary_'):
    raise ValueError('save_vectorizer needs a fitted vectorizer; call '
                     'fit_tfidf first.')
  settings = {name: params[name] for name in _SAVED_PARAMS}
  settings['ngram_range'] = list(settings['ngram_range'])
  if settings['stop_words'] is not None and not isinstance(
      settings['stop_words'], str):
    settings['stop_words'] = sorted(settings['stop_words'])
  settings['dtype'] = np.dtype(params['dtype']).name
  terms = [''] * len(vectorizer.vocabulary_)
  for term, column in vectorizer.vocabulary_.items():
    terms[int(column)] = term
  payload = {
      'format': VECTORIZER_FORMAT,
      'version': VECTORIZER_VERSION,
      'settings': settings,
      'terms': terms,
      'idf': [float(v) for v in vectorizer.idf_] if settings['use_idf']
             else None,
  }
  # Atomic: prepare's output directory never holds half a vectorizer.
  fileio.write_atomic(path, json.dumps(payload, ensure_ascii=False).encode(
      'utf-8'))


def load_vectorizer(path) -> sklearn_text.TfidfVectorizer:
  """Reads a `save_vectorizer` JSON file into a ready-to-use vectorizer.

  Raises:
    FeatureError: missing file, not JSON, or not a saved vectorizer.
  """
  path = os.fspath(path)
  try:
    with open(path, encoding='utf-8') as f:
      payload = json.load(f)
  except (OSError, ValueError) as e:
    raise _error(path, f'cannot read the tf-idf vectorizer ({e})') from e
  if not isinstance(payload, dict) or payload.get(
      'format') != VECTORIZER_FORMAT:
    raise _error(path, f'not a tf-idf vectorizer file (expected "format": '
                 f'"{VECTORIZER_FORMAT}"); write it with save_vectorizer')
  if payload.get('version') != VECTORIZER_VERSION:
    raise _error(path, f'vectorizer file version {payload.get("version")} is '
                 f'not {VECTORIZER_VERSION}; re-run mmgenre prepare')
  try:
    settings = dict(payload['settings'])
    terms = payload['terms']
    idf = payload['idf']
    settings['ngram_range'] = tuple(settings['ngram_range'])
    if isinstance(settings['stop_words'], list):
      settings['stop_words'] = frozenset(settings['stop_words'])
    settings['dtype'] = np.dtype(settings['dtype']).type
    vectorizer = sklearn_text.TfidfVectorizer(
        vocabulary={t: i for i, t in enumerate(terms)}, **settings)
    if settings['use_idf']:
      if len(idf) != len(terms):
        raise ValueError(f'{len(idf)} idf values for {len(terms)} terms')
      vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
    else:
      # Builds the fixed vocabulary; without idf there is nothing to learn.
      vectorizer.fit([' '.join(terms)])
  except (KeyError, TypeError, ValueError) as e:
    raise _error(path, f'malformed tf-idf vectorizer file ({e})') from e
  return vectorizer

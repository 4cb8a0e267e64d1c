"""Words per genre (Sec 7.5): the words of highest information gain.

The paper "studied the information gain of words in the different genres
from the best text-based classification approach" and names the words of
Rock, Pop, Rap, Reggae, Country and Blues (Sec 7.5). Here the best text
model is the TEXT row (MuMu, or a catalog) of highest test AUC among the
pipelines given; its inputs are the tf-idf vectors of the training split
of the shards it trained on (text/ records, vocabulary in
text_vectorizer.json). Over those
training albums, for a word w and a genre g,

  IG(w, g) = H(G) - H(G | W)   (bits)

with G = "the album carries g" (its record's labels) and W = "w is in the
album's text" (tf-idf > 0), both binary.

  table = genre_words([figure_inputs.Pipeline.read('runs/mumu_cosine')])
  table.data['words']['Rock']   # [['anthemic', 0.0848], ...], best first
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from etils import epath
import numpy as np

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.reporting import figure_inputs
from mmgenre_jax.reporting import paper
from mmgenre_jax.reporting import sections

TOP = 10
# Records per batch read from the shards: dense [B, V] float32 rows, so
# 512 x 10k words (the paper's vocabulary, Sec 7.3.2) is 20 MB.
BATCH_SIZE = 512
# The row modality of the text models in results.json / pipeline.json.
TEXT_MODALITY = 'text'
# Decimals of the IG values in tables.json and the markdown.
DECIMALS = 4


# ------------------------------------------------------- information gain


def binary_entropy(p: np.ndarray) -> np.ndarray:
  """H(p) in bits of Bernoulli(p), elementwise; H(0) = H(1) = 0.

  Args:
    p: probabilities, any shape.

  Returns:
    float64, the shape of p.
  """
  p = np.clip(np.asarray(p, np.float64), 0.0, 1.0)
  out = np.zeros_like(p)
  inner = (p > 0) & (p < 1)
  q = p[inner]
  out[inner] = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
  return out


@dataclasses.dataclass(frozen=True)
class Counts:
  """How many albums have each word, genre and both.

  Attributes:
    albums: N.
    with_word: float64 [V], albums whose text has word v.
    with_genre: float64 [G], albums carrying genre g.
    both: float64 [V, G], albums with word v carrying genre g.
  """
  albums: int
  with_word: np.ndarray
  with_genre: np.ndarray
  both: np.ndarray

  def __add__(self, other: 'Counts') -> 'Counts':
    return Counts(self.albums + other.albums,
                  self.with_word + other.with_word,
                  self.with_genre + other.with_genre, self.both + other.both)

  def genres(self, columns: Sequence[int]) -> 'Counts':
    """The counts of some genres only (columns of with_genre)."""
    columns = list(columns)
    return Counts(self.albums, self.with_word, self.with_genre[columns],
                  self.both[:, columns])


def count(presence: np.ndarray, carries: np.ndarray) -> Counts:
  """Counts of a set of albums.

  Args:
    presence: bool [N, V], word v is in album n's text.
    carries: bool [N, G], album n carries genre g.
  """
  presence = np.asarray(presence, bool)
  carries = np.asarray(carries, bool)
  # The joint counts in one BLAS call; float32 holds counts exactly up to
  # 2^24, far above a batch.
  both = presence.T.astype(np.float32) @ carries.astype(np.float32)
  return Counts(int(presence.shape[0]),
                presence.sum(axis=0).astype(np.float64),
                carries.sum(axis=0).astype(np.float64),
                both.astype(np.float64))


def gain_of_counts(counts: Counts) -> np.ndarray:
  """IG(w, g) = H(G) - H(G | W) in bits, for every word and genre.

  Returns:
    float64 [V, G], >= 0. A word in every text or in none, and a genre on
    every album or on none, have IG 0.
  """
  n = counts.albums
  if n == 0:
    return np.zeros([len(counts.with_word), len(counts.with_genre)])
  with_word = counts.with_word[:, None]                          # [V, 1]
  with_genre = counts.with_genre[None, :]                        # [1, G]
  without_word = n - with_word
  # An empty side of the split weighs 0, whatever its (undefined) p.
  p_given_word = counts.both / np.maximum(with_word, 1)
  p_given_none = (with_genre - counts.both) / np.maximum(without_word, 1)
  conditional = (with_word * binary_entropy(p_given_word) +
                 without_word * binary_entropy(p_given_none)) / n
  gain = binary_entropy(with_genre / n) - conditional
  # Rounding can leave -1e-16 where the word tells nothing.
  return np.maximum(gain, 0.0)


def information_gain(presence: np.ndarray, carries: np.ndarray
                     ) -> np.ndarray:
  """gain_of_counts of count(presence, carries): float64 [V, G] bits.

  Args:
    presence: bool [N, V], word v is in album n's text.
    carries: bool [N, G], album n carries genre g.
  """
  return gain_of_counts(count(presence, carries))


def top_words(gain: np.ndarray, terms: Sequence[str], top: int
              ) -> List[Tuple[str, float]]:
  """The `top` words of highest IG (> 0) of one genre, best first.

  Args:
    gain: float [V], IG of each word for the genre.
    terms: str [V], the vocabulary.
    top: how many.

  Returns:
    [(word, ig)], ties in alphabetical order (so the list is the same on
    every machine).
  """
  terms = np.asarray(terms, dtype=str)
  order = np.lexsort((terms, -gain))
  return [(str(terms[i]), float(gain[i])) for i in order[:top]
          if gain[i] > 0]


# --------------------------------------------------------- the text model


@dataclasses.dataclass(frozen=True)
class TextModel:
  """A trained text stage and its test AUC (None when not evaluated)."""
  pipeline: figure_inputs.Pipeline
  stage: Dict[str, Any]
  roc_auc: Optional[float]


def text_models(pipelines: Sequence[figure_inputs.Pipeline]
                ) -> List[TextModel]:
  """The trained TEXT row stages of the pipelines (every seed), in order."""
  found = []
  for pipeline in pipelines:
    for stage in pipeline.info.get('stages', []):
      row = stage.get('row') or {}
      stage_dir = pipeline.stage_dir(stage)
      if (row.get('modality') != TEXT_MODALITY or
          not workdir_lib.is_training_done(stage_dir)):
        continue
      metrics = workdir_lib.read_json(
          stage_dir / workdir_lib.TEST_METRICS_JSON, strict=True) or {}
      auc = metrics.get('roc_auc')
      found.append(TextModel(pipeline, stage,
                             None if auc is None else float(auc)))
  return found


def best_text_model(pipelines: Sequence[figure_inputs.Pipeline]
                    ) -> TextModel:
  """The text model of highest test AUC (Sec 7.5 "the best text-based
  classification approach"); the first given wins a tie, and an
  unevaluated model is chosen only when none is evaluated."""
  models = text_models(pipelines)
  if not models:
    raise figure_inputs.MissingInput(
        'no pipeline has a trained TEXT stage (configs/mumu_text.py) whose '
        'inputs the words per genre are computed from.')

  def rank(i):
    auc = models[i].roc_auc
    evaluated = auc is not None and not math.isnan(auc)
    return (evaluated, auc if evaluated else 0.0, -i)

  return models[max(range(len(models)), key=rank)]


# ---------------------------------------------------------- its inputs


@dataclasses.dataclass(frozen=True)
class TrainText:
  """The training split of the text records, as counts.

  Attributes:
    terms: str [V], the tf-idf vocabulary (fitted on the training texts).
    labels: str [L], the label names.
    counts: Counts over every label (G = L); a word is in a text when its
      tf-idf is > 0.
  """
  terms: np.ndarray
  labels: np.ndarray
  counts: Counts


def _multi_hot(labels: np.ndarray, num_labels: int) -> np.ndarray:
  """bool [B, L] of multi-hot [B, L] or single-label int [B] labels."""
  labels = np.asarray(labels)
  if labels.ndim == 1:
    return np.eye(num_labels, dtype=bool)[labels.astype(np.int64)]
  return labels > 0.5


def read_train_text(shard_dir) -> TrainText:
  """The tf-idf vocabulary and the training text records of shard_dir."""
  # TensorFlow and sklearn come with the shard reader: imported here so that
  # the report stays light when this section is not built.
  # pylint: disable=g-import-not-at-top
  from input_pipeline import features
  from input_pipeline.features import text as text_features
  from input_pipeline.records import shard_reader
  # pylint: enable=g-import-not-at-top
  shard_dir = epath.Path(shard_dir)
  try:
    manifest = shard_reader.load_manifest(shard_dir)
  except shard_reader.ManifestError as e:
    raise figure_inputs.MissingInput(str(e)) from e
  name = manifest.get('text_vectorizer')
  if 'text' not in manifest['modalities'] or not name:
    raise figure_inputs.MissingInput(
        f'{shard_dir} has no text records or tf-idf vocabulary.')
  try:
    terms = text_features.load_vectorizer(
        shard_dir / name).get_feature_names_out().astype(str)
    dataset = shard_reader.make_dataset(
        shard_dir, 'text', 'train', batch_size=BATCH_SIZE,
        process_index=0, process_count=1)
    labels = np.array(manifest['labels'], dtype=str)
    # Counted batch by batch, so the full MuMu's [N, V] (some 25,000
    # training albums x 10,000 words) is never held at once.
    counts = count(np.zeros([0, len(terms)], bool),
                   np.zeros([0, len(labels)], bool))
    for batch in shard_reader.as_numpy_batches(dataset):
      if batch['tfidf'].shape[1] != len(terms):
        raise figure_inputs.MissingInput(
            f'{shard_dir}: the text records have {batch["tfidf"].shape[1]} '
            f'tf-idf columns, {name} {len(terms)} words; prepare again.')
      counts += count(batch['tfidf'] > 0,
                      _multi_hot(batch['labels'], len(labels)))
  except (features.FeatureError, shard_reader.ManifestError,
          ValueError) as e:
    raise figure_inputs.MissingInput(f'cannot read the training texts of '
                                     f'{shard_dir}: {e}') from e
  return TrainText(terms, labels, counts)


# -------------------------------------------------------------- the genres


def choose_genres(wanted: Sequence[str], labels: Sequence[str],
                  counts: np.ndarray) -> Tuple[List[str], List[str], bool]:
  """(genres, missing, fell_back): the wanted genres the albums carry.

  A wanted genre matches a label of the same name, case aside. When none
  is carried (the synthetic corpus lacks some of the paper's genres), the
  len(wanted) labels on most albums stand in, so the section is never
  empty when there is text.

  Args:
    wanted: genre names, in the order to show them.
    labels: str [L], the label names.
    counts: int [L], training albums carrying each label.

  Returns:
    genres: label names, in wanted order (or most albums first).
    missing: the wanted names no training album carries.
    fell_back: whether `genres` are the stand-ins.
  """
  carried = {str(l).lower(): str(l) for l, c in zip(labels, counts) if c > 0}
  wanted = list(dict.fromkeys(wanted))
  genres = [carried[g.lower()] for g in wanted if g.lower() in carried]
  missing = [g for g in wanted if g.lower() not in carried]
  if genres:
    return list(dict.fromkeys(genres)), missing, False
  order = np.lexsort((np.asarray(labels, dtype=str), -np.asarray(counts)))
  stand_ins = [str(labels[i]) for i in order[:max(len(wanted), 1)]
               if counts[i] > 0]
  return stand_ins, missing, True


# ------------------------------------------------------------- the section


def _cell(words: Sequence[Tuple[str, float]]) -> str:
  return ', '.join(f'{w} ({g:.{DECIMALS}f})' for w, g in words) or '(none)'


def genre_words(pipelines: Sequence[figure_inputs.Pipeline],
                genres: Optional[Sequence[str]] = None,
                top: int = TOP) -> sections.Table:
  """The words of highest information gain per genre (Sec 7.5).

  Args:
    pipelines: the pipeline workdirs of one report; the best TEXT model
      among them (test AUC) gives the inputs.
    genres: the genres to show; None or empty: the paper's (paper.WORDS_GENRES).
    top: words per genre.

  Returns:
    sections.Table; data: {'words': genre -> [[word, ig], ...] best first,
    'unit': 'bits', 'missing': the genres asked for that no training album
    carries, 'fell_back': whether the genres shown stand in for them,
    'model': the text stage (pipeline, stage, roc_auc), 'shard_dir',
    'train_albums': N, 'vocabulary': V, 'albums': genre -> training albums
    carrying it}.

  Raises:
    figure_inputs.MissingInput: no trained text stage, or its shards or
      vocabulary are not there.
  """
  model = best_text_model(pipelines)
  shard_dir = figure_inputs.stage_shard_dir(model.pipeline, model.stage)
  text = read_train_text(shard_dir)
  carried = text.counts.with_genre
  wanted = tuple(genres) if genres else paper.WORDS_GENRES
  chosen, missing, fell_back = choose_genres(wanted, text.labels, carried)
  if text.counts.albums == 0 or not chosen:
    raise figure_inputs.MissingInput(
        f'{shard_dir} has no labelled training texts.')
  column = {str(l): i for i, l in enumerate(text.labels)}
  gain = gain_of_counts(text.counts.genres([column[g] for g in chosen]))
  words = {g: [[w, round(v, DECIMALS)] for w, v in
               top_words(gain[:, j], text.terms, top)]
           for j, g in enumerate(chosen)}
  albums = {g: int(carried[column[g]]) for g in chosen}
  where = f'{model.pipeline.workdir.name}/{model.stage["name"]}'
  auc = ('not evaluated' if model.roc_auc is None
         else f'test AUC {model.roc_auc:.3f}')
  n = text.counts.albums
  lines = [
      f'The best text model is `{where}` ({auc}). Information gain (bits) '
      f'of a word\'s presence (tf-idf > 0) for an album carrying the genre, '
      f'over its {n} training albums and the {len(text.terms)}-word tf-idf '
      'vocabulary; the paper\'s own examples (Sec 7.5) beside ours.', '',
      '| Genre | Albums | Top words (IG) | Paper (Sec 7.5) |',
      '|---|---:|---|---|']
  for g in chosen:
    theirs = ', '.join(paper.GENRE_WORDS.get(g, ())) or '-'
    lines.append(f'| {g} | {albums[g]} | {_cell(words[g])} | {theirs} |')
  if missing:
    lines += ['', f'No training album carries {", ".join(missing)}'
              + ('; the most frequent labels stand in.' if fell_back
                 else '.')]
  data = {'words': words, 'unit': 'bits', 'missing': missing,
          'fell_back': fell_back,
          'model': {'pipeline': str(model.pipeline.workdir),
                    'stage': model.stage['name'],
                    'roc_auc': model.roc_auc},
          'shard_dir': str(shard_dir), 'train_albums': n,
          'vocabulary': int(len(text.terms)), 'albums': albums}
  return sections.Table(
      title=f'Words per genre (Sec 7.5): top {top} by information gain',
      lines=lines, data=data)

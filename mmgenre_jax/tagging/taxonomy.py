"""The genre taxonomy a model's decisions follow (hierarchy.py).

Where it comes from, first found: the file given (`mmgenre predict
--taxonomy`, Tagger.from_workdir(taxonomy=...)); a bundle's own copy
(genre_taxonomy.tsv at its root, written by `mmgenre export`); the
genre_taxonomy.tsv beside the corpus the stages' shards were prepared from.
None when there is none (e.g. MSD-I, single-label): decisions are then the
thresholded labels as they are.
"""

import os
import pathlib
from typing import Dict, Optional, Sequence, Tuple

from input_pipeline import layout
from input_pipeline import mumu
from input_pipeline import release_format
from mmgenre_jax.tagging import stages as stages_lib

Taxonomy = Dict[str, Optional[str]]
# A bundle's copy, in the corpus's format (label<TAB>parent).
BUNDLE_TAXONOMY_TSV = layout.MUMU_TAXONOMY_TSV


def read(path) -> Taxonomy:
  """Reads a taxonomy TSV; a bad file is a TaggingError naming it."""
  try:
    return mumu.read_taxonomy(path)
  except (OSError, release_format.DataFormatError) as e:
    raise stages_lib.TaggingError(f'taxonomy {path}: {e}') from e


def find(source: pathlib.Path, stages: Sequence[stages_lib.Stage],
         path=None) -> Tuple[Optional[Taxonomy], Optional[str]]:
  """(taxonomy, the file it was read from), or (None, None)."""
  candidates = [path] if path is not None else (
      [source / BUNDLE_TAXONOMY_TSV] + [
          mumu.corpus_taxonomy_path(stages_lib.read_json(
              stage.data_dir / layout.MANIFEST_JSON))
          for stage in stages if stage.data_dir is not None and
          (stage.data_dir / layout.MANIFEST_JSON).is_file()])
  for candidate in candidates:
    if candidate is not None and (path is not None or
                                  os.path.isfile(candidate)):
      return read(candidate), os.fspath(candidate)
  return None, None


def write(path: pathlib.Path, taxonomy: Taxonomy) -> None:
  """Writes `taxonomy` as label<TAB>parent (read_taxonomy's format)."""
  rows = ['label\tparent'] + [f'{label}\t{parent or ""}'
                              for label, parent in taxonomy.items()]
  path.write_text('\n'.join(rows) + '\n', encoding='utf-8')

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
from input_pipeline.formats import mumu
from input_pipeline.formats import release_format
from mmgenre_jax import errors
from mmgenre_jax.tagging.model import stages as stages_lib

Taxonomy = Dict[str, Optional[str]]
# A bundle's copy, in the corpus's format (label<TAB>parent).
BUNDLE_TAXONOMY_TSV = layout.MUMU_TAXONOMY_TSV


def read(path) -> Taxonomy:
  """Reads a taxonomy TSV; a bad file is a TaggingError naming it."""
  try:
    return mumu.read_taxonomy(path)
  except (OSError, release_format.DataFormatError) as e:
    raise errors.TaggingError(f'genre taxonomy: {e}') from e


def find(source: pathlib.Path, stages: Sequence[stages_lib.Stage],
         path=None) -> Tuple[Optional[Taxonomy], Optional[str]]:
  """(taxonomy, the file it was read from), or (None, None)."""
  if path is None:
    path = _found_path(source, stages)
  if path is None:
    return None, None
  return read(path), os.fspath(path)


def _found_path(source: pathlib.Path, stages: Sequence[stages_lib.Stage]
                ) -> Optional[str]:
  """The bundle's copy, else the first corpus taxonomy of a stage's shards."""
  if (source / BUNDLE_TAXONOMY_TSV).is_file():
    return os.fspath(source / BUNDLE_TAXONOMY_TSV)
  for stage in stages:
    manifest = (None if stage.data_dir is None else
                stage.data_dir / layout.MANIFEST_JSON)
    if manifest is not None and manifest.is_file():
      found = mumu.corpus_taxonomy_path(stages_lib.read_json(manifest))
      if found is not None:
        return found
  return None


def write(path: pathlib.Path, taxonomy: Taxonomy) -> None:
  """Writes `taxonomy` as label<TAB>parent (read_taxonomy's format)."""
  rows = ['label\tparent'] + [f'{label}\t{parent or ""}'
                              for label, parent in taxonomy.items()]
  path.write_text('\n'.join(rows) + '\n', encoding='utf-8')

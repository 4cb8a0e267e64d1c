"""Every file and folder name of a corpus and of a shard directory.

One home for the names docs/data_formats.md gives: the release files a
corpus holds (MuMu, MSD-I, the synthetic corpus's extras) and what
`mmgenre prepare --out DIR` writes. Readers and writers import the names from
here; nothing else spells them. No TensorFlow or JAX at import.

  manifest = layout.read_manifest(shard_dir)   # None when absent / unreadable
"""

import json
from typing import Any, Dict, Optional

from etils import epath

# --- A corpus directory (docs/data_formats.md §1) --------------------------

# The multi-label MuMu file is the one the paper uses; the single-label
# release file has the same columns.
MUMU_MULTI_LABEL_CSV = 'MuMu_dataset_multi-label.csv'
MUMU_SINGLE_LABEL_CSV = 'MuMu_dataset_single-label.csv'
MUMU_CSVS = (MUMU_MULTI_LABEL_CSV, MUMU_SINGLE_LABEL_CSV)
MUMU_LABELS_TSV = 'genre_labels_MuMu.tsv'
MUMU_TAXONOMY_TSV = 'genre_taxonomy.tsv'
REVIEWS_JSONL = 'reviews.jsonl'
MSDI_TSV = 'MSD-I_dataset.tsv'
AUDIO_DIR = 'audio'
COVERS_DIR = 'covers'
# Semantic enrichment dictionary of the reviews (prepare --enrichment).
ENRICHMENT_TSV = 'enrichment.tsv'
# The generic catalog format (input_pipeline/formats/catalog.py): `mmgenre synth
# --format catalog` writes DIR/catalog.csv, DIR/taxonomy.tsv (found beside
# any catalog CSV) and one review text file per album in DIR/reviews/.
CATALOG_CSV = 'catalog.csv'
CATALOG_TAXONOMY_TSV = 'taxonomy.tsv'
CATALOG_REVIEWS_DIR = 'reviews'
# Written by `mmgenre synth` only: the planted defects and the summary.
DEFECTS_TSV = 'defects.tsv'
CORPUS_SUMMARY_JSON = 'corpus_summary.json'

# --- A shard directory (docs/data_formats.md §2) ---------------------------

MANIFEST_JSON = 'manifest.json'
SKIPPED_TSV = 'skipped.tsv'
AUDIO_STATS_NPZ = 'audio_stats.npz'
TEXT_VECTORIZER_JSON = 'text_vectorizer.json'
SPLITS_DIR = 'splits'


def read_manifest(shard_dir) -> Optional[Dict[str, Any]]:
  """shard_dir/manifest.json as a dict, or None when absent or unreadable.

  The lenient reader, for questions such as "was this run complete with the
  same settings?" or "were the reviews enriched?". Training reads through
  input_pipeline.records.shard_reader.load_manifest, which checks the keys and
  says how to repair a bad file.
  """
  path = epath.Path(shard_dir) / MANIFEST_JSON
  try:
    value = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, ValueError):
    return None
  return value if isinstance(value, dict) else None

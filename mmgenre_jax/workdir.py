"""Every file and folder name of a workdir, a pipeline workdir and a bundle.

The contract of docs/workdirs.md in one place, with the small readers that
answer questions about a workdir ("is training done?", "which stages does
this pipeline have?"). Training, evaluation, pipelines, the report and
tagging all import their names from here. No JAX or TensorFlow at import, so
configs and the report can use it. Shard directory names live one layer
below, in input_pipeline/layout.py.

  S = epath.Path('runs/mumu_cosine/audio')
  workdir.is_training_done(S)           # S/training_done.json exists
  workdir.read_json(S / workdir.TEST_METRICS_JSON)
"""

import json
from typing import Any, Dict, List, Optional, Sequence

from etils import epath
import numpy as np

from input_pipeline import fileio

# --- A stage workdir S (docs/workdirs.md §1) -------------------------------

CONFIG_JSON = 'config.json'
# What the stage's data decided (data/facts.py): label count and format,
# vocabulary, cover and representation sizes; beside config.json, which keeps
# the config as the user gave it.
DATA_FACTS_JSON = 'data_facts.json'
CHECKPOINTS_DIR = 'checkpoints'
# Orbax checkpoint series below CHECKPOINTS_DIR: the latest state (resume)
# and the state with the lowest validation loss.
LATEST = 'latest'
BEST = 'best'
CHECKPOINT_KINDS = (BEST, LATEST)
# Written last: the follow mode of evaluation stops once it has seen every
# checkpoint written before this marker; a pipeline stage is trained then.
TRAINING_DONE_JSON = 'training_done.json'
TEST_METRICS_JSON = 'test_metrics.json'
# COSINE targets (PPMI-SVD, Sec 5.1): C_d, the item factors and their rows.
LABEL_FACTORS_NPY = 'label_factors.npy'
ITEM_FACTORS_NPY = 'item_factors.npy'
LABELS_TSV = 'labels.tsv'
ITEMS_TSV = 'items.tsv'
# --mode=evaluate: S/eval_<split>/{metrics.json, <kind>_<step>.json}.
EVAL_DIR_PREFIX = 'eval_'
EVAL_METRICS_JSON = 'metrics.json'
# --mode=extract: S/representations/<name>/<split>.npz.
REPRESENTATIONS_DIR = 'representations'
# Per-label decision thresholds calibrated on the validation split (F1).
THRESHOLDS_JSON = 'thresholds.json'
# Held (fcntl.flock) by the one job training in S, or running a pipeline in
# W; the file stays after and names its last holder (checkpoints.workdir_lock).
LOCK_FILE = 'training.lock'

# --- A pipeline workdir W (docs/workdirs.md §3) ----------------------------

PIPELINE_JSON = 'pipeline.json'
REPORT_MD = 'report.md'
RESULTS_JSON = 'results.json'
# The paper's other tables and its words per genre (reporting/tables.py).
TABLES_JSON = 'tables.json'
# W/label_factors/: the one set of PPMI-SVD factors (the four factor files
# above) every COSINE stage of the pipeline trains on.
PIPELINE_FACTORS_DIR = 'label_factors'
# W/figures/<name>.png: the paper's figures (mmgenre_jax/reporting/figures.py).
FIGURES_DIR = 'figures'

# --- A bundle (`mmgenre export`, docs/tagging.md) --------------------------

BUNDLE_JSON = 'bundle.json'
PARAMS_MSGPACK = 'params.msgpack'
# A modality stage's feature files (the shards' manifest and what it names).
BUNDLE_DATA_DIR = 'data'
# `mmgenre export --format onnx|stablehlo`: labels, thresholds and the input
# contract beside the graphs (mmgenre_jax/tagging/exports/writer.py).
EXPORT_JSON = 'export.json'

# --- `mmgenre embed --out DIR` ---------------------------------------------

EMBED_INDEX_TSV = 'index.tsv'
EMBED_ERRORS_TSV = 'errors.tsv'
EMBED_INFO_JSON = 'embed.json'


def eval_dir(workdir, split: str) -> epath.Path:
  """S/eval_<split>/, where --mode=evaluate writes."""
  return epath.Path(workdir) / f'{EVAL_DIR_PREFIX}{split}'


def representation_path(workdir, name: str, split: str) -> epath.Path:
  """S/representations/<name>/<split>.npz."""
  return epath.Path(workdir) / REPRESENTATIONS_DIR / name / f'{split}.npz'


def stage_dir(pipeline_workdir, stage: Dict[str, Any]) -> epath.Path:
  """The workdir of a pipeline.json stage entry: W/<name>.

  Every stage lives in W/<name>; entries name it as the pipeline was
  launched (e.g. runs/mumu_cosine/text, relative to that working directory),
  which from another working directory may be another run's stage of the
  same name, so W/<name> comes first and the recorded path only when it is
  not there.
  """
  path = epath.Path(pipeline_workdir) / stage['name']
  return path if path.exists() else epath.Path(stage['workdir'])


def checkpoint_dir(workdir, kind: str) -> epath.Path:
  """S/checkpoints/<kind>/ (kind: LATEST or BEST)."""
  return epath.Path(workdir) / CHECKPOINTS_DIR / kind


def read_json(path, *, strict: bool = False) -> Optional[Any]:
  """A JSON file's value, or None when it is absent.

  Args:
    path: a local path or URL.
    strict: a corrupt file raises ValueError naming it and the fix (the
      report: a stage whose metrics cannot be read must stop it, not vanish
      from its tables); otherwise it reads as None, like an absent one
      ("is this step done?" questions).
  """
  try:
    return json.loads(epath.Path(path).read_text(encoding='utf-8'))
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    if strict:
      raise ValueError(f'{path} is not valid JSON ({e}); rerun the stage '
                       'that writes it or delete the file.') from e
    return None


def write_json(path, value: Any, *, sort_keys: bool = False) -> None:
  """Writes JSON (indent 2) atomically: kill -9 leaves the old file or the new.

  A local path or a gs:// URL (input_pipeline.fileio).
  """
  fileio.write_json_atomic(epath.Path(path), value, indent=2,
                           sort_keys=sort_keys)


def is_training_done(workdir) -> bool:
  """Whether S/training_done.json exists (training finished)."""
  return (epath.Path(workdir) / TRAINING_DONE_JSON).exists()


def read_pipeline(workdir) -> Optional[Dict[str, Any]]:
  """W/pipeline.json, or None when W is not a pipeline workdir."""
  value = read_json(epath.Path(workdir) / PIPELINE_JSON)
  return value if isinstance(value, dict) else None


# --- COSINE label factors (written by training and `mmgenre factorize`) ----


def _write_lines(path, lines: Sequence[str]) -> None:
  fileio.write_atomic(
      path, ''.join(f'{line}\n' for line in lines).encode('utf-8'))


def read_lines(path) -> List[str]:
  """Reads labels.tsv / items.tsv: one name per line."""
  with epath.Path(path).open('r', encoding='utf-8') as f:
    return [line.rstrip('\n') for line in f if line.strip()]


def write_factors(out_dir, label_factors: np.ndarray,
                  item_factors: np.ndarray, labels: Sequence[str],
                  items: Sequence[str]) -> None:
  """Writes the four factor files (float32 arrays) into out_dir, atomically.

  Args:
    out_dir: directory (created if needed).
    label_factors: C_d [L, d] (targets.LabelFactorization.label_factors).
    item_factors: F_d [I, d].
    labels: L label names, the row order of label_factors.
    items: I item ids, the row order of item_factors.
  """
  if len(labels) != label_factors.shape[0]:
    raise ValueError(f'{len(labels)} label names for '
                     f'{label_factors.shape[0]} label factor rows.')
  if len(items) != item_factors.shape[0]:
    raise ValueError(f'{len(items)} item ids for '
                     f'{item_factors.shape[0]} item factor rows.')
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for name, array in ((LABEL_FACTORS_NPY, label_factors),
                      (ITEM_FACTORS_NPY, item_factors)):
    with fileio.atomic_open(out_dir / name) as f:
      np.save(f, np.asarray(array).astype(np.float32))
  _write_lines(out_dir / LABELS_TSV, labels)
  _write_lines(out_dir / ITEMS_TSV, items)


def factors_complete(factor_dir) -> bool:
  """Whether write_factors finished in factor_dir (items.tsv comes last)."""
  factor_dir = epath.Path(factor_dir)
  return all((factor_dir / name).exists() for name in
             (LABEL_FACTORS_NPY, ITEM_FACTORS_NPY, LABELS_TSV, ITEMS_TSV))


def load_label_factors(factor_dir) -> np.ndarray:
  """Reads factor_dir/label_factors.npy, float32 [L, d]."""
  path = epath.Path(factor_dir) / LABEL_FACTORS_NPY
  if not path.exists():
    raise FileNotFoundError(
        f'{path} not found; write it with `mmgenre factorize --metadata ... '
        f'--splits ... --out {factor_dir}`.')
  with path.open('rb') as f:
    return np.load(f)

"""Extraction: a stage's representations of each split, written to disk.

  python main.py --config=... --workdir=S --mode=extract --split=all

writes S/representations/<name>/<split>.npz (docs/workdirs.md §1): ids,
album_ids, representation float32 [N, R] (the activations feeding the output
layer), scores float32 [N, L], labels ([N, L] or [N]), label_names and step.
What the rows are is the stage's task's (tasks/base.py Task.extract): a
label network's whole-track (and, on MuMu, album) means; the alignment
space's two towers, MM_AUDIO and MM_VISUAL. Fusion and alignment stages read
these files. Only process 0 writes; every process computes all rows.
"""

from typing import Dict, Sequence

from absl import logging
from etils import epath
import jax
import ml_collections

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.data import representations
from mmgenre_jax.evaluation import restore
from mmgenre_jax.train import workdir_guard


def _extract_split(found: restore.Restored, split: str
                   ) -> Dict[str, epath.Path]:
  stage = found.evaluator.stage
  written = {}
  for name, rows in stage.task.extract(stage.steps, found.state,
                                       stage.config, split).items():
    path = workdir_lib.representation_path(found.evaluator.workdir, name,
                                           split)
    if jax.process_index() == 0:
      representations.write_rows(found.evaluator.workdir, name, split, rows,
                                 step=found.step)
      logging.info('Wrote %d %s %s representations to %s', len(rows.ids),
                   split, name, path)
    written[name] = path
  return written


def extract_all(config: ml_collections.ConfigDict,
                workdir,
                *,
                splits: Sequence[str] = representations.SPLITS,
                checkpoint: restore.CheckpointSpec = None
                ) -> Dict[str, Dict[str, epath.Path]]:
  """Writes the representations of several splits (default all three).

  Args:
    config: the run's config.
    workdir: the stage workdir.
    splits: which splits.
    checkpoint: 'best', 'latest', a step, or None (best if there is one).

  Returns:
    split -> representation name -> path written
    (workdir/representations/<name>/<split>.npz, docs/workdirs.md §1).
  """
  workdir = epath.Path(workdir)
  workdir_guard.check_workdir(config, workdir)
  found = restore.checkpoint(config, workdir, checkpoint)
  return {split: _extract_split(found, split) for split in splits}


def extract(config: ml_collections.ConfigDict,
            workdir,
            *,
            split: str = 'test',
            checkpoint: restore.CheckpointSpec = None
            ) -> Dict[str, epath.Path]:
  """Writes the per-item representations of a split ('all': all three).

  Returns:
    representation name -> path written (with split='all', the paths of
    the test split; every split is written).
  """
  if split == 'all':
    return extract_all(config, workdir, checkpoint=checkpoint)['test']
  return extract_all(config, workdir, splits=(split,),
                     checkpoint=checkpoint)[split]

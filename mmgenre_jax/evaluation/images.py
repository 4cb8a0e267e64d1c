"""TensorBoard images of an evaluated split: per-label ROC-AUC, confusion.

  images = images.label_images(rows.scores, rows.labels, rows.label_names,
                               target, 'audio_cnn test, best step 120')
  writer.write_images(step, images)

'label_auc' for every network with label scores; 'confusion_matrix' too for
a single-label target (the MSD-I softmax networks, paper Sec 6).
"""

from typing import Dict, Optional, Sequence

import numpy as np

from mmgenre_jax.core import plots
from mmgenre_jax.core import targets


def label_images(scores: np.ndarray, labels: np.ndarray,
                 label_names: Optional[Sequence[str]],
                 target: targets.Target, title: str
                 ) -> Dict[str, np.ndarray]:
  """The TensorBoard images of a split's label scores.

  Args:
    scores: float [N, L].
    labels: [N, L] multi-hot, or class ids [N] (single-label).
    label_names: L names, or None (then '0' .. 'L-1').
    target: the stage's target; a single-label one adds the confusion
      matrix.
    title: figure title.

  Returns:
    'label_auc' and (single-label) 'confusion_matrix' -> uint8 [1, H, W, 3].
  """
  scores = np.asarray(scores, np.float64)
  names = (list(label_names) if label_names is not None
           else [str(j) for j in range(scores.shape[1])])
  figures = {'label_auc': plots.label_auc_bars(
      names, *plots.per_label_auc(scores, labels), title=title)}
  if target.single_label:
    figures['confusion_matrix'] = plots.confusion_matrices(
        [(title, scores, labels)], names)
  return {name: plots.to_rgb(fig)[None] for name, fig in figures.items()}

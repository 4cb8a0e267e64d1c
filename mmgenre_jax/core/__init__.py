"""The core: pure functions on arrays, and the paper's output configurations.

  cosine.py     L2 normalisation and cosine similarity, safe at zero
  targets.py    the output configurations (LOGISTIC, COSINE, softmax) as
                objects: loss, scores, labels, output size, metrics
  ppmi_svd.py   PPMI-SVD label factors and item factors (COSINE, Sec 5.1)
  losses.py     the paper's losses, padding-aware
  metrics.py    whole-split metrics: ROC-AUC, PR-AUC, ADiv@N, macro F1
  hierarchy.py  hierarchy-consistent label decisions over a taxonomy
  plots.py      matplotlib figures drawn from arrays

Imports neither models nor data (tests/architecture_test.py).
"""

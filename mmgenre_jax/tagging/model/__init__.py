"""A trained model as tagging loads it: stages, their graph, their applies.

  stages.py      a Stage (one trained network) read from a workdir or bundle
  graph.py       the stages' links, and which one answers for given inputs
  runners.py     deterministic jitted applies in padded batches
  bundle.py      the `mmgenre export` bundle format (write and read)
  thresholds.py  per-label decision thresholds (F1-optimal on validation)
  taxonomy.py    the genre taxonomy the decisions follow
"""

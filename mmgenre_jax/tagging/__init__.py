"""Tagging new music with a trained model: predict, embed, neighbours, export.

`Tagger` (tagger.py) is the Python API (docs/tagging.md). By job:

  stages.py      a Stage (one trained network) read from a workdir or bundle
  graph.py       the stages' links, and which one answers for given inputs
  inputs.py      raw input (audio files, reviews, a cover) -> network input
  runners.py     deterministic jitted applies in padded batches
  explain.py     class activation maps of a cover (Tagger.explain)
  thresholds.py  per-label decision thresholds (F1-optimal on validation)
  bundle.py      the `mmgenre export` bundle format (write and read)
  head.py        a finetuned head: new labels on one representation
  finetune.py    fitting and calibrating one from labelled examples
  catalog.py     the tagging commands' inputs (items) and resumable outputs
  predict.py, embed.py, neighbours.py   the work of those `mmgenre` commands
  beam_tagging.py  predict and embed on Apache Beam (--beam_pipeline_options)

Their flags live in mmgenre_jax/cli/ (predict, embed, neighbours, export,
finetune, tagging_args). Loading a model writes nothing.
"""

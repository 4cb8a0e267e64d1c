"""Tagging new music with a trained model: predict, embed, neighbours, export.

`Tagger` (tagger.py) is the Python API (docs/tagging.md). By job:

  tagger.py        the Tagger: load a model, predict, embed, explain, export
  inputs.py        raw input (audio files, reviews, a cover) -> network input
  items.py         the tagging commands' inputs (items) and resumable outputs
  decoding.py      audio decoded in worker processes ahead of the device
  explain.py       class activation maps of a cover (Tagger.explain)
  predict.py, embed.py, neighbours.py   the work of those `mmgenre` commands
  beam_tagging.py  predict and embed on Apache Beam (--beam_pipeline_options)
  model/           a trained model: stages, graph, runners, bundle,
                   thresholds, taxonomy
  finetune/        a finetuned head: examples, fit, fitted_head

Their flags live in mmgenre_jax/cli/ (predict, embed, neighbours, export,
finetune, flags). Loading a model writes nothing.
"""

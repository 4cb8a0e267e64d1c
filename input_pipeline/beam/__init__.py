"""`mmgenre prepare` as one Apache Beam pipeline (--beam_pipeline_options).

  prepare.py  the pipeline: the pool's steps as Beam transforms
  shards.py   writing record groups into shards as the pool lays them out
  report.py   the run's report read back into what the pool returns
  options.py  PipelineOptions of a `K=V,...` flag
"""

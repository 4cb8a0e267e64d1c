"""Multi-stage experiments: networks, alignment and fusion run in order.

  python main.py --config=configs/mumu_cosine.py --workdir=runs/mumu_cosine
  python main.py --config=configs/msdi.py:cpu --workdir=runs/msdi \
      --config.data.shard_dir=runs/data/msdi_shards

A pipeline config (built with `definition.pipeline_config` and
`definition.add_stage` by the pipeline files configs/mumu_cosine.py,
mumu_logistic.py, msdi.py) lists its stages in `config.stage_order`, the shards
in `config.data.shard_dir` and, optionally, `config.data.label_factors` (a
`mmgenre factorize` output for the COSINE stages; default: W/label_factors,
factorised once from the shards' train + val albums, so every COSINE stage
regresses the same targets). `config.stages.<name>` holds, per stage:

  kind         'network' (trains on shards), 'alignment' or 'fusion' (train on
               representations extracted by earlier stages)
  config_file  the single-experiment config file, e.g. configs/mumu_audio.py
  config_arg   its argument, e.g. 'high-4x70-cosine'
  config       the stage's full experiment config (any field can be
               overridden: --config.stages.audio.config.train.num_epochs=3)
  inputs       representation name -> earlier stage producing it
  outputs      the representations the stage writes (docs/workdirs.md §1)
  row          report labels overriding those derived from its config

`runner.run_pipeline(config, workdir)` runs every stage in workdir/<stage>/
(train, then extract the train/val/test representations), independent stages
at once (`config.concurrent_stages`; 0: one per core), skips a stage that
is already complete and lets an interrupted one resume from its latest
checkpoint, writes workdir/pipeline.json (docs/workdirs.md §3) after each
stage and ends with the report (mmgenre_jax/reporting/report.py). workdir
may be a local directory or a gs://bucket/... URL (docs/tpu_pod.md §4).

Its modules; building a pipeline config never loads a framework:

  definition       what the configs import: building, overriding, linking and
                   describing the stages (ml_collections and the model
                   registry only; no JAX or TensorFlow at import)
  runner           running the stages (imports training and evaluation when
                   a stage runs)
  scheduler        which stage starts when: the stage graph, independent
                   stages at once
  stage_processes  where stages run when several run at once: spawned
                   processes
  stage_modes      main.py's summary, evaluate and extract modes on every
                   stage
"""

"""`mmgenre prepare`: a corpus's features into TFRecord shards + manifest.

  job.py            the driver: prepare(dataset, data, out, Settings)
  corpus.py         the Items and Corpus of every corpus; the skip log
  split_choice.py   where the splits come from (--splits)
  release_items.py  a MuMu or MSD-I corpus directory as Items
  catalog_items.py  a catalog CSV as Items
  workers.py        the feature jobs and the worker processes
  shards.py         the records and statistics written

The same steps run on Apache Beam in input_pipeline/beam/.
"""

"""`mmgenre prepare`: a corpus's features into TFRecord shards + manifest.

  job.py            the driver: prepare(dataset, data, out, Settings)
  corpus.py         a corpus directory as per-modality Items; the skip log
  catalog_items.py  a catalog CSV as Items
  workers.py        the feature jobs and the worker processes
  shards.py         the records and statistics written

The same steps run on Apache Beam in input_pipeline/beam/.
"""

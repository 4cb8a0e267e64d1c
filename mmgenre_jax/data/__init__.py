"""What a stage reads: its batches, the facts of its data, its label rows.

  sources.py          ShardSource (the prepared shards or TFDS) and
                      RepresentationSource (other stages' extracted
                      representations, joined), batched per process
  device_batch.py     a process's batch -> the global arrays of one step
  facts.py            DataFacts: what the data decides (label count,
                      vocabulary, sizes), beside config.json
  label_matrix.py     the album label rows the label factors come from
  representations.py  the extracted representations on disk, and their join
"""

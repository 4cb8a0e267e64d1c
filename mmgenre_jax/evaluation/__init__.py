"""Checkpoint-based evaluation and extraction of a trained stage.

  evaluate.py  --mode=evaluate: one checkpoint, or follow a training run
  extract.py   --mode=extract: the stage's representations of each split
  restore.py   a checkpoint restored with the same set-up as training
  images.py    TensorBoard images of an evaluated split
"""

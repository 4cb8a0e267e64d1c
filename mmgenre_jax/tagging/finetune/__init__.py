"""New labels from a few examples: `mmgenre finetune`.

  examples.py     the labels CSV read as items
  fit.py          embedding, fitting and calibrating the heads
  fitted_head.py  a fitted head on disk: new labels on one representation
"""

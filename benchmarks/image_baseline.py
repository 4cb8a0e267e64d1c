r"""A colour-histogram linear baseline for the cover (image) stage.

  python benchmarks/image_baseline.py --shards runs/data/mumu_shards

Reads the covers of a prepared shard directory as the image network is
evaluated on them (input_pipeline.records.shard_reader.make_dataset without
shuffling: the centre crop of the stored cover), turns each into a joint RGB
histogram (--bins per channel, normalised to sum 1) plus per-channel histograms
(--channel-bins), standardises the features on the training split and fits a
one-vs-rest sklearn LogisticRegression (--c) on the training split. It prints
one JSON line with the test ROC-AUC (and PR-AUC) computed as the trainer
computes them (mmgenre_jax.core.metrics.roc_auc: the unweighted mean over the
labels with a positive and a negative in the split; MSD-I index labels are
one-hot first, as metrics.singlelabel_report does), so the image network's
test_metrics.json can be compared with it. BENCHMARKS.md §6 has the number. The
defaults (a 4 x 4 x 4 joint RGB histogram, C = 0.01) were the best on the
validation split of the embedded MuMu shards among joint 4/6/8 bins, per-channel
16 bins and both, C in 0.01 ... 100, standardised or not.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from sklearn import linear_model
from sklearn import multiclass
from sklearn import preprocessing

from input_pipeline.features import normalisation
from input_pipeline.records import shard_reader
from mmgenre_jax.core import metrics
# pylint: enable=g-import-not-at-top,wrong-import-position

SPLITS = ('train', 'val', 'test')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--shards', required=True,
                      help='A prepared shard directory (mmgenre prepare).')
  parser.add_argument('--bins', type=int, default=4,
                      help='Joint RGB histogram bins per channel (bins**3 '
                      'features; 0: none).')
  parser.add_argument('--channel-bins', type=int, default=0,
                      help='Per-channel histogram bins (3x features; 0: '
                      'none).')
  parser.add_argument('--c', type=float, default=0.01,
                      help='Inverse L2 strength of LogisticRegression.')
  return parser.parse_args(argv)


def read_split(shard_dir, split: str, manifest):
  """(uint8-range images [N, S, S, 3] in [0, 1], labels) of one split."""
  mean, std = normalisation.image_normalisation(manifest)
  images, labels = [], []
  ds = shard_reader.make_dataset(shard_dir, 'image', split, batch_size=64,
                             process_index=0, process_count=1)
  for batch in shard_reader.as_numpy_batches(ds):
    images.append(np.clip(batch['image'] * std + mean, 0.0, 1.0))
    labels.append(batch['labels'])
  return np.concatenate(images), np.concatenate(labels)


def histogram_features(images: np.ndarray, bins: int,
                       channel_bins: int) -> np.ndarray:
  """Joint and per-channel colour histograms, float64 [N, F]."""
  n = images.shape[0]
  pixels = images.reshape(n, -1, 3)
  parts = []
  if bins:
    q = np.minimum((pixels * bins).astype(np.int64), bins - 1)
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    joint = np.stack([np.bincount(c, minlength=bins**3) for c in codes])
    parts.append(joint / pixels.shape[1])
  if channel_bins:
    q = np.minimum((pixels * channel_bins).astype(np.int64),
                   channel_bins - 1)
    for ch in range(3):
      hist = np.stack([np.bincount(c, minlength=channel_bins)
                       for c in q[..., ch]])
      parts.append(hist / pixels.shape[1])
  if not parts:
    raise ValueError('Give --bins or --channel-bins > 0.')
  return np.concatenate(parts, axis=1).astype(np.float64)


def main(argv=None) -> int:
  args = parse_args(argv)
  start = time.time()
  manifest = shard_reader.load_manifest(args.shards)
  num_labels = len(manifest['labels'])
  data = {split: read_split(args.shards, split, manifest)
          for split in SPLITS}
  features = {split: histogram_features(images, args.bins, args.channel_bins)
              for split, (images, _) in data.items()}

  def multi_hot(labels):
    if manifest['label_type'] == 'multi_hot':
      return labels.astype(np.int64)
    return np.eye(num_labels, dtype=np.int64)[labels.astype(np.int64)]

  scaler = preprocessing.StandardScaler().fit(features['train'])
  classifier = multiclass.OneVsRestClassifier(
      linear_model.LogisticRegression(C=args.c, max_iter=2000))
  train_labels = multi_hot(data['train'][1])
  # A label absent from (or on every item of) the training split gets a
  # constant score (sklearn's _ConstantPredictor), as a network would learn.
  classifier.fit(scaler.transform(features['train']), train_labels)
  result = {'benchmark': 'image_colour_histogram', 'shards': args.shards,
            'dataset': manifest['dataset'], 'num_labels': num_labels,
            'image_size': manifest['image_size'],
            'features': int(features['train'].shape[1]),
            'bins': args.bins, 'channel_bins': args.channel_bins,
            'c': args.c}
  for split in ('val', 'test'):
    scores = classifier.predict_proba(scaler.transform(features[split]))
    labels = multi_hot(data[split][1])
    result[f'{split}_roc_auc'] = metrics.roc_auc(scores, labels)
    result[f'{split}_pr_auc'] = metrics.pr_auc(scores, labels)
    result[f'{split}_items'] = int(labels.shape[0])
  result['train_items'] = int(train_labels.shape[0])
  result['elapsed_s'] = round(time.time() - start, 1)
  print(json.dumps(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())

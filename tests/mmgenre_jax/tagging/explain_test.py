"""Class activation maps of the cover ResNet (Zhou et al. 2016).

models.image: the CAM is the channel sum of the last feature map weighted by
the head, and its spatial mean plus the bias is the network's output (the
GAP identity). tagging.explain / Tagger.explain on a stage written to disk
as training would (config.json, params.msgpack of a freshly initialised tiny
ResNet, labels.tsv, data/manifest.json): no training is needed for these
identities.
"""

import json

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
import pytest

from input_pipeline import layout
from input_pipeline.features import image as image_features
from mmgenre_jax import errors
from mmgenre_jax.core import cosine
from mmgenre_jax.core import targets
from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.models import image
from mmgenre_jax.models import registry
from mmgenre_jax.tagging import explain
from mmgenre_jax.tagging.model import runners
from mmgenre_jax.tagging.model import stages
from mmgenre_jax.tagging import tagger as tagger_lib

IMAGE_SIZE = 32
LABELS = ('Rock', 'Indie Rock', 'Jazz', 'Vocal Jazz', 'Pop')
FACTOR_DIM = 3


def _tiny(target: str, num_outputs: int, seed: int = 0):
  """A tiny ResNet with a random (non-zero) head bias, and its variables."""
  model = image.create_resnet('tiny', num_outputs=num_outputs, target=target)
  variables = flax.core.unfreeze(model.init(
      {'params': jax.random.key(seed)},
      jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3)), train=False))
  dense = variables['params'][image.HEAD_NAME]['dense']
  # Fresh biases are zero; random ones check that the bias is accounted for.
  dense['bias'] = jax.random.normal(jax.random.key(seed + 1),
                                    dense['bias'].shape)
  return model, variables


def _images(batch: int = 2, seed: int = 2):
  return jax.random.normal(jax.random.key(seed),
                           (batch, IMAGE_SIZE, IMAGE_SIZE, 3))


def test_cam_is_the_weighted_channel_sum_and_averages_to_the_logits():
  model, variables = _tiny('logistic', 5)
  x = _images()
  out, fmap = image.apply_with_feature_map(model, variables, x)
  # The sow leaves __call__'s outputs as they were.
  plain = model.apply(variables, x, train=False)
  np.testing.assert_allclose(out['output'], plain['output'], rtol=1e-6)
  # 32 -> 16 (stem conv) -> 8 (max pool) -> 4 (stride of the second stage).
  assert fmap.shape == (2, 4, 4, 64) and fmap.dtype == jnp.float32
  weights, bias = image.class_weights(variables['params'][image.HEAD_NAME],
                                      'logistic')
  cams = np.asarray(image.class_activation_maps(fmap, weights))
  assert cams.shape == fmap.shape[:3] + (5,)
  fmap, weights = np.asarray(fmap), np.asarray(weights)
  for c in range(5):
    explicit = sum(weights[k, c] * fmap[..., k] for k in range(fmap.shape[-1]))
    np.testing.assert_allclose(cams[..., c], explicit, rtol=1e-5, atol=1e-5)
  # GAP identity: mean_{h,w} CAM_c + b_c = logit_c.
  np.testing.assert_allclose(cams.mean(axis=(1, 2)) + np.asarray(bias),
                             out['output'], rtol=1e-5, atol=1e-5)


def test_cosine_cam_averages_to_the_dot_product_with_each_label_factor():
  model, variables = _tiny('cosine', FACTOR_DIM)
  factors = jax.random.normal(jax.random.key(7), (len(LABELS), FACTOR_DIM))
  x = _images(batch=4)
  out, fmap = image.apply_with_feature_map(model, variables, x)
  head = variables['params'][image.HEAD_NAME]
  weights, bias = image.class_weights(head, 'cosine', factors)
  assert weights.shape == (64, len(LABELS)) and bias.shape == (len(LABELS),)
  means = np.asarray(image.class_activation_maps(fmap, weights).mean(
      axis=(1, 2)) + bias)
  # The head's Dense before the L2 normalisation.
  dense = out['representation'] @ head['dense']['kernel'] + head['dense'][
      'bias']
  unit = np.asarray(cosine.l2_normalize(factors))
  np.testing.assert_allclose(means, np.asarray(dense) @ unit.T, rtol=1e-4,
                             atol=1e-5)
  # The cosines are these over the positive |z|: the same ranking.
  cosines = np.asarray(targets.COSINE.scores(out['output'], factors))
  np.testing.assert_allclose(
      means / np.linalg.norm(np.asarray(dense), axis=1, keepdims=True),
      cosines, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(np.argsort(-means, axis=1),
                                np.argsort(-cosines, axis=1))


def test_upsample_maps_keeps_a_constant_map_and_resizes():
  maps = jnp.full((1, 4, 4, 2), 3.0)
  up = image.upsample_maps(maps, IMAGE_SIZE, IMAGE_SIZE)
  assert up.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 2)
  np.testing.assert_allclose(up, 3.0, rtol=1e-6)


def _write_stage(root, target: str, num_outputs: int):
  """A stage directory as training and export leave it, without training."""
  root.mkdir(parents=True)
  _, variables = _tiny(target, num_outputs)
  config = {'model': {'name': 'resnet', 'depth': 'tiny',
                      'num_outputs': num_outputs, 'target': target,
                      'image_size': IMAGE_SIZE},
            'data': {'shard_dir': ''}}
  (root / workdir_lib.CONFIG_JSON).write_text(json.dumps(config))
  (root / workdir_lib.PARAMS_MSGPACK).write_bytes(
      flax.serialization.msgpack_serialize(jax.tree_util.tree_map(
          np.asarray, variables)))
  (root / workdir_lib.LABELS_TSV).write_text(''.join(f'{l}\n' for l in LABELS))
  if target == 'cosine':
    np.save(root / workdir_lib.LABEL_FACTORS_NPY,
            np.random.default_rng(3).normal(size=(len(LABELS), num_outputs)))
  data = root / workdir_lib.BUNDLE_DATA_DIR
  data.mkdir()
  (data / layout.MANIFEST_JSON).write_text(json.dumps(
      {'labels': list(LABELS), 'image_size': IMAGE_SIZE,
       'image_mean': list(image_features.IMAGENET_MEAN),
       'image_std': list(image_features.IMAGENET_STD)}))
  return root


@pytest.fixture(scope='module')
def stage_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp('cam')
  return {'logistic': _write_stage(root / 'logistic', 'logistic',
                                   len(LABELS)),
          'cosine': _write_stage(root / 'cosine', 'cosine', FACTOR_DIM)}


@pytest.fixture(scope='module')
def cover(tmp_path_factory):
  path = tmp_path_factory.mktemp('covers') / 'cover.png'
  pixels = np.random.default_rng(5).integers(0, 256, (60, 80, 3), np.uint8)
  Image.fromarray(pixels).save(path)
  return path


@pytest.mark.parametrize('target', ['logistic', 'cosine'])
def test_class_maps_scores_are_the_runner_scores(stage_dirs, target):
  stage = stages.load_stage(stage_dirs[target])
  x = np.asarray(_images(batch=3, seed=9))
  scores, maps = explain.class_maps(stage, x)
  np.testing.assert_allclose(scores, np.asarray(
      runners.Runner(stage).scored(x)[2]), rtol=1e-6, atol=1e-6)
  assert scores.dtype == maps.dtype == np.float32
  assert maps.shape == (3, IMAGE_SIZE, IMAGE_SIZE, len(LABELS))


@pytest.mark.parametrize('target', ['logistic', 'cosine'])
def test_tagger_explain_a_cover(stage_dirs, cover, target):
  tagger = tagger_lib.Tagger.from_workdir(stage_dirs[target])
  entries = tagger.explain(cover, top_k=3)
  assert len(entries) == 3
  scores = [e['score'] for e in entries]
  assert scores == sorted(scores, reverse=True)
  # The top labels of the image network are predict's (it alone answers).
  predicted = tagger.predict(cover=cover, top_k=3)['labels']
  assert [e['label'] for e in entries] == [p['label'] for p in predicted]
  np.testing.assert_allclose(scores, [p['score'] for p in predicted],
                             rtol=1e-5, atol=1e-6)
  for entry in entries:
    heatmap = entry['heatmap']
    assert heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert heatmap.dtype == np.float32
    assert heatmap.min() == 0.0 and heatmap.max() == 1.0
  # A uint8 array takes the file's path through preprocessing.
  array = np.asarray(Image.open(cover))
  again = tagger.explain(array, top_k=3)
  for a, b in zip(entries, again):
    assert a['label'] == b['label']
    np.testing.assert_allclose(a['heatmap'], b['heatmap'], atol=1e-6)


def test_unit_range_of_a_constant_map_is_zeros():
  np.testing.assert_array_equal(explain.unit_range(np.full((4, 4), 2.5)),
                                np.zeros((4, 4), np.float32))
  np.testing.assert_allclose(explain.unit_range(np.array([[1., 3.], [2., 5.]])),
                             [[0., 0.5], [0.25, 1.]])


def test_explain_without_an_image_network_names_the_workdir(tmp_path):
  config = ml_collections.ConfigDict(
      {'model': {'name': 'text_mlp', 'input_dim': 4, 'hidden_units': [8],
                 'num_outputs': len(LABELS), 'target': 'logistic'},
       'data': {'shard_dir': ''}})
  model = registry.create_model(config.model)
  variables = model.init({'params': jax.random.key(0)},
                         *registry.network(config.model).dummy_inputs(
                             config.model, 1), train=False)
  (tmp_path / workdir_lib.CONFIG_JSON).write_text(config.to_json())
  (tmp_path / workdir_lib.PARAMS_MSGPACK).write_bytes(
      flax.serialization.msgpack_serialize(jax.tree_util.tree_map(
          np.asarray, flax.core.unfreeze(variables))))
  (tmp_path / workdir_lib.LABELS_TSV).write_text(
      ''.join(f'{l}\n' for l in LABELS))
  tagger = tagger_lib.Tagger.from_workdir(tmp_path)
  with pytest.raises(errors.TaggingError, match=str(tmp_path)):
    tagger.explain(np.zeros((40, 40, 3), np.uint8))
  with pytest.raises(errors.TaggingError, match='uint8'):
    explain.cover_input(None, np.zeros((40, 40), np.float32))

"""Tests of mmgenre_jax.models.image (ResNet shapes, sizes, batch norm) and
mmgenre_jax.models.torchvision (its torchvision weight files).

The big networks are only traced (jax.eval_shape); everything that computes
runs on the 'tiny' ResNet with small images.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmgenre_jax.models import heads
from mmgenre_jax.models import image
from mmgenre_jax.models import specs
from mmgenre_jax.models import torchvision

# torchvision's parameter counts (sum of p.numel() of resnetXX()), with their
# 1000-class fc layer of R * 1000 + 1000 parameters; R is the representation.
TORCHVISION_PARAMS = {18: (11_689_512, 512), 34: (21_797_672, 512),
                      50: (25_557_032, 2048), 101: (44_549_160, 2048)}
# len(resnetXX().state_dict()): 5 entries per batch norm (weight, bias,
# running_mean, running_var, num_batches_tracked), 1 per conv, 2 for fc.
TORCHVISION_STATE_DICT_KEYS = {18: 122, 34: 218, 50: 320, 101: 626}

# Non-square (catches H/W swaps), with an even side where torch's symmetric
# padding and XLA's "SAME" differ and an odd one where they agree.
TINY_IMAGE_SHAPE = (2, 32, 29, 3)


def _init(model, shape, seed=0):
  # The 'rbg' generator compiles in a fraction of threefry's time on CPU (the
  # init's normal draws dominate this file's run time); values don't matter.
  return model.init({'params': jax.random.key(seed, impl='rbg')},
                    jnp.zeros(shape), train=False)


def _abstract_variables(depth, num_outputs=1000, size=224):
  model = image.create_resnet(depth, num_outputs=num_outputs,
                              target='logistic')
  init = functools.partial(model.init, train=False)
  return model, jax.eval_shape(init, {'params': jax.random.key(0)},
                               jnp.zeros((2, size, size, 3)))


def _random_like(variables, seed):
  """Random values for every leaf; positive for running variances."""
  rng = np.random.default_rng(seed)
  def draw(path, leaf):
    name = path[-1].key
    if name == 'var':
      values = rng.uniform(0.5, 2.0, leaf.shape)
    elif name == 'scale':
      values = rng.uniform(0.5, 1.5, leaf.shape)
    else:
      values = rng.normal(0.0, 0.3, leaf.shape)
    return jnp.asarray(values, leaf.dtype)
  return jax.tree_util.tree_map_with_path(draw, variables)


@pytest.fixture(scope='module')
def tiny():
  model = image.create_resnet('tiny', num_outputs=5, target='logistic')
  return model, _init(model, TINY_IMAGE_SHAPE)


# ----------------------------------------------------------- architecture


@pytest.mark.parametrize('depth', [18, 34, 50, 101])
def test_backbone_matches_torchvision_sizes(depth):
  total, representation = TORCHVISION_PARAMS[depth]
  model, variables = _abstract_variables(depth, num_outputs=1000)
  params = variables['params']
  # Our head has the same shape as torchvision's fc, so the totals agree too.
  assert image.count_backbone_params(params) == total - (
      representation * 1000 + 1000)
  head = jax.tree_util.tree_leaves(params[image.HEAD_NAME])
  assert sum(leaf.size for leaf in head) == representation * 1000 + 1000
  shapes = torchvision.torchvision_shapes(variables)
  num_norms = sum(k.endswith('.running_mean') for k in shapes)
  assert len(shapes) + num_norms + 2 == TORCHVISION_STATE_DICT_KEYS[depth]
  assert shapes['conv1.weight'] == (64, 3, 7, 7)
  out = jax.eval_shape(
      functools.partial(model.apply, train=False), variables,
      jnp.zeros((2, 224, 224, 3)))
  assert out['output'].shape == (2, 1000)
  assert out['representation'].shape == (2, representation)


def test_bottleneck_is_v1_5_with_torchvision_names():
  _, variables = _abstract_variables(50)
  shapes = torchvision.torchvision_shapes(variables)
  # v1.5: the stride-2 3x3 conv of layer2.0 is conv2, the 1x1s are conv1/3.
  assert shapes['layer2.0.conv1.weight'] == (128, 256, 1, 1)
  assert shapes['layer2.0.conv2.weight'] == (128, 128, 3, 3)
  assert shapes['layer2.0.conv3.weight'] == (512, 128, 1, 1)
  assert shapes['layer2.0.downsample.0.weight'] == (512, 256, 1, 1)
  assert shapes['layer2.0.downsample.1.running_var'] == (512,)
  # layer1.0 projects 64 -> 256 channels at stride 1.
  assert shapes['layer1.0.downsample.0.weight'] == (256, 64, 1, 1)
  assert 'layer1.1.downsample.0.weight' not in shapes
  assert shapes['layer4.2.bn3.weight'] == (2048,)
  # The stride sits on the 3x3: 224 -> 56 (stem) -> 28 -> 14 -> 7.
  model = image.create_resnet(50, num_outputs=3, target='softmax')
  _, state = jax.eval_shape(
      functools.partial(model.init_with_output, train=False,
                        capture_intermediates=True),
      {'params': jax.random.key(0)}, jnp.zeros((1, 224, 224, 3)))
  outs = state['intermediates']
  assert outs['layer2_0']['conv2']['__call__'][0].shape == (1, 28, 28, 128)
  assert outs['layer4_2']['__call__'][0].shape == (1, 7, 7, 2048)


def test_tiny_forward_shapes_and_heads(tiny):
  model, variables = tiny
  x = jax.random.normal(jax.random.key(1), TINY_IMAGE_SHAPE)
  out = model.apply(variables, x, train=False)
  assert out['output'].shape == (2, 5)
  assert out['representation'].shape == (
      2, specs.resnet_representation_size('tiny')) == (2, 64)
  assert out['output'].dtype == jnp.float32
  # ReLU then average pooling: the representation is non-negative.
  assert float(out['representation'].min()) >= 0.0
  # LOGISTIC gives raw logits of the head's Dense.
  dense = variables['params']['head']['dense']
  np.testing.assert_allclose(
      out['output'], out['representation'] @ dense['kernel'] + dense['bias'],
      rtol=1e-5, atol=1e-6)
  # COSINE: the same variables fit, the output is L2-normalised.
  cosine = image.create_resnet('tiny', num_outputs=5, target='cosine')
  out = cosine.apply(variables, x, train=False)
  np.testing.assert_allclose(np.linalg.norm(out['output'], axis=-1), 1.0,
                             rtol=1e-5)


def test_bfloat16_body_keeps_float32_outputs_and_params(tiny):
  _, variables = tiny
  model = image.create_resnet('tiny', num_outputs=5, target='logistic',
                              dtype=jnp.bfloat16)
  abstract = jax.eval_shape(functools.partial(model.init, train=False),
                            {'params': jax.random.key(0)},
                            jnp.zeros(TINY_IMAGE_SHAPE))
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(abstract)} == {
      jnp.dtype(jnp.float32)}
  x = jax.random.normal(jax.random.key(1), TINY_IMAGE_SHAPE)
  out = model.apply(variables, x, train=False)
  assert out['output'].dtype == jnp.float32
  assert out['representation'].dtype == jnp.float32
  full = tiny[0].apply(variables, x, train=False)
  np.testing.assert_allclose(out['representation'], full['representation'],
                             rtol=0.1, atol=0.05)


def test_create_resnet_validates_arguments():
  assert specs.get_resnet_spec('101') is specs.RESNET_TABLE[101]
  with pytest.raises(ValueError, match=r"depth 152.*config.model.depth"):
    image.create_resnet(152, num_outputs=2, target='logistic')
  with pytest.raises(ValueError, match='sigmoid'):
    image.create_resnet(18, num_outputs=2, target='sigmoid')
  model = image.create_resnet('tiny', num_outputs=2, target='logistic')
  with pytest.raises(ValueError, match=r'\[batch, height, width, 3\]'):
    _init(model, (1, 32, 32, 1))


# ------------------------------------------------------------ batch norm


def test_train_updates_batch_stats_and_eval_does_not(tiny):
  model, variables = tiny
  x = jax.random.normal(jax.random.key(2), TINY_IMAGE_SHAPE) + 0.5
  out, updates = model.apply(variables, x, train=True,
                             mutable=['batch_stats'])
  # bn1 follows conv1 directly: its new running stats are the torchvision
  # update 0.9 * old + 0.1 * batch statistics (biased variance).
  kernel = variables['params']['conv1']['kernel']
  y = jax.lax.conv_general_dilated(
      x, kernel, (2, 2), ((3, 3), (3, 3)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  old = variables['batch_stats']['bn1']
  new = updates['batch_stats']['bn1']
  np.testing.assert_allclose(
      new['mean'], 0.9 * old['mean'] + 0.1 * y.mean(axis=(0, 1, 2)),
      rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(
      new['var'], 0.9 * old['var'] + 0.1 * y.var(axis=(0, 1, 2)),
      rtol=1e-4, atol=1e-6)
  assert out['output'].shape == (2, 5)

  # Eval uses the running averages: no updates, and each image's output does
  # not depend on the rest of the batch (it does in train mode).
  evaluated, unchanged = model.apply(variables, x, train=False,
                                     mutable=['batch_stats'])
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         unchanged['batch_stats'], variables['batch_stats'])
  alone = model.apply(variables, x[:1], train=False)
  np.testing.assert_allclose(alone['output'], evaluated['output'][:1],
                             rtol=1e-5, atol=1e-6)
  alone_train, _ = model.apply(variables, x[:1], train=True,
                               mutable=['batch_stats'])
  assert not np.allclose(alone_train['output'], out['output'][:1], atol=1e-4)


# ------------------------------------------------- torchvision weight files


def _torch_conv(x, w, stride, pad):
  """torch.nn.functional.conv2d in NumPy: x [N, C, H, W], w [O, C, kh, kw]."""
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  kh, kw = w.shape[2:]
  h = (x.shape[2] - kh) // stride + 1
  v = (x.shape[3] - kw) // stride + 1
  out = np.zeros((x.shape[0], w.shape[0], h, v))
  for a in range(kh):
    for b in range(kw):
      patch = x[:, :, a:a + stride * h:stride, b:b + stride * v:stride]
      out += np.einsum('nchw,oc->nohw', patch, w[:, :, a, b])
  return out


def _torch_bn(x, sd, name):
  """Eval-mode torch BatchNorm2d from a state_dict."""
  c = lambda k: sd[f'{name}.{k}'][None, :, None, None]
  return ((x - c('running_mean')) / np.sqrt(c('running_var') + 1e-5)
          * c('weight') + c('bias'))


def _torch_maxpool(x):
  """MaxPool2d(3, stride=2, padding=1): padding never wins the max."""
  x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
  h, v = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
  return np.max([x[:, :, a:a + 2 * h:2, b:b + 2 * v:2]
                 for a in range(3) for b in range(3)], axis=0)


def _torch_tiny_forward(sd, x):
  """torchvision's ResNet forward (basic blocks, eval) up to the pooling."""
  relu = lambda t: np.maximum(t, 0.0)
  x = relu(_torch_bn(_torch_conv(x, sd['conv1.weight'], 2, 3), sd, 'bn1'))
  x = _torch_maxpool(x)
  for layer, stride in (('layer1.0', 1), ('layer2.0', 2)):
    y = relu(_torch_bn(_torch_conv(x, sd[f'{layer}.conv1.weight'], stride, 1),
                       sd, f'{layer}.bn1'))
    y = _torch_bn(_torch_conv(y, sd[f'{layer}.conv2.weight'], 1, 1), sd,
                  f'{layer}.bn2')
    if f'{layer}.downsample.0.weight' in sd:
      x = _torch_bn(_torch_conv(x, sd[f'{layer}.downsample.0.weight'],
                                stride, 0), sd, f'{layer}.downsample.1')
    x = relu(y + x)
  return x.mean(axis=(2, 3))


@pytest.fixture
def torchvision_file(tiny, tmp_path):
  """A torchvision-layout file of random weights for the tiny ResNet, with
  the fc and num_batches_tracked entries a real state_dict has."""
  _, variables = tiny
  source = _random_like(variables, seed=3)
  path = tmp_path / 'resnet_tiny.npz'
  torchvision.export_torchvision_npz(source, path)
  sd = dict(np.load(path))
  sd['fc.weight'] = np.ones((1000, 64), np.float32)
  sd['fc.bias'] = np.ones((1000,), np.float32)
  for key in [k for k in sd if k.endswith('running_mean')]:
    sd[key.replace('running_mean', 'num_batches_tracked')] = np.int64(7)
  np.savez(path, **sd)
  return path, sd, source


def test_export_writes_torch_layout(torchvision_file):
  _, sd, source = torchvision_file
  assert sd['conv1.weight'].shape == (32, 3, 7, 7)
  np.testing.assert_array_equal(
      sd['conv1.weight'][5, 1, 2, 6],
      source['params']['conv1']['kernel'][2, 6, 1, 5])
  np.testing.assert_array_equal(
      sd['layer2.0.downsample.1.running_var'],
      source['batch_stats']['layer2_0']['downsample_bn']['var'])
  assert 'layer1.0.downsample.0.weight' not in sd  # 32 -> 32 at stride 1.
  assert not any(k.startswith('head') for k in sd)


def test_load_round_trip_keeps_fresh_head(tiny, torchvision_file):
  model, fresh = tiny
  path, _, source = torchvision_file
  loaded = torchvision.load_torchvision_npz(path, fresh)
  for collection in ('params', 'batch_stats'):
    backbone = {k: v for k, v in source[collection].items() if k != 'head'}
    got = {k: v for k, v in loaded[collection].items() if k != 'head'}
    assert jax.tree_util.tree_structure(got) == (
        jax.tree_util.tree_structure(backbone))
    jax.tree_util.tree_map(np.testing.assert_array_equal, got, backbone)
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         loaded['params']['head'], fresh['params']['head'])
  # The input variables are not modified.
  assert not np.array_equal(fresh['params']['conv1']['kernel'],
                            loaded['params']['conv1']['kernel'])
  model.apply(loaded, jnp.zeros(TINY_IMAGE_SHAPE), train=False)


def test_loaded_network_computes_the_torchvision_function(tiny,
                                                          torchvision_file):
  model, fresh = tiny
  path, sd, _ = torchvision_file
  loaded = torchvision.load_torchvision_npz(path, fresh)
  x = np.random.default_rng(4).normal(size=TINY_IMAGE_SHAPE).astype(
      np.float32)
  got = model.apply(loaded, x, train=False)['representation']
  want = _torch_tiny_forward(sd, np.transpose(x, (0, 3, 1, 2)).astype(
      np.float64))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_load_rejects_wrong_shape_naming_the_key(tiny, torchvision_file):
  _, fresh = tiny
  path, sd, _ = torchvision_file
  sd['layer2.0.conv1.weight'] = np.zeros((64, 32, 5, 5), np.float32)
  np.savez(path, **sd)
  with pytest.raises(ValueError) as error:
    torchvision.load_torchvision_npz(path, fresh)
  message = str(error.value)
  assert "'layer2.0.conv1.weight'" in message
  assert '(64, 32, 5, 5)' in message and '(64, 32, 3, 3)' in message


def test_load_reports_missing_and_unexpected_keys(tiny, torchvision_file):
  _, fresh = tiny
  path, sd, source = torchvision_file
  del sd['layer1.0.bn2.running_var']
  sd['layer3.0.conv1.weight'] = np.zeros((32, 16, 3, 3), np.float32)
  np.savez(path, **sd)
  with pytest.raises(ValueError) as error:
    torchvision.load_torchvision_npz(path, fresh)
  message = str(error.value)
  assert '1 model keys missing from the file: layer1.0.bn2.running_var' in (
      message)
  assert '1 file keys unknown to the model: layer3.0.conv1.weight' in message
  assert 'config.model.depth' in message
  # Non-strict loading takes what matches and keeps the rest.
  loaded = torchvision.load_torchvision_npz(path, fresh, strict=False)
  np.testing.assert_array_equal(
      loaded['batch_stats']['layer1_0']['bn2']['var'],
      fresh['batch_stats']['layer1_0']['bn2']['var'])
  np.testing.assert_array_equal(
      loaded['batch_stats']['layer1_0']['bn2']['mean'],
      source['batch_stats']['layer1_0']['bn2']['mean'])


def test_load_depth_mismatch_and_bad_files(tiny, tmp_path):
  _, fresh = tiny
  with pytest.raises(FileNotFoundError, match='nowhere.npz'):
    torchvision.load_torchvision_npz(tmp_path / 'nowhere.npz', fresh)
  corrupt = tmp_path / 'corrupt.npz'
  corrupt.write_bytes(b'not a zip file')
  with pytest.raises(ValueError, match='corrupt.npz is not a readable'):
    torchvision.load_torchvision_npz(corrupt, fresh)
  # A ResNet-18 file offered to the tiny net: every layer shape differs or is
  # unknown, and the error says so before loading anything.
  _, abstract = _abstract_variables(18, size=32)
  big = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), abstract)
  big_path = tmp_path / 'resnet18.npz'
  torchvision.export_torchvision_npz(big, big_path)
  with pytest.raises(ValueError, match=r'file keys unknown to the model: '
                     r'layer1\.1\.bn1\.bias.*and \d+ more'):
    torchvision.load_torchvision_npz(big_path, fresh)
  with pytest.raises(ValueError, match=r"'bn1.bias' has shape \(64,\)"):
    torchvision.load_torchvision_npz(big_path, fresh, strict=False)


def test_heads_module_is_shared():
  assert image.heads is heads

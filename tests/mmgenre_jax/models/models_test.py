"""Tests of the paper's networks, the model factory and the first configs."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default as default_lib
from configs import msdi_audio
from configs import mumu_audio
from configs import mumu_fusion
from configs import mumu_text
from mmgenre_jax import models
from mmgenre_jax.core import cosine
from mmgenre_jax.models import parameter_table
from mmgenre_jax.models import alignment
from mmgenre_jax.models import audio
from mmgenre_jax.models import fusion
from mmgenre_jax.models import heads
from mmgenre_jax.models import specs
from mmgenre_jax.models import text

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def _num_params(model, *inputs):
  """Trainable parameter count, from shapes only (nothing allocated)."""
  return parameter_table.parameter_table(model, inputs)[1]


def _shapes(model, *inputs):
  return jax.tree.map(lambda x: tuple(x.shape),
                      parameter_table.output_shapes(model, inputs))


def _conv(kt, kf, cin, cout):
  return kt * kf * cin * cout + cout


def _dense(din, dout):
  return din * dout + dout


def _hand_count(variant, num_outputs):
  """Parameters of a table network, worked out without the model code."""
  spec = specs.AUDIO_CNN_TABLE[variant]
  t, f, cin, total = 322, 96, 1, 0
  for (kt, kf), cout, pool in zip(spec.kernels, spec.filters, spec.pools):
    total += _conv(kt, kf, cin, cout)
    t, f, cin = t - kt + 1, f - kf + 1, cout  # Valid padding.
    if pool:
      t, f = t // pool[0], f // pool[1]  # Floor pooling.
  return total + _dense(t * f * cin, num_outputs), t * f * cin


# ------------------------------------------------------------------- audio


def test_high_4x70_cosine_matches_the_spec_count_exactly():
  model = audio.create_audio_cnn('high-4x70', num_outputs=50,
                                 target='cosine')
  expected = (_conv(4, 70, 1, 256) + _conv(4, 6, 256, 512) +
              _conv(4, 1, 512, 1024) + _conv(1, 1, 1024, 1024) +
              _dense(4096, 50))
  assert expected == 6_570_802
  assert _num_params(model, jnp.zeros((1, 322, 96, 1))) == 6_570_802
  assert model.dropout == 0.5  # HIGH + COSINE only (Sec 7.3.1).


@pytest.mark.parametrize('variant,target,paper_millions,written', [
    # 4x70 and 4x96 follow from the table; the paper's 3x3 counts do not
    # (0.5M / 16.5M / 0.33M / 15.5M): ours are written here as computed.
    ('low-4x70', 'logistic', 0.35,
     _conv(4, 70, 1, 64) + _conv(4, 6, 64, 128) + _conv(4, 1, 128, 128) +
     _conv(1, 1, 128, 64) + _dense(4 * 64, 250)),
    ('low-4x70', 'cosine', 0.3, None),
    ('high-4x70', 'logistic', 7.5, None),
    ('high-4x96', 'logistic', 5.0,
     _conv(4, 96, 1, 256) + _conv(4, 1, 256, 512) + _conv(4, 1, 512, 1024) +
     _conv(1, 1, 1024, 1024) + _dense(4 * 1024, 250)),
    ('high-4x96', 'cosine', 4.0, None),
    ('low-4x96', 'logistic', 0.2,
     _conv(4, 96, 1, 64) + _conv(4, 1, 64, 128) + _conv(4, 1, 128, 128) +
     _conv(1, 1, 128, 64) + _dense(4 * 64, 250)),
    ('low-4x96', 'cosine', 0.15, None),
    ('low-3x3', 'logistic', None,
     _conv(3, 3, 1, 64) + _conv(3, 3, 64, 128) + _conv(3, 3, 128, 128) +
     _conv(1, 1, 128, 64) + _dense(1 * 4 * 64, 250)),
    ('high-3x3', 'logistic', None,
     _conv(3, 3, 1, 256) + _conv(3, 3, 256, 512) + _conv(3, 3, 512, 1024) +
     _conv(1, 1, 1024, 1024) + _dense(1 * 4 * 1024, 250)),
    ('low-3x3', 'cosine', None, None),
    ('high-3x3', 'cosine', None, None),
])
def test_audio_parameter_counts(variant, target, paper_millions, written):
  num_outputs = 50 if target == 'cosine' else 250
  model = audio.create_audio_cnn(variant, num_outputs=num_outputs,
                                 target=target)
  count = _num_params(model, jnp.zeros((1, 322, 96, 1)))
  expected, flat = _hand_count(variant, num_outputs)
  assert count == expected
  assert specs.audio_representation_size(variant) == flat
  if written is not None:
    assert count == written
  if paper_millions is not None:
    # The paper rounds: within 0.06M or 7 % of Table 6.
    assert abs(count / 1e6 - paper_millions) <= max(0.06,
                                                     0.07 * paper_millions)


def test_3x3_counts_are_ours_not_the_papers():
  # 322x96 -> 320x94 -> 80x47 -> 78x45 -> 19x22 -> 17x20 -> 4x20 -> 4x20
  # -> pool (4,5) -> 1x4: flatten 4 x C4.
  assert specs.audio_representation_size('high-3x3') == 4 * 1024
  assert _hand_count('high-3x3', 250)[0] == 7_976_186  # Paper: 16.5M.
  assert _hand_count('low-3x3', 250)[0] == 294_586  # Paper: 0.5M.
  assert _hand_count('high-3x3', 50)[0] == 7_156_786  # Paper: 15.5M.
  assert _hand_count('low-3x3', 50)[0] == 243_186  # Paper: 0.33M.


@pytest.mark.parametrize('variant,flat', [
    ('low-3x3', 256), ('high-3x3', 4096), ('low-4x96', 256),
    ('high-4x96', 4096), ('low-4x70', 256), ('high-4x70', 4096),
    ('msdi', 2048)])
def test_audio_output_and_representation_shapes(variant, flat):
  model = audio.create_audio_cnn(variant, num_outputs=7, target='logistic')
  shapes = _shapes(model, jnp.zeros((3, 322, 96, 1)))
  assert shapes == {'output': (3, 7), 'representation': (3, flat)}


def test_msdi_network_sec_6_2():
  model = audio.create_audio_cnn('msdi', num_outputs=15, target='softmax')
  assert model.dropout == 0.5
  assert _num_params(model, jnp.zeros((1, 322, 96, 1))) == (
      _conv(4, 96, 1, 64) + _conv(4, 1, 64, 128) + _conv(4, 1, 128, 256) +
      _dense(2048, 15))


def test_audio_dropout_follows_width_and_target():
  for variant in ('low-3x3', 'low-4x96', 'low-4x70'):
    for target in ('logistic', 'cosine'):
      assert audio.variant_dropout(variant, target) == 0.0
  for variant in ('high-3x3', 'high-4x96', 'high-4x70'):
    assert audio.variant_dropout(variant, 'cosine') == 0.5
    assert audio.variant_dropout(variant, 'logistic') == 0.0


def test_low_4x70_forward_is_deterministic_without_dropout():
  model = audio.create_audio_cnn('low-4x70', num_outputs=250,
                                 target='logistic')
  x = jax.random.normal(jax.random.key(2), (2, 322, 96, 1))
  variables = model.init(RNGS, x)
  evaluated = model.apply(variables, x, train=False)
  trained = model.apply(variables, x, train=True,
                        rngs={'dropout': jax.random.key(3)})
  np.testing.assert_allclose(evaluated['output'], trained['output'])
  # Logits are raw (not squashed): the head is x @ W + b.
  head = variables['params']['head']['dense']
  np.testing.assert_allclose(
      evaluated['output'],
      evaluated['representation'] @ head['kernel'] + head['bias'],
      rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(evaluated['representation']) >= 0)  # ReLU.


def test_high_4x70_cosine_unit_norm_and_dropout_only_in_training():
  model = audio.create_audio_cnn('high-4x70', num_outputs=50,
                                 target='cosine')
  x = jax.random.normal(jax.random.key(4), (2, 322, 96, 1))
  variables = jax.jit(model.init)(RNGS, x)
  apply = jax.jit(model.apply, static_argnames='train')
  eval_a = apply(variables, x, train=False)
  eval_b = apply(variables, x, train=False)
  train_a = apply(variables, x, train=True,
                  rngs={'dropout': jax.random.key(5)})
  train_b = apply(variables, x, train=True,
                  rngs={'dropout': jax.random.key(6)})
  assert eval_a['output'].shape == (2, 50)
  assert eval_a['representation'].shape == (2, 4096)
  for out in (eval_a, train_a, train_b):
    np.testing.assert_allclose(
        np.linalg.norm(out['output'], axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(eval_a['output'], eval_b['output'])
  assert not np.allclose(train_a['output'], train_b['output'])
  assert not np.allclose(train_a['output'], eval_a['output'])
  # Dropout zeroes about half of the representation in training.
  dropped = np.mean(np.asarray(train_a['representation']) == 0)
  kept_zero = np.mean(np.asarray(eval_a['representation']) == 0)
  assert dropped > kept_zero + 0.2


@pytest.mark.parametrize('variant', ['high-4x70', 'low-4x96', 'msdi'])
def test_conv_layouts_share_parameters_and_outputs(variant):
  # freq_channels_conv (bins as channels of 1-D convs) is a faster way to
  # compute the same network: one parameter tree, outputs equal to float32
  # rounding.
  model = audio.create_audio_cnn(variant, num_outputs=50, target='cosine')
  nhwc = model.clone(conv_layout='nhwc')
  x = jax.random.normal(jax.random.key(0), (2,) + specs.INPUT_SHAPE)
  variables = model.init(jax.random.key(1), x)
  assert (jax.tree.map(jnp.shape, variables) ==
          jax.tree.map(jnp.shape, nhwc.init(jax.random.key(1), x)))
  fast, reference = model.apply(variables, x), nhwc.apply(variables, x)
  for key in ('output', 'representation'):
    np.testing.assert_allclose(fast[key], reference[key], atol=2e-5)
  with pytest.raises(ValueError, match='conv_layout'):
    model.clone(conv_layout='nchw').init(jax.random.key(1), x)


@pytest.mark.parametrize('groups', [1, 2, 9, 27, 40])
def test_freq_channels_conv_equals_the_2d_conv_for_any_grouping(groups):
  # The 4x70 first layer on a short patch: P = 96 - 70 + 1 = 27 positions,
  # split into `groups` runs (40 is clipped to 27).
  x = jax.random.normal(jax.random.key(0), (2, 9, 96, 1))
  kernel = jax.random.normal(jax.random.key(1), (4, 70, 1, 5))
  reference = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  ours = audio.freq_channels_conv(x, kernel, groups)
  assert ours.shape == reference.shape == (2, 6, 27, 5)
  np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize('window', [(4, 4), (4, 1), (2, 1), (4, 5)])
def test_block_max_pool_equals_flax_max_pool_values_and_gradients(window):
  # Odd sizes: 19 frames and 6 bins leave a remainder that 'VALID' drops.
  x = jax.random.normal(jax.random.key(0), (2, 19, 6, 3))

  def pooled_sum(pool, x):
    # ReLU first, as in the network: its zeros are the ties that occur.
    weights = jnp.arange(1.0, 1.0 + np.prod(pool(jax.nn.relu(x)).shape))
    return jnp.sum(pool(jax.nn.relu(x)).ravel() * weights)

  ours = lambda x: audio.block_max_pool(x, window)
  flax_pool = lambda x: nn.max_pool(x, window, strides=window, padding='VALID')
  np.testing.assert_array_equal(ours(x), flax_pool(x))
  assert ours(x).shape == (2, 19 // window[0], 6 // window[1], 3)
  np.testing.assert_array_equal(jax.grad(lambda x: pooled_sum(ours, x))(x),
                                jax.grad(lambda x: pooled_sum(flax_pool, x))(x))


def test_conv_block_equals_the_textbook_block_even_on_silence():
  # ConvBlock computes conv -> pool -> bias -> ReLU; the paper's block is
  # conv + bias -> ReLU -> pool. A stretch of identical frames (silence)
  # makes conv outputs tie inside a pool window: values and parameter
  # gradients must still agree.
  x = jax.random.normal(jax.random.key(0), (2, 19, 12, 1))
  x = x.at[:, :9].set(-1.5)
  block = audio.ConvBlock(4, (4, 3), (4, 2), conv_layout='nhwc')
  variables = block.init(jax.random.key(1), x)
  variables = jax.tree.map(lambda v: v + 0.1, variables)  # non-zero bias

  def textbook(params, x):
    y = jax.lax.conv_general_dilated(
        x, params['kernel'], (1, 1), 'VALID',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = jax.nn.relu(y + params['bias'])
    return nn.max_pool(y, (4, 2), strides=(4, 2), padding='VALID')

  weights = jax.random.normal(jax.random.key(2), (2, 4, 5, 4))
  ours = lambda v: jnp.sum(block.apply(v, x) * weights)
  reference = lambda v: jnp.sum(textbook(v['params'], x) * weights)
  np.testing.assert_allclose(ours(variables), reference(variables),
                             rtol=1e-6)
  for a, b in zip(jax.tree.leaves(jax.grad(ours)(variables)),
                  jax.tree.leaves(jax.grad(reference)(variables))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_audio_errors_name_the_problem():
  with pytest.raises(ValueError, match='high-4x70'):
    audio.create_audio_cnn('high-5x5', num_outputs=50, target='cosine')
  with pytest.raises(ValueError, match="'sigmoid'"):
    audio.create_audio_cnn('low-4x70', num_outputs=50, target='sigmoid')
  model = audio.create_audio_cnn('low-4x70', num_outputs=5, target='logistic')
  with pytest.raises(ValueError, match=r'x\[\.\.\., None\]'):
    jax.eval_shape(model.init, RNGS, jnp.zeros((1, 322, 96)))


# -------------------------------------------------------------------- text


def test_text_mlp_count_and_shapes():
  model = text.create_text_mlp(num_outputs=250, target='logistic')
  x = jnp.zeros((2, 10000))
  count = _num_params(model, x)
  assert count == _dense(10000, 2048) + _dense(2048, 2048) + _dense(2048, 250)
  assert count == 25_190_650  # ~25.2M, Table 6 "25M".
  assert _shapes(model, x) == {'output': (2, 250),
                               'representation': (2, 2048)}
  assert model.dropout == 0.5


def test_mlp_dropout_after_input_and_each_layer_only_in_training():
  model = text.create_text_mlp(num_outputs=6, target='cosine',
                               hidden_units=(64, 32))
  x = jax.random.uniform(jax.random.key(7), (4, 40))
  variables = model.init(RNGS, x)
  evaluated = model.apply(variables, x)
  np.testing.assert_array_equal(
      evaluated['output'], model.apply(variables, x, train=False)['output'])
  trained = model.apply(variables, x, train=True,
                        rngs={'dropout': jax.random.key(8)})
  np.testing.assert_allclose(
      np.linalg.norm(trained['output'], axis=-1), 1.0, rtol=1e-5)
  assert not np.allclose(trained['output'], evaluated['output'])
  # The input dropout alone changes the first layer's input: with inverted
  # dropout the kept inputs are scaled by 1 / (1 - 0.5).
  hidden = variables['params']['hidden_0']
  pre = np.asarray(x) @ hidden['kernel'] + hidden['bias']
  np.testing.assert_allclose(
      evaluated['representation'],
      np.maximum(np.maximum(pre, 0) @ variables['params']['hidden_1'][
          'kernel'] + variables['params']['hidden_1']['bias'], 0),
      rtol=1e-4, atol=1e-5)


def test_timbre_mlp_is_the_papers_linear_baseline():
  model = text.create_timbre_mlp(num_outputs=250, target='logistic')
  x = jax.random.normal(jax.random.key(9), (3, 48))
  assert _num_params(model, x) == 12_250  # Table 6: 0.01M.
  variables = model.init(RNGS, x)
  out = model.apply(variables, x, train=True,
                    rngs={'dropout': jax.random.key(1)})
  np.testing.assert_allclose(out['representation'], x)
  assert out['output'].shape == (3, 250)


# --------------------------------------------------------------- alignment


def test_alignment_towers_are_w2_tanh_w1():
  model = alignment.AlignmentNet()
  a = jax.random.normal(jax.random.key(10), (5, 32))
  v = jax.random.normal(jax.random.key(11), (5, 24))
  variables = model.init(RNGS, a, v)
  params = variables['params']
  assert _num_params(model, a, v) == 32 * 200 + 200 * 200 + 24 * 200 + (
      200 * 200)
  out = model.apply(variables, a, v, train=True)
  assert out['audio'].shape == out['visual'].shape == (5, 200)
  expected_a = np.tanh(np.asarray(a) @ params['audio_hidden']['kernel']) @ (
      params['audio_embed']['kernel'])
  expected_v = np.tanh(np.asarray(v) @ params['visual_hidden']['kernel']) @ (
      params['visual_embed']['kernel'])
  np.testing.assert_allclose(out['audio'], expected_a, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out['visual'], expected_v, rtol=1e-4, atol=1e-5)
  # Each tower runs alone at test time (MM_AUDIO needs no image).
  np.testing.assert_allclose(
      model.apply(variables, a, method='embed_audio'), out['audio'])
  np.testing.assert_allclose(
      model.apply(variables, v, method='embed_visual'), out['visual'])
  # Not normalised: the loss takes the cosine.
  assert not np.allclose(np.linalg.norm(out['audio'], axis=-1), 1.0)


# ------------------------------------------------------------------ fusion


def _fusion_inputs(batch, dims=None, seed=12):
  dims = dims or {'audio': 12, 'text': 8, 'image': 6, 'mm_audio': 4,
                  'mm_visual': 4}
  keys = jax.random.split(jax.random.key(seed), len(dims))
  return {m: 3.0 * jax.random.normal(k, (batch, d))
          for k, (m, d) in zip(keys, dims.items())}


ALL_SUBSETS = [s for n in range(1, 6)
               for s in itertools.combinations(specs.MODALITY_ORDER, n)]


def test_fusion_shapes_for_every_subset():
  inputs = _fusion_inputs(3)
  assert len(ALL_SUBSETS) == 31
  for subset in ALL_SUBSETS:
    model = fusion.Fusion(modalities=subset, num_outputs=5, target='cosine')
    width = sum(inputs[m].shape[1] for m in subset)
    assert _shapes(model, inputs) == {'output': (3, 5),
                                      'representation': (3, width)}
    assert _num_params(model, inputs) == width * 5 + 5


@pytest.mark.parametrize('subset', [
    ('audio',), ('mm_visual',), ('text', 'image'), ('audio', 'mm_audio'),
    ('audio', 'text', 'image'), specs.MODALITY_ORDER])
def test_fusion_normalises_and_concatenates_in_fixed_order(subset):
  inputs = _fusion_inputs(3)
  # Any given order; concatenation follows MODALITY_ORDER.
  model = fusion.Fusion(modalities=tuple(reversed(subset)), num_outputs=5,
                        target='logistic')
  variables = model.init(RNGS, inputs)
  out = model.apply(variables, inputs, train=True,
                    rngs={'dropout': jax.random.key(0)})
  expected = np.concatenate(
      [np.asarray(inputs[m]) / np.linalg.norm(inputs[m], axis=-1,
                                              keepdims=True)
       for m in subset], axis=-1)
  # LOGISTIC fusion has no dropout, so training output = eval output.
  np.testing.assert_allclose(out['representation'], expected, rtol=1e-5)
  head = variables['params']['head']['dense']
  assert head['kernel'].shape == (expected.shape[1], 5)
  np.testing.assert_allclose(out['output'],
                             expected @ head['kernel'] + head['bias'],
                             rtol=1e-4, atol=1e-5)


def test_fusion_missing_and_unknown_modalities():
  inputs = _fusion_inputs(2)
  del inputs['text']
  model = fusion.Fusion(modalities=('audio', 'text'), num_outputs=5,
                        target='cosine')
  with pytest.raises(KeyError, match="'text'"):
    model.init(RNGS, inputs)
  with pytest.raises(ValueError, match='mm_visual'):
    fusion.Fusion(modalities=('audio', 'lyrics'), num_outputs=5,
                  target='cosine').init(RNGS, inputs)


@pytest.mark.parametrize('target,rate', [
    ('softmax', 0.5), ('logistic', 0.0), ('cosine', 0.7)])
def test_fusion_dropout_per_target(target, rate):
  inputs = _fusion_inputs(64, {'audio': 200, 'text': 200})
  model = fusion.Fusion(modalities=('audio', 'text'), num_outputs=5,
                        target=target)
  variables = model.init(RNGS, inputs)
  evaluated = model.apply(variables, inputs)
  trained = model.apply(variables, inputs, train=True,
                        rngs={'dropout': jax.random.key(13)})
  dropped = np.mean(np.asarray(trained['representation']) == 0)
  assert abs(dropped - rate) < 0.03
  assert np.mean(np.asarray(evaluated['representation']) == 0) == 0
  if target == 'cosine':
    np.testing.assert_allclose(
        np.linalg.norm(trained['output'], axis=-1), 1.0, rtol=1e-5)


def test_fusion_paper_sizes():
  dims = mumu_fusion.INPUT_DIMS
  assert dims == {'audio': 4096, 'text': 2048, 'image': 2048,
                  'mm_audio': 200, 'mm_visual': 200}
  inputs = {m: jnp.zeros((1, dims[m])) for m in ('audio', 'text', 'image')}
  logistic = fusion.Fusion(modalities=('audio', 'text', 'image'),
                           num_outputs=250, target='logistic')
  cosine = fusion.Fusion(modalities=('audio', 'text', 'image'),
                         num_outputs=50, target='cosine')
  assert _num_params(logistic, inputs) == 8192 * 250 + 250  # Table 6: 2M.
  assert _num_params(cosine, inputs) == 8192 * 50 + 50  # Table 6: 0.4M.


# ------------------------------------------------------------------- heads


def test_output_head_and_l2_normalize():
  x = jnp.array([[3.0, 4.0], [0.0, 0.0]])
  np.testing.assert_allclose(cosine.l2_normalize(x),
                             [[0.6, 0.8], [0.0, 0.0]])
  grad = jax.grad(lambda v: cosine.l2_normalize(v).sum())(x)
  assert np.all(np.isfinite(grad))
  head = heads.OutputHead(num_outputs=3, target='cosine')
  variables = head.init(RNGS, x)
  out = head.apply(variables, x + 1.0)
  np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match='logistic'):
    heads.OutputHead(num_outputs=3, target='linear').init(RNGS, x)


# ----------------------------------------------------------------- factory


@pytest.mark.parametrize('get_config,arg,module_type,outputs', [
    (mumu_audio.get_config, None, audio.AudioCNN, (1, 50)),
    (mumu_audio.get_config, 'low-3x3-logistic', audio.AudioCNN, (1, 250)),
    (mumu_audio.get_config, 'timbre-logistic', text.MLP, (1, 250)),
    (msdi_audio.get_config, None, audio.AudioCNN, (1, 15)),
    (mumu_text.get_config, 'cosine', text.MLP, (1, 50)),
    (mumu_fusion.get_config, 'text+mm_audio-logistic', fusion.Fusion,
     (1, 250)),
])
def test_create_model_from_experiment_configs(get_config, arg, module_type,
                                              outputs):
  config = get_config(arg)
  config.lock()  # As main.py's config flag does.
  model = models.create_model(config.model)
  assert isinstance(model, module_type)
  inputs = models.dummy_inputs(config.model, batch_size=1)
  assert _shapes(model, *inputs)['output'] == outputs


def test_create_model_alignment_and_dummy_inputs():
  config = ml_collections.ConfigDict(
      {'name': 'alignment', 'audio_dim': 2048, 'visual_dim': 2048})
  model = models.create_model(config)
  inputs = models.dummy_inputs(config, batch_size=2)
  assert [x.shape for x in inputs] == [(2, 2048), (2, 2048)]
  assert _shapes(model, *inputs) == {'audio': (2, 200), 'visual': (2, 200)}
  assert _num_params(model, *inputs) == 2 * (2048 * 200 + 200 * 200)
  config.embed_dim = 16
  assert _shapes(models.create_model(config), *inputs)['audio'] == (2, 16)


def test_factory_errors_name_the_field():
  with pytest.raises(ValueError, match='audio_cnn'):
    models.create_model(ml_collections.ConfigDict({'name': 'vgg'}))
  with pytest.raises(KeyError, match='config.model.width'):
    models.create_model(ml_collections.ConfigDict(
        {'name': 'audio_cnn', 'target': 'cosine', 'num_outputs': 50}))
  config = mumu_fusion.get_config('audio+text-cosine')
  del config.model.input_dims['text']
  with pytest.raises(KeyError, match='text'):
    models.dummy_inputs(config.model)


def test_factory_config_overrides():
  config = mumu_audio.get_config('high-4x70-cosine')
  assert models.create_model(config.model).dropout == 0.5
  config.model.dropout = 0.1
  assert models.create_model(config.model).dropout == 0.1
  config.model.dtype = 'bfloat16'
  assert models.create_model(config.model).dtype == jnp.bfloat16


# ----------------------------------------------------------------- configs


def test_default_config_training_fields():
  config = default_lib.get_config()
  assert config.train.learning_rate == 1e-3
  assert config.train.batch_size == 32
  assert config.train.num_epochs == 100
  assert config.train.patience == 4
  assert config.model.num_outputs == config.data.factor_dim == 50
  # num_outputs follows its data field; the other data field is untouched.
  default_lib.set_target(config, 'logistic')
  config.data.num_labels = 100
  assert config.model.num_outputs == 100
  assert config.data.factor_dim == 50


def test_mumu_audio_config_args():
  for width, kernels, target in itertools.product(
      mumu_audio.WIDTHS, mumu_audio.KERNELS, mumu_audio.TARGETS):
    config = mumu_audio.get_config(f'{width}-{kernels}-{target}')
    assert (config.model.width, config.model.kernels,
            config.model.target) == (width, kernels, target)
    assert config.model.num_outputs == (50 if target == 'cosine' else 250)
  assert mumu_audio.get_config().model.kernels == '4x70'
  for bad in ('high-4x70', 'mid-4x70-cosine', 'high-4x70-softmax', 'x'):
    with pytest.raises(ValueError, match="'low', 'high'"):
      mumu_audio.get_config(bad)


def test_text_and_fusion_config_args():
  assert mumu_text.get_config('logistic').model.num_outputs == 250
  assert mumu_text.get_config().model.input_dim == 10000
  with pytest.raises(ValueError, match='logistic'):
    mumu_text.get_config('softmax')
  config = mumu_fusion.get_config('image+audio+text-logistic')
  assert config.model.modalities == ('audio', 'text', 'image')
  assert config.model.num_outputs == 250
  with pytest.raises(ValueError, match='mm_audio'):
    mumu_fusion.get_config('audio+video-cosine')
  with pytest.raises(ValueError, match='logistic'):
    mumu_fusion.get_config('audio+text-softmax')
  with pytest.raises(ValueError, match='no argument'):
    msdi_audio.get_config('high')

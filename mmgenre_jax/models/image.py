"""ResNet image networks for album covers (paper Sec 3.2, 6.2, 7.3.3).

The paper fine-tunes an ImageNet-pretrained ResNet-101 (the authors used Lua
Torch's fb.resnet) and takes the 2048-d global-average-pooled features as the
visual representation. This module is ResNet v1.5 as torchvision builds it
(the stride-2 of a bottleneck sits on its 3x3 conv, not on the 1x1), in Linen,
with batch norm that matches torchvision's (momentum 0.1 in torch = 0.9 here,
epsilon 1e-5) and torchvision's explicit symmetric padding, so that its
ImageNet weights load and compute the same function:

  model = image.create_resnet(101, num_outputs=250, target='logistic')
  variables = model.init({'params': rng}, jnp.zeros((1, 224, 224, 3)))
  variables = torchvision.load_torchvision_npz('resnet101.npz', variables)
  out, updates = model.apply(variables, images, train=True,
                             mutable=['batch_stats'])
  variables = {**variables, **updates}

Inputs are NHWC RGB images already standardised with the ImageNet mean and
std (input_pipeline.features). Parameter names mirror torchvision's modules:
'conv1', 'bn1', 'layer{s}_{b}' with 'conv{i}', 'bn{i}', 'downsample_conv',
'downsample_bn', then our own 'head' (heads.OutputHead), so that the
ImageNet weights of torchvision load by name (models/torchvision.py).
"""

import functools
from typing import Any, Mapping, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmgenre_jax.core import cosine
from mmgenre_jax.core import targets
from mmgenre_jax.models import heads
from mmgenre_jax.models import specs

# Batch norm as torchvision's nn.BatchNorm2d: running = 0.9 * running + 0.1 *
# batch (torch's momentum=0.1 weighs the new batch) and eps=1e-5. One small
# difference remains: torch updates running_var with the unbiased batch
# variance, Flax with the biased one (a factor n / (n - 1), n = B * H * W).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# He et al. (2016) initialisation as torchvision's ResNet: kaiming_normal_ with
# mode='fan_out' for convs; batch norm starts at scale 1, bias 0 (torchvision's
# zero_init_residual=False). Only matters without pretrained weights.
CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')

# Name of the output layer, a fresh heads.OutputHead: never loaded from a
# torchvision file (its 'fc' classifies the 1000 ImageNet classes).
HEAD_NAME = 'head'

# The 'intermediates' entry ResNet sows: the last conv feature map [B, h, w, R].
FEATURE_MAP = 'feature_map'

ModuleDef = Any
Variables = Mapping[str, Any]


class BasicBlock(nn.Module):
  """Two 3x3 convs (ResNet-18/34); stride on the first.

  Attributes:
    filters: output channels of both convs.
    conv: nn.Conv partial (no bias, He init, computation dtype).
    norm: nn.BatchNorm partial (train/eval mode already bound).
    strides: of the first conv and of the projection shortcut.
  """
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: Tuple[int, int] = (1, 1)

  # Output channels per `filters` (torchvision's BasicBlock.expansion).
  expansion = specs.BLOCK_EXPANSION['basic']

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: [B, H, W, C].

    Returns:
      [B, H / s, W / s, filters], s the stride.
    """
    residual = x
    y = self.conv(self.filters, (3, 3), self.strides, padding=((1, 1), (1, 1)),
                  name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), padding=((1, 1), (1, 1)),
                  name='conv2')(y)
    y = self.norm(name='bn2')(y)
    residual = _shortcut(self, residual, self.filters * self.expansion)
    return nn.relu(y + residual)


class BottleneckBlock(nn.Module):
  """1x1 -> 3x3 -> 1x1 (x4 channels) bottleneck, v1.5: stride on the 3x3.

  Attributes:
    filters: channels of the 1x1 and 3x3 convs; the output has 4x as many.
    conv: nn.Conv partial (no bias, He init, computation dtype).
    norm: nn.BatchNorm partial (train/eval mode already bound).
    strides: of the 3x3 conv and of the projection shortcut.
  """
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: Tuple[int, int] = (1, 1)

  # Output channels per `filters` (torchvision's Bottleneck.expansion).
  expansion = specs.BLOCK_EXPANSION['bottleneck']

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the block.

    Args:
      x: [B, H, W, C].

    Returns:
      [B, H / s, W / s, 4 * filters], s the stride.
    """
    residual = x
    y = self.conv(self.filters, (1, 1), name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), self.strides, padding=((1, 1), (1, 1)),
                  name='conv2')(y)
    y = nn.relu(self.norm(name='bn2')(y))
    y = self.conv(self.filters * self.expansion, (1, 1), name='conv3')(y)
    y = self.norm(name='bn3')(y)
    residual = _shortcut(self, residual, self.filters * self.expansion)
    return nn.relu(y + residual)


def _shortcut(block: nn.Module, x: jax.Array, features: int) -> jax.Array:
  """Identity, or a strided 1x1 conv + batch norm where the shape changes.

  Called inside a block's compact __call__, so the two layers belong to the
  block ('downsample_conv', 'downsample_bn' = torchvision's downsample.0/.1).
  """
  if x.shape[-1] == features and tuple(block.strides) == (1, 1):
    return x
  x = block.conv(features, (1, 1), block.strides, name='downsample_conv')(x)
  return block.norm(name='downsample_bn')(x)


class ResNet(nn.Module):
  """ResNet v1.5 (torchvision layout) with a global-average-pooled head.

  Attributes:
    stage_sizes: blocks per stage (torchvision's layer1..layerN).
    block_cls: BasicBlock or BottleneckBlock.
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
    num_filters: channels of the stem and of the first stage; doubled at
      each later stage.
    dtype: computation dtype of the convs and batch norms (parameters and
      the head stay float32).
  """
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  num_outputs: int
  target: str
  num_filters: int = specs.BASE_FILTERS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False
               ) -> Mapping[str, jax.Array]:
    """Classifies images.

    Args:
      x: float [B, H, W, 3], ImageNet-standardised RGB (224 x 224 in the
        paper; any H, W >= 32 / 2 ** (4 - stages) works).
      train: batch statistics (and updates of 'batch_stats', which needs
        mutable=['batch_stats']) instead of the running averages.

    Returns:
      {'output': float32 [B, K], 'representation': float32 [B, R]} with R =
      num_filters * 2 ** (stages - 1) * expansion: 2048 for ResNet-50/101,
      512 for ResNet-18/34.
    """
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(
          f'ResNet expects [batch, height, width, 3] RGB images, got shape '
          f'{x.shape}; convert grey images to RGB (input_pipeline.features).')
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype,
                             kernel_init=CONV_INIT)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                             dtype=self.dtype)
    # Stem. Explicit symmetric padding as torch's Conv2d(padding=3) and
    # MaxPool2d(padding=1); 'SAME' would pad (2, 3) and shift every pixel of
    # the pretrained features.
    x = conv(self.num_filters, (7, 7), (2, 2), padding=((3, 3), (3, 3)),
             name='conv1')(x.astype(self.dtype))
    x = nn.relu(norm(name='bn1')(x))
    # The -inf padding written out, then a 'VALID' pool: the same values as
    # padding=((1, 1), (1, 1)), which jax2onnx's stand-in for nn.max_pool
    # drops (the ONNX export, tagging/exports/).
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)),
                constant_values=-jnp.inf)
    x = nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='VALID')
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = (2, 2) if i > 0 and j == 0 else (1, 1)
        x = self.block_cls(filters=self.num_filters * 2 ** i, conv=conv,
                           norm=norm, strides=strides,
                           name=f'layer{i + 1}_{j}')(x)
    # The last feature map, for class activation maps (apply_with_feature_map);
    # a no-op unless 'intermediates' is mutable, so training is unchanged.
    self.sow('intermediates', FEATURE_MAP, x)
    # The pooled features are the visual representation (Sec 3.2, 6.2) and feed
    # fusion in float32 whatever the body's dtype.
    representation = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    output = heads.OutputHead(self.num_outputs, self.target,
                              name=HEAD_NAME)(representation)
    return {'output': output, 'representation': representation}


# specs.ResNetSpec.block -> the Linen block.
BLOCKS = {'basic': BasicBlock, 'bottleneck': BottleneckBlock}


def create_resnet(depth: Union[int, str], *, num_outputs: int, target: str,
                  dtype: Any = jnp.float32) -> ResNet:
  """Builds a ResNet of specs.RESNET_TABLE with a fresh output head.

  Args:
    depth: 18, 34, 50, 101 or 'tiny'.
    num_outputs: K of the output layer.
    target: one of targets.NAMES.
    dtype: computation dtype of the body.

  Returns:
    An unbound ResNet.
  """
  spec = specs.get_resnet_spec(depth)
  return ResNet(stage_sizes=spec.stage_sizes,
                block_cls=BLOCKS[spec.block],
                num_filters=spec.num_filters, num_outputs=int(num_outputs),
                target=targets.get(target).name, dtype=dtype)


# ---------------------------------- class activation maps (Zhou et al. 2016)
# With global average pooling before a linear head, the score of label c is
# the spatial mean of sum_k w[k, c] * F[..., k] plus a bias: that map (the
# CAM) says where in the image the evidence for c lies.


def apply_with_feature_map(model: ResNet, variables: Variables,
                           images: jax.Array
                           ) -> Tuple[Mapping[str, jax.Array], jax.Array]:
  """Runs the network in eval mode and returns its last conv feature map.

  Args:
    model: a ResNet.
    variables: its {'params', 'batch_stats'}.
    images: float [B, H, W, 3], as ResNet.__call__ takes them.

  Returns:
    (the __call__ outputs dict, float32 feature map [B, h, w, R]).
  """
  outputs, state = model.apply(variables, images, train=False,
                               mutable=['intermediates'])
  # sow appends to a tuple: one call, one entry.
  (feature_map,) = state['intermediates'][FEATURE_MAP]
  return outputs, feature_map.astype(jnp.float32)


def class_weights(head_params: Mapping[str, Any], target: str,
                  label_factors=None) -> Tuple[jax.Array, jax.Array]:
  """Per-label weights and biases on the pooled representation.

  logistic / softmax: the head Dense's kernel [R, L] and bias [L]. cosine:
  the head outputs z = r @ W + b in the label-factor space, scored by
  cos(z, f_c); the weights are W @ f^_c and the biases b . f^_c, with f^_c
  the unit label factor (Target.scores normalises them too). That is
  the dot product of the pre-normalisation output with each label factor:
  label c's map averages (plus bias) to z . f^_c = |z| cos(z, f_c). The L2
  normalisation of z is a positive per-image scale 1 / |z|, the same for
  every label, so it changes neither a map's shape nor the label ranking.

  Args:
    head_params: params[HEAD_NAME] ({'dense': {'kernel', 'bias'}}).
    target: one of targets.NAMES.
    label_factors: C_d float [L, K]; required for 'cosine'.

  Returns:
    (weights float32 [R, L], bias float32 [L]).
  """
  dense = head_params['dense']
  kernel = jnp.asarray(dense['kernel'], jnp.float32)
  bias = jnp.asarray(dense['bias'], jnp.float32)
  if not targets.get(target).uses_label_factors:
    return kernel, bias
  if label_factors is None:
    raise ValueError("target='cosine' needs label_factors (C_d [L, K]).")
  factors = cosine.l2_normalize(jnp.asarray(label_factors, jnp.float32))
  return kernel @ factors.T, bias @ factors.T


def class_activation_maps(feature_map: jax.Array,
                          weights: jax.Array) -> jax.Array:
  """CAM_c = sum_k weights[k, c] * feature_map[..., k] (no bias).

  Args:
    feature_map: float [B, h, w, R].
    weights: float [R, L], from class_weights.

  Returns:
    float32 [B, h, w, L]; its spatial mean plus the bias is the pre-sigmoid
    (pre-softmax, or for cosine |z| times the cosine) score.
  """
  return jnp.einsum('bhwr,rl->bhwl', feature_map.astype(jnp.float32),
                    weights.astype(jnp.float32))


def upsample_maps(maps: jax.Array, height: int, width: int) -> jax.Array:
  """Bilinear resize of maps [B, h, w, L] to the input size [B, H, W, L]."""
  return jax.image.resize(maps, (maps.shape[0], int(height), int(width),
                                 maps.shape[-1]), method='bilinear')


def count_backbone_params(params: Mapping[str, Any]) -> int:
  """Number of trainable parameters without the output head.

  Args:
    params: variables['params'] of a ResNet, concrete or abstract.

  Returns:
    The count; torchvision's numel of the same network minus its fc.
  """
  body = {k: v for k, v in dict(params).items() if k != HEAD_NAME}
  return int(sum(np.prod(leaf.shape, dtype=np.int64)
                 for leaf in jax.tree_util.tree_leaves(body)))

"""Where a cover network looks: class activation maps (Zhou et al. 2016).

The ResNet pools its last feature map F [h, w, R] globally and applies a
linear head, so the score of label c is the spatial mean of the map
sum_k w[k, c] F[..., k] plus a bias (models.image: class_weights,
class_activation_maps). Upsampled to the input, that map shows which part
of the cover carries the evidence for c.

  scores, maps = explain.class_maps(stage, images)   # [B, L], [B, H, W, L]
  explain.explain_cover(stage, data, 'cover.jpg', stage.labels, top_k=3)
  # [{'label': 'Jazz', 'score': 0.83, 'heatmap': float32 [H, W] in [0, 1]}]

Tagger.explain is the user-facing call (docs/tagging.md).
"""

import functools
import json
import os
import tempfile
from typing import Any, Dict, List, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from mmgenre_jax import errors
from mmgenre_jax.models import image as image_lib
from mmgenre_jax.models import registry
from mmgenre_jax.tagging import inputs as inputs_lib
from mmgenre_jax.tagging.model import stages as stages_lib


@functools.lru_cache(maxsize=None)
def _jitted(model_json: str):
  """The jitted (scores, upsampled maps) of one ResNet definition.

  Keyed by the model config as runners._jitted, so every stage of the same
  network shares the compiled code; variables and factors are arguments.
  """
  model_config = ml_collections.ConfigDict(json.loads(model_json))
  model = registry.create_model(model_config)
  target = registry.target(model_config)

  def maps_and_scores(variables, factors, images):
    out, feature_map = image_lib.apply_with_feature_map(model, variables,
                                                        images)
    scores = target.scores(out['output'].astype(jnp.float32), factors)
    weights, _ = image_lib.class_weights(
        variables['params'][image_lib.HEAD_NAME], target.name, factors)
    maps = image_lib.class_activation_maps(feature_map, weights)
    return scores, image_lib.upsample_maps(maps, *images.shape[1:3])

  return jax.jit(maps_and_scores)


def class_maps(stage: stages_lib.Stage, images
               ) -> Tuple[np.ndarray, np.ndarray]:
  """Label scores and class activation maps of an image stage.

  Args:
    stage: an image stage (config.model.name 'resnet').
    images: float32 [B, H, W, 3], standardised as the network takes them
      (inputs.image_input).

  Returns:
    (scores float32 [B, L], the same as runners.Runner(stage).scored's;
     maps float32 [B, H, W, L], bilinearly upsampled from the last feature
     map; without the bias, so only their relative values matter).

  Raises:
    TaggingError: the stage is not a ResNet.
  """
  # The registry's image networks are the ResNets (GAP + a linear head).
  if registry.network(stage.config.model).kind != 'image':
    raise errors.TaggingError(
        f'Stage {stage.name!r} ({stage.source}) is a '
        f'{stage.config.model.get("name")!r} network; class activation maps '
        'need a cover ResNet (config.model.name=resnet).')
  factors = (None if stage.label_factors is None
             else jnp.asarray(stage.label_factors, jnp.float32))
  variables = jax.tree_util.tree_map(jnp.asarray, stage.variables)
  scores, maps = _jitted(stage.model_config.to_json())(
      variables, factors, jnp.asarray(images, jnp.float32))
  return (np.asarray(scores, np.float32), np.asarray(maps, np.float32))


def cover_input(data: inputs_lib.FeatureData, cover) -> np.ndarray:
  """A cover file or uint8 [H, W, 3] array -> the network input [1, C, C, 3].

  An array goes through a lossless PNG so that it takes exactly the path
  of a cover file (resize, centre crop, standardisation) that predict uses.
  """
  if not isinstance(cover, np.ndarray):
    return inputs_lib.image_input(data, os.fspath(cover))
  if cover.dtype != np.uint8 or cover.ndim != 3 or cover.shape[-1] != 3:
    raise errors.TaggingError(
        f'a cover array must be uint8 [height, width, 3], got {cover.dtype} '
        f'{cover.shape}.')
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'cover.png')
    Image.fromarray(cover).save(path)
    return inputs_lib.image_input(data, path)


def unit_range(heatmap: np.ndarray) -> np.ndarray:
  """Min-max scaling to [0, 1] as float32; a constant map becomes zeros."""
  heatmap = np.asarray(heatmap, np.float64)
  low, span = heatmap.min(), np.ptp(heatmap)
  if not span > 0:
    return np.zeros(heatmap.shape, np.float32)
  return ((heatmap - low) / span).astype(np.float32)


def explain_cover(stage: stages_lib.Stage, data: inputs_lib.FeatureData,
                  cover, labels, top_k: int = 3) -> List[Dict[str, Any]]:
  """The top_k labels of a cover by the stage's score, with their heatmaps.

  Args:
    stage: a cover ResNet stage.
    data: its feature data (inputs.load_feature_data).
    cover: an image file or a uint8 [H, W, 3] array.
    labels: the L label names of the stage's scores.
    top_k: entries returned.

  Returns:
    [{'label', 'score': float, 'heatmap': float32 [C, C] in [0, 1]}], best
    first; C the network's input size.
  """
  scores, maps = class_maps(stage, cover_input(data, cover))
  order = np.argsort(-scores[0], kind='stable')[:max(0, int(top_k))]
  return [{'label': labels[j], 'score': float(scores[0, j]),
           'heatmap': unit_range(maps[0, :, :, j])} for j in order]

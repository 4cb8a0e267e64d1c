"""Flax Linen modules of the paper's networks, and the one registry of them.

Every classifier returns {'output': [B, K], 'representation': [B, R]}
(heads.OutputHead gives raw logits for 'logistic'/'softmax' and unit vectors
for 'cosine'); the alignment network returns {'audio', 'visual'} embeddings.
Modules are used purely functionally:

  model = models.create_model(config.model)
  inputs = models.dummy_inputs(config.model)      # a tuple of positional args
  variables = model.init({'params': rng}, *inputs, train=False)
  out = model.apply(variables, *batch_inputs, train=True,
                    rngs={'dropout': key})        # + mutable for ResNet

What each config.model.name is (its builder, inputs, representations, report
label, tagging kind) lives in registry.py; the paper's architecture numbers in
specs.py. Importing this package loads no framework: the Linen modules
(audio, text, image, alignment, fusion, heads) are imported on first use.
"""

import importlib

# The package's API: the builders of the one registry.
from mmgenre_jax.models.registry import create_model  # pylint: disable=unused-import
from mmgenre_jax.models.registry import dummy_inputs  # pylint: disable=unused-import
from mmgenre_jax.models.registry import MODEL_NAMES  # pylint: disable=unused-import

_SUBMODULES = ('alignment', 'audio', 'fusion', 'heads', 'image', 'text')


def __getattr__(name: str):
  # `models.audio` etc. without `import mmgenre_jax.models.audio` first.
  if name in _SUBMODULES:
    return importlib.import_module(f'{__name__}.{name}')
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

"""mmgenre_jax: multimodal music genre classification in JAX/Flax.

A reimplementation of Oramas, Barbieri, Nieto & Serra (2018), "Multimodal Deep
Learning for Music Genre Classification", TISMIR 1(1).

  tagger = mmgenre_jax.Tagger.from_workdir('runs/mumu_cosine')
  tagger.predict(audio=['song.mp3'], top_k=5)

`Tagger` is imported on first use (module __getattr__), so `import
mmgenre_jax` stays light: it pulls in neither JAX nor TensorFlow.
"""

__version__ = '0.1.0'

# Attribute -> module that defines it, imported on first access.
_LAZY = {'Tagger': 'mmgenre_jax.tagging.tagger'}


def __getattr__(name):
  if name in _LAZY:
    import importlib  # pylint: disable=g-import-not-at-top
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(list(globals()) + list(_LAZY))

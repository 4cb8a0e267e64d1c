"""mmgenre_jax: multimodal music genre classification in JAX/Flax.

A reimplementation of Oramas, Barbieri, Nieto & Serra (2018), "Multimodal Deep
Learning for Music Genre Classification", TISMIR 1(1).
"""

__version__ = '0.1.0'

"""Tagging new music with a trained model: predict, embed, neighbours, export.

`Tagger` (tagger.py) is the Python API; the `mmgenre predict|embed|neighbours|
export` subcommands are thin command-line layers over it (docs/tagging.md).
"""

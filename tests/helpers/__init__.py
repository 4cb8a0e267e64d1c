"""Code the tests share: tiny data, a hand-made corpus, a tiny pipeline."""

"""Flax Linen modules of the paper's networks."""

"""Core: pure functions on arrays."""

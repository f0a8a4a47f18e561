"""Specialists: models that make the initial annotations."""

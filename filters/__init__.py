"""Filters: remove wrong, redundant and meaningless annotations, and say why."""

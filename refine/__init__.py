"""Refinement: Florence-2 in the loop."""

"""Tiny random-init models built from config classes, saved with ``save_pretrained``.

They load through the same code path as real checkpoints, with no download.
"""

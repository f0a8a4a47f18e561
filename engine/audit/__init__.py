"""Audit of a dataset version: statistics, agreement, ground truth, samples, an HTML report, a review export."""

"""Image gates: good files not worth annotating, decided from what curation measured.

Like a filter's ``check`` (``filters/base.py``), a gate returns the first rule that skips the image
as a :class:`~filters.base.Verdict` with the measured value and the threshold it crossed, or None.
Rules are named after their profile keys, so a skipped row says which key to change.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from filters.base import Verdict, above, below, first_drop
from filters.curation.settings import GateSettings
from schemas.records import ImageMeasures


def gate_image(measures: ImageMeasures, gates: GateSettings) -> Verdict | None:
    """The first gate ``measures`` fails, in the order: min_side, max_aspect_ratio, min_sharpness,
    max_single_colour_fraction (cheapest to explain first); None when the image passes them all."""
    return first_drop(
        below("min_side", min(measures.width, measures.height), gates.min_side),
        above("max_aspect_ratio", measures.aspect_ratio, gates.max_aspect_ratio),
        below("min_sharpness", measures.sharpness, gates.min_sharpness),
        above("max_single_colour_fraction", measures.single_colour_fraction, gates.max_single_colour_fraction),
    )


GATE_RULES = ("min_side", "max_aspect_ratio", "min_sharpness", "max_single_colour_fraction")


def gate_columns(columns: Mapping[str, np.ndarray], gates: GateSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`gate_image` over columns (``width``, ``height``, ``aspect_ratio``, ``sharpness``,
    ``single_colour_fraction``; NaN where unmeasured, which no gate drops), one row per image: for each row
    the position in :data:`GATE_RULES` of the first gate it fails (-1: none), the measured value and the
    threshold (NaN where none failed)."""
    side = np.fmin(np.asarray(columns["width"], np.float64), np.asarray(columns["height"], np.float64))
    checks = [
        (side, gates.min_side, True),
        (columns["aspect_ratio"], gates.max_aspect_ratio, False),
        (columns["sharpness"], gates.min_sharpness, True),
        (columns["single_colour_fraction"], gates.max_single_colour_fraction, False),
    ]
    count = side.size
    rule = np.full(count, -1, np.int64)
    value, threshold = np.full(count, np.nan), np.full(count, np.nan)
    for position, (measured, limit, minimum) in enumerate(checks):
        if limit is None:
            continue
        measured = np.asarray(measured, np.float64)
        with np.errstate(invalid="ignore"):
            fails = measured < limit if minimum else measured > limit
        first = fails & (rule < 0)
        rule[first], value[first], threshold[first] = position, measured[first], limit
    return rule, value, threshold

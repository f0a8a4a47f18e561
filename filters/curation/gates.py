"""Image gates: good files not worth annotating, decided from what curation measured.

Like a filter's ``check`` (``filters/base.py``), a gate returns the first rule that skips the image
as a :class:`~filters.base.Verdict` with the measured value and the threshold it crossed, or None.
Rules are named after their profile keys, so a skipped row says which key to change.
"""

from __future__ import annotations

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

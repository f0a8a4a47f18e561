"""Captions that come with the inputs (a WebDataset ``.txt`` member, a table's caption column) become
image-level texts with provenance source ``alt_text``, so the text filter judges them like any other.

The paper's engine started from web alt-text too; keeping it costs nothing and gives the filters
and the audit a human-written (if noisy) description to compare with the specialists'.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.records import Granularity, Provenance, Text

ALT_TEXT_SOURCE = "alt_text"
ALT_TEXT_MODEL = "input"  # written by whoever published the images, not by a model of ours


def alt_texts(captions: Iterable[str], granularity: Granularity) -> list[Text]:
    """One text per distinct non-empty caption (surrounding whitespace removed), in the order given."""
    kept = dict.fromkeys(text.strip() for text in captions if text and text.strip())
    return [Text(granularity, text, Provenance(ALT_TEXT_SOURCE, ALT_TEXT_MODEL)) for text in kept]

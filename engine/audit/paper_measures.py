"""The paper's Table 2 and Table 3 measures for a dataset, beside the paper's values.

The computation is the filters' own (``filters.statistics``); this module turns its result into
table rows for the report. Texts the text filter never analysed are left out of the text measures
(the audit does not run spaCy) and counted in the note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from filters.statistics import (
    PAPER_REFERENCE,
    PAPER_REGIONS_PER_IMAGE,
    TEXT_MEASURES,
    CorpusStatistics,
    format_paper_comparison,
)
from schemas.records import GRANULARITIES


@dataclass
class PaperMeasures:
    """``rows``: (granularity, measure, ours, paper); ``text``: the filters' plain-text comparison."""

    rows: list[tuple[str, str, float | None, float | None]] = field(default_factory=list)
    text: str = ""
    images: int = 0
    note: str = ""


def paper_measures(statistics: CorpusStatistics) -> PaperMeasures:
    rows: list[tuple[str, str, float | None, float | None]] = []
    unanalysed = 0
    for granularity in GRANULARITIES:
        part = statistics.by_granularity[granularity]
        unanalysed += part.unanalysed
        for measure in TEXT_MEASURES:
            measured = part.images if measure == "grounded_phrases_per_image" else part.texts - part.unanalysed
            ours = getattr(part, measure) if measured else None
            rows.append((granularity, measure.replace("_", " "), ours, PAPER_REFERENCE[granularity].get(measure)))
    rows.append(("all", "regions per image", statistics.regions_per_image, PAPER_REGIONS_PER_IMAGE))
    note = (
        f"{unanalysed} texts have no text-filter analysis and are left out of the text measures." if unanalysed else ""
    )
    return PaperMeasures(rows, format_paper_comparison(statistics), statistics.images, note)

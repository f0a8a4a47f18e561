"""The paper's Table 2 and Table 3 measures for a dataset, beside the paper's values.

The computation is the filters' own (``filters.statistics``); this module turns its result into
table rows for the report. Texts the text filter never analysed are left out of the text measures
(the audit does not run spaCy) and counted in the note; measures this dataset cannot give are listed
with the reason (``missing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from filters.statistics import CorpusStatistics, MeasureRow, format_paper_comparison, measure_rows, missing_lines
from schemas.records import GRANULARITIES


@dataclass
class PaperMeasures:
    """``rows``: every measure (ours None where it cannot be computed, with why); ``text``: the filters'
    plain-text comparison; ``missing``: the measures that cannot be computed, grouped by reason."""

    rows: list[MeasureRow] = field(default_factory=list)
    text: str = ""
    images: int = 0
    note: str = ""
    missing: list[str] = field(default_factory=list)


def paper_measures(statistics: CorpusStatistics) -> PaperMeasures:
    rows = measure_rows(statistics)
    unanalysed = sum(statistics.by_granularity[g].unanalysed for g in GRANULARITIES)
    note = (
        f"{unanalysed} texts have no text-filter analysis and are left out of the text measures." if unanalysed else ""
    )
    missing = [line.strip() for line in missing_lines(rows)[1:]]
    return PaperMeasures(rows, format_paper_comparison(statistics), statistics.images, note, missing)

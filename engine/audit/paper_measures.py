"""The paper's Table 2 and Table 3 measures for a dataset, beside the paper's values.

The computation lives in ``filters/statistics.py`` (the filters' own measures); this module only
feeds it a bounded, uniform sample of the version's rows and keeps what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.audit.reservoir import Reservoir
from schemas.records import ImageRecord

MAX_ROWS = 20_000


@dataclass
class PaperMeasures:
    """``rows``: (granularity or group, measure, ours, paper); ``text``: the filters' own comparison table."""

    rows: list[tuple[str, str, float | None, float | None]] = field(default_factory=list)
    text: str = ""
    images: int = 0
    sampled: bool = False
    note: str = ""


def _light_row(record: ImageRecord) -> dict:
    """A record's row without what the measures never read (drops, masks), to keep the sample small."""
    row = record.to_row()
    row["dropped"] = []
    for region in row["regions"]:
        region["mask"] = None
    for phrase in row["phrases"]:
        for grounded in phrase["regions"]:
            grounded["mask"] = None
    return row


class PaperMeasuresCollector:
    def __init__(self, limit: int = MAX_ROWS, seed: int = 0) -> None:
        self.rows: Reservoir[dict] = Reservoir(limit, seed=seed)

    def add(self, record: ImageRecord) -> None:
        self.rows.add(_light_row(record))

    def result(self) -> PaperMeasures:
        try:
            from filters import statistics  # noqa: F401
        except ImportError as error:
            return PaperMeasures(images=self.rows.seen, note=f"filters/statistics.py is not available ({error})")
        return PaperMeasures(images=self.rows.seen, note="filters/statistics.py has no supported interface yet")

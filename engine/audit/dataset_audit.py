"""One streaming pass over a dataset version that gathers everything the audit reports."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from engine.audit.agreement import AgreementCollector
from engine.audit.collect import AuditStats, StatsCollector
from engine.audit.ground_truth import GroundTruthCollector, GroundTruthResult
from engine.audit.paper_measures import PaperMeasures, paper_measures
from engine.audit.reservoir import Reservoir
from engine.audit.skipped_summary import SkippedSummary, skipped_summary
from engine.store.location import Location, Where, location
from engine.store.manifest import Manifest, require_manifest
from engine.store.reader import iter_batches
from filters.statistics import compute_statistics
from schemas.records import ImageRecord

BATCH_ROWS = 256


@dataclass
class AuditResult:
    root: Location
    manifest: Manifest
    stats: AuditStats
    agreement: AgreementCollector
    quarantine: Counter[str]
    paper: PaperMeasures
    samples: list[ImageRecord] = field(default_factory=list)
    ground_truth: GroundTruthResult | None = None
    seconds: float = 0.0
    skipped: SkippedSummary = field(default_factory=SkippedSummary)


def quarantine_reasons(root: Where, version: int | None) -> Counter[str]:
    """Quarantined inputs per reason, read from the version's quarantine shards batch by batch."""
    reasons: Counter[str] = Counter()
    for batch in iter_batches(root, version, columns=["reason"], quarantine=True):
        if batch.num_rows:
            counted = pc.value_counts(batch.column(0))
            for value, count in zip(counted.field("values"), counted.field("counts"), strict=True):
                reasons[str(value.as_py())] += count.as_py()
    return reasons


def audit_version(
    root: Where,
    version: int | None = None,
    sample: int = 8,
    ground_truth: Path | None = None,
    seed: int = 0,
) -> AuditResult:
    """Stream ``root``'s version once through every collector; keep a uniform sample of ``sample`` records.

    The filters' Table 2/3 statistics consume an iterable of rows, so they drive the pass: each row
    they pull is first handed, as a record, to the other collectors.
    """
    started = time.perf_counter()
    root = location(root)
    manifest = require_manifest(root, version)
    stats, agreement = StatsCollector(seed=seed), AgreementCollector()
    truth = GroundTruthCollector(ground_truth) if ground_truth is not None else None
    samples: Reservoir[ImageRecord] = Reservoir(sample, seed=seed)

    def rows() -> Iterator[dict]:
        for batch in iter_batches(root, manifest.version, batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                record = ImageRecord.from_row(row)
                stats.add(record)
                agreement.add(record)
                samples.add(record)
                if truth is not None:
                    truth.add(record)
                yield row

    corpus = compute_statistics(rows())
    return AuditResult(
        root=root,
        manifest=manifest,
        stats=stats.stats,
        agreement=agreement,
        quarantine=quarantine_reasons(root, manifest.version),
        paper=paper_measures(corpus),
        samples=sorted(samples.items, key=lambda r: r.source_uri),
        ground_truth=None if truth is None else truth.result(),
        seconds=time.perf_counter() - started,
        skipped=skipped_summary(root, manifest),
    )

"""A stratified sample for human review, exported as COCO plus images.

Strata are (source, kind, score band) of regions, and of texts by granularity. Each stratum keeps
the ``k`` images with the smallest hash of (stratum, image id), a deterministic, uniform choice made
while streaming. Images are then taken round-robin over the strata until ``k`` are chosen, so rare
strata are represented; a second pass writes those images with all their regions.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections import defaultdict
from collections.abc import Iterable

from engine.exports.coco import COCO_TASKS, CocoWriter
from engine.exports.destination import export_folder
from engine.exports.report import ExportReport
from engine.store.integrity import verify_checksums
from engine.store.location import Where, location
from engine.store.manifest import require_manifest
from engine.store.reader import iter_records
from schemas.records import ImageRecord

SCORE_BANDS = (0.3, 0.5, 0.7, 0.9)


def score_band(score: float | None) -> str:
    """``none``, ``<0.3``, ``0.3-0.5``, ``0.5-0.7``, ``0.7-0.9`` or ``>=0.9``."""
    if score is None:
        return "none"
    lower = None
    for edge in SCORE_BANDS:
        if score < edge:
            return f"<{edge}" if lower is None else f"{lower}-{edge}"
        lower = edge
    return f">={SCORE_BANDS[-1]}"


def strata_of(record: ImageRecord) -> set[str]:
    strata = {f"{r.provenance.source}/{r.kind}/{score_band(r.score)}" for r in record.regions}
    strata |= {f"{t.provenance.source}/{t.granularity}/{score_band(t.score)}" for t in record.texts}
    return strata or {"unannotated"}


def _priority(stratum: str, image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{stratum}:{image_id}".encode()).digest()[:8], "big")


def choose_images(records: Iterable[ImageRecord], k: int) -> tuple[list[str], dict[str, list[str]]]:
    """The ``k`` image ids to review, and each stratum's candidates (smallest hashes first)."""
    heaps: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        for stratum in strata_of(record):
            entry = (-_priority(stratum, record.image_id), record.image_id)
            heap = heaps[stratum]
            if len(heap) < k:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    candidates = {s: [image for _, image in sorted(heap, reverse=True)] for s, heap in sorted(heaps.items())}
    chosen: list[str] = []
    depth = 0
    while len(chosen) < k and any(depth < len(c) for c in candidates.values()):
        for images in candidates.values():
            if depth < len(images) and images[depth] not in chosen and len(chosen) < k:
                chosen.append(images[depth])
        depth += 1
    return chosen, candidates


def export_review(root: Where, destination: Where, k: int, version: int | None = None) -> ExportReport:
    """Write the ``k`` review images with all their regions as one COCO file under ``destination``
    (images without location metadata); a failed export removes what it wrote."""
    started = time.perf_counter()
    root = location(root)
    manifest = require_manifest(root, version)
    verify_checksums(root, manifest.shards)  # a swapped shard would sample other images than it names
    version = manifest.version
    chosen, candidates = choose_images(iter_records(root, version), k)
    wanted = set(chosen)
    with (
        export_folder(destination, "the review folder") as folder,
        CocoWriter(folder, COCO_TASKS, ExportReport("review", location(destination))) as writer,
    ):
        for record in iter_records(root, version):
            if record.image_id in wanted:
                writer.add(record)
        report = writer.close()
    report.annotations["strata"] = len(candidates)
    report.seconds = time.perf_counter() - started
    return report

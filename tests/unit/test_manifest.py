"""Manifest.next: every published version is numbered, dated and counted in one place."""

from __future__ import annotations

from engine.store.manifest import Manifest
from engine.store.writer import ShardInfo
from schemas.arrow import SCHEMA_VERSION

SHARDS = [
    ShardInfo("annotations/a.parquet", 2, 10, {"images": 2, "regions": {"total": 3, "object": 3}}),
    ShardInfo("annotations/b.parquet", 1, 10, {"images": 1, "regions": {"total": 1, "ocr_line": 1}}),
]
QUARANTINE = [ShardInfo("quarantine/q.parquet", 2, 10, {"total": 2, "empty": 1, "too_large": 1})]


def successor(previous: Manifest | None, run_id: str) -> Manifest:
    return Manifest.next(
        previous,
        run_id=run_id,
        config_fingerprint="f" * 16,
        profile="offline",
        stages={"ocr": "1"},
        stage_kinds={"ocr": "specialists"},
        models={"ocr": "pp-ocrv4"},
        shards=SHARDS,
        quarantine=QUARANTINE,
        tombstones=[],
        probe_index=None,
        extra={"full": False},
    )


def test_the_first_version_is_number_one_without_a_parent() -> None:
    first = successor(None, "run-1")
    assert (first.version, first.parent, first.run_id, first.schema_version) == (1, None, "run-1", SCHEMA_VERSION)


def test_the_next_version_follows_its_parent() -> None:
    second = successor(successor(None, "run-1"), "run-2")
    assert (second.version, second.parent, second.run_id) == (2, 1, "run-2")


def test_counts_sum_the_shards_and_the_quarantine() -> None:
    counts = successor(None, "run-1").counts
    assert counts["images"] == 3 and counts["regions"] == {"total": 4, "object": 3, "ocr_line": 1}
    assert counts["quarantined"] == {"total": 2, "empty": 1, "too_large": 1}

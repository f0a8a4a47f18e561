"""What changed between two versions of a dataset: images added, removed and re-annotated, images curation
newly skipped (or no longer skips), near-duplicate groups, and counts.

An image is *re-annotated* when both versions hold it but its row differs (its annotations, drops,
changes, errors or stage fingerprints). Rows read from a shard both versions list are equal by construction
and are not compared. The *changes* are the in-place changes refinement recorded (``schemas.records.Change``)
that the newer version holds and the older did not: boxes fused, labels changed, additions, phrases moved.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.store.counts import Counts
from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.reader import iter_batches, read_shard
from schemas.arrow import conform

CONTENT_COLUMNS = ["texts", "regions", "phrases", "dropped", "changes", "errors", "stages"]


@dataclass(frozen=True)
class ChangeLine:
    """One change new in the newer version, for printing."""

    image_id: str
    field: str
    annotation: str
    old: str | None
    new: str | None
    round: int


@dataclass
class VersionDiff:
    older: int
    newer: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reannotated: list[str] = field(default_factory=list)
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)
    unskipped: list[str] = field(default_factory=list)
    groups: tuple[int, int] = (0, 0)
    count_changes: dict[str, tuple[int, int]] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    change_lines: list[ChangeLine] = field(default_factory=list)


def _rows_by_id(root: Where, manifest: Manifest, skip: set[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for shard in manifest.shards:
        if shard.path in skip:
            continue
        # Whole shards, conformed: one of an older schema version has no ``changes`` column to select.
        table = conform(read_shard(root, shard)).select(["image_id", *CONTENT_COLUMNS])
        for row in table.to_pylist():
            row["changes"] = row["changes"] or []  # null (before schema 1.2.0) and none are the same
            rows[row.pop("image_id")] = row
    return rows


def skipped_rows(root: Where, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """image_id -> its row of ``manifest``'s skipped table (without measures)."""
    columns = ["image_id", "source_uri", "source_uris", "rule", "value", "threshold", "duplicate_of"]
    return {row["image_id"]: row for shard in manifest.skipped for row in read_shard(root, shard, columns).to_pylist()}


def near_duplicate_groups(rows: dict[str, dict[str, Any]]) -> int:
    """Groups among skipped rows: the distinct representatives their copies name."""
    return len({row["duplicate_of"] for row in rows.values() if row["duplicate_of"]})


def _ids(root: Where, manifest: Manifest) -> set[str]:
    return {i for s in manifest.shards for i in read_shard(root, s, ["image_id"]).column(0).to_pylist()}


def flatten_counts(counts: Counts, prefix: str = "") -> Iterator[tuple[str, int]]:
    """``{"regions": {"total": 3, "ocr_line": 2}}`` -> ``("regions.total", 3), ("regions.ocr_line", 2)``."""
    for key, value in sorted(counts.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten_counts(value, name + ".")
        else:
            yield name, int(value)


def diff_versions(root: Where, older: Manifest, newer: Manifest) -> VersionDiff:
    old_ids, new_ids = _ids(root, older), _ids(root, newer)
    shared = {s.path for s in older.shards} & {s.path for s in newer.shards}
    old_rows, new_rows = _rows_by_id(root, older, shared), _rows_by_id(root, newer, shared)
    both = old_ids & new_ids
    reannotated = sorted(i for i in both if i in old_rows and i in new_rows and old_rows[i] != new_rows[i])
    counted, lines = new_changes(old_rows, new_rows)
    before, after = dict(flatten_counts(older.counts)), dict(flatten_counts(newer.counts))
    changes = {k: (before.get(k, 0), after.get(k, 0)) for k in sorted(before.keys() | after.keys())}
    old_skipped, new_skipped = skipped_rows(root, older), skipped_rows(root, newer)
    return VersionDiff(
        older.version,
        newer.version,
        added=sorted(new_ids - old_ids),
        removed=sorted(old_ids - new_ids),
        reannotated=reannotated,
        skipped={i: new_skipped[i] for i in sorted(new_skipped.keys() - old_skipped.keys())},
        unskipped=sorted(old_skipped.keys() - new_skipped.keys()),
        groups=(near_duplicate_groups(old_skipped), near_duplicate_groups(new_skipped)),
        count_changes={k: v for k, v in changes.items() if v[0] != v[1]},
        changes=counted,
        change_lines=lines,
    )


def new_changes(
    old_rows: dict[str, dict[str, Any]], new_rows: dict[str, dict[str, Any]]
) -> tuple[dict[str, int], list[ChangeLine]]:
    """The changes each newer row holds that its older row (if any) did not: counts per field, and each one."""
    counts: dict[str, int] = {}
    lines = []
    for image_id in sorted(new_rows):
        before = old_rows.get(image_id, {}).get("changes") or []
        for change in new_rows[image_id]["changes"]:
            if change in before:
                continue
            counts[change["field"]] = counts.get(change["field"], 0) + 1
            annotation = f"{change['annotation_type']} {change['annotation_id']}"
            lines.append(
                ChangeLine(image_id, change["field"], annotation, change["old"], change["new"], change["round"])
            )
    return counts, lines


def source_paths(root: Where, manifest: Manifest, image_ids: Collection[str]) -> dict[str, list[str]]:
    """The source paths of ``image_ids`` in the version of ``manifest`` (a scan of two columns)."""
    if not image_ids:
        return {}
    wanted = pa.array(sorted(image_ids), pa.string())
    paths: dict[str, list[str]] = {}
    for batch in iter_batches(root, manifest.version, columns=["image_id", "source_uris"], batch_size=4096):
        found = batch.filter(pc.is_in(batch.column(0), value_set=wanted))
        for image_id, uris in zip(found.column(0).to_pylist(), found.column(1).to_pylist(), strict=True):
            paths[image_id] = list(uris or [])
    return paths

"""Which probed images go to the specialists: one call from probe results to (representatives, skipped).

Gates first (an image below a gate takes no part in grouping, so it cannot become a representative),
then near-duplicate groups among the rest. Every input row ends in exactly one of the two tables.
This is the in-memory path, for tests and runs that fit one process; on Ray Data the gates are a
``map_batches`` that splits rows into kept and skipped, and the grouping follows the steps in
``curation/near_duplicates.py``, ending in a join of the representatives back onto the probe rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from filters.curation.gates import gate_image
from filters.curation.near_duplicates import group_near_duplicates, hamming
from filters.curation.settings import CurationSettings, DedupSettings
from schemas.arrow import SKIPPED_SCHEMA
from schemas.records import ImageMeasures

NEAR_DUPLICATE = "near_duplicate"
REQUIRED_COLUMNS = ("source_uri", "image_id", "measures")


@dataclass(frozen=True)
class Selection:
    """``representatives``: the input rows to annotate, with ``near_duplicates`` (image ids of the copies
    each one stands for); ``skipped``: one :data:`schemas.arrow.SKIPPED_SCHEMA` row per image not annotated."""

    representatives: pa.Table
    skipped: pa.Table


def select_for_annotation(probes: pa.Table, settings: CurationSettings) -> Selection:
    """Gate and group ``probes`` (one row per distinct image: ``source_uri``, ``image_id`` and ``measures``,
    a :data:`schemas.arrow.IMAGE_MEASURES` struct; other columns are kept). Rows without measures cannot be
    judged and are annotated. Optional columns: ``source_uris`` (every path of the image, copied to its
    skipped row) and ``annotated`` (bool: an earlier version annotated the image, so it is its group's
    representative before any larger copy, and a refresh does not annotate the group again)."""
    missing = [name for name in REQUIRED_COLUMNS if name not in probes.column_names]
    if missing:
        raise ValueError(f"probe table lacks column(s) {missing} (has {probes.column_names})")
    image_ids = probes.column("image_id").to_pylist()
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("probe table holds an image_id twice; group paths of identical bytes before curation")
    uris = probes.column("source_uri").to_pylist()
    all_uris = probes.column("source_uris").to_pylist() if "source_uris" in probes.column_names else None
    annotated = probes.column("annotated").to_pylist() if "annotated" in probes.column_names else None
    measures = [None if m is None else ImageMeasures.from_dict(m) for m in probes.column("measures").to_pylist()]
    skipped: list[dict] = []
    candidates = []
    for position, measured in enumerate(measures):
        verdict = None if measured is None else gate_image(measured, settings.gates)
        if verdict is None:
            candidates.append(position)
        else:
            skipped.append(_skip(uris[position], image_ids[position], verdict.rule, verdict.value, verdict.threshold))
    represented: dict[int, list[str]] = {}
    if settings.dedup.enabled:
        grouped = [p for p in candidates if measures[p] is not None]
        found = _near_duplicates(grouped, measures, uris, image_ids, annotated, settings.dedup)
        for copy, representative, detail in found:
            skipped.append(
                _skip(
                    uris[copy],
                    image_ids[copy],
                    NEAR_DUPLICATE,
                    *detail,
                    duplicate_of=image_ids[representative],
                )
            )
            represented.setdefault(representative, []).append(image_ids[copy])
    positions = {image_id: position for position, image_id in enumerate(image_ids)}
    for row in skipped:
        paths = all_uris[positions[row["image_id"]]] if all_uris else None
        row["source_uris"] = list(paths) if paths else [row["source_uri"]]
        measured = measures[positions[row["image_id"]]]
        row["measures"] = None if measured is None else measured.to_dict()
    skipped_ids = {row["image_id"] for row in skipped}
    keep = [position for position, image_id in enumerate(image_ids) if image_id not in skipped_ids]
    representatives = probes.take(pa.array(keep, pa.int64()))
    copies = [sorted(represented.get(position, [])) for position in keep]
    representatives = representatives.append_column("near_duplicates", pa.array(copies, pa.list_(pa.string())))
    skipped.sort(key=lambda row: row["source_uri"])
    return Selection(representatives, pa.Table.from_pylist(skipped, schema=SKIPPED_SCHEMA))


def _skip(
    uri: str,
    image_id: str,
    rule: str,
    value: float | None,
    threshold: float | None,
    detail: str | None = None,
    duplicate_of: str | None = None,
) -> dict:
    return {
        "source_uri": uri,
        "image_id": image_id,
        "rule": rule,
        "value": value,
        "threshold": threshold,
        "detail": detail,
        "duplicate_of": duplicate_of,
    }


def _near_duplicates(
    positions: list[int],
    measures: list[ImageMeasures | None],
    uris: list[str],
    image_ids: list[str],
    annotated: list[bool | None] | None,
    dedup: DedupSettings,
) -> list[tuple[int, int, tuple[float, float, str]]]:
    """(copy, its representative, (value, threshold, detail)) for every grouped image that is not a
    representative; value and threshold are of the first hash kind, the detail names every distance."""
    if len(positions) < 2:
        return []
    chosen = [measures[p] for p in positions]
    columns = {kind: np.array([getattr(m, kind) for m in chosen], dtype=np.uint64) for kind in dedup.hashes}
    columns["width"] = np.array([m.width for m in chosen], dtype=np.int64)
    columns["height"] = np.array([m.height for m in chosen], dtype=np.int64)
    columns["source_uri"] = np.array([uris[p] for p in positions])
    columns["image_id"] = np.array([image_ids[p] for p in positions])
    if annotated is not None:
        columns["preferred"] = np.array([bool(annotated[p]) for p in positions], dtype=bool)
    groups = group_near_duplicates(columns, dedup)
    copies = groups.duplicates
    representatives = groups.representative[copies]
    limits = dedup.max_distances()
    distances = {kind: hamming(columns[kind][copies], columns[kind][representatives]) for kind in dedup.hashes}
    first = dedup.hashes[0]
    out = []
    for index, (copy, representative) in enumerate(zip(copies, representatives, strict=True)):
        detail = ", ".join(f"{kind} {distances[kind][index]} (max {limits[kind]})" for kind in dedup.hashes)
        detail += f" from {columns['source_uri'][representative]}"
        if any(distances[kind][index] > limits[kind] for kind in dedup.hashes):
            detail += "; grouped through other copies"
        value = (float(distances[first][index]), float(limits[first]), detail)
        out.append((positions[copy], positions[representative], value))
    return out

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
import pyarrow.compute as pc

from filters.curation.gates import GATE_RULES, gate_columns
from filters.curation.hash_bands import IN_PROCESS, PairSearch
from filters.curation.near_duplicates import group_near_duplicates, hamming
from filters.curation.settings import CurationSettings, DedupSettings
from schemas.arrow import IMAGE_MEASURES, SKIPPED_SCHEMA

NEAR_DUPLICATE = "near_duplicate"
REQUIRED_COLUMNS = ("source_uri", "image_id", "measures")


@dataclass(frozen=True)
class Selection:
    """``representatives``: the input rows to annotate, with ``near_duplicates`` (image ids of the copies
    each one stands for); ``skipped``: one :data:`schemas.arrow.SKIPPED_SCHEMA` row per image not annotated."""

    representatives: pa.Table
    skipped: pa.Table


def select_for_annotation(probes: pa.Table, settings: CurationSettings, search: PairSearch = IN_PROCESS) -> Selection:
    """Gate and group ``probes`` (one row per distinct image: ``source_uri``, ``image_id`` and ``measures``,
    a :data:`schemas.arrow.IMAGE_MEASURES` struct; other columns are kept). Rows without measures cannot be
    judged and are annotated. Optional columns: ``source_uris`` (every path of the image, copied to its
    skipped row) and ``annotated`` (bool: an earlier version annotated the image, so it is its group's
    representative before any larger copy, and a refresh does not annotate the group again).

    Columnar throughout (the measures struct read as NumPy columns): Python objects only for skipped rows."""
    missing = [name for name in REQUIRED_COLUMNS if name not in probes.column_names]
    if missing:
        raise ValueError(f"probe table lacks column(s) {missing} (has {probes.column_names})")
    image_ids = probes.column("image_id").combine_chunks()
    if pc.count_distinct(image_ids, mode="all").as_py() != len(image_ids):
        raise ValueError("probe table holds an image_id twice; group paths of identical bytes before curation")
    uris = probes.column("source_uri").combine_chunks()
    measures = probes.column("measures").combine_chunks().cast(IMAGE_MEASURES)
    measured = measures.is_valid().to_numpy(zero_copy_only=False)
    columns = {name: _field(measures, name, measured) for name in GATE_COLUMNS}
    rule, value, threshold = gate_columns(columns, settings.gates)
    gated = np.flatnonzero(rule >= 0)
    parts = [
        _skipped_rows(
            probes,
            gated,
            pa.array(np.array(GATE_RULES)[rule[gated]], pa.string()),
            value[gated],
            threshold[gated],
            pa.nulls(gated.size, pa.string()),
            pa.nulls(gated.size, pa.string()),
        )
    ]
    copies, representatives = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if settings.dedup.enabled:
        grouped = np.flatnonzero(measured & (rule < 0))
        copies, representatives, part = _near_duplicates(
            probes, grouped, measures, uris, image_ids, settings.dedup, search
        )
        parts.append(part)
    skipped = pa.concat_tables(parts)
    keep = np.ones(probes.num_rows, bool)
    keep[gated] = False
    keep[copies] = False
    kept = np.flatnonzero(keep)
    representatives_table = probes.take(pa.array(kept, pa.int64()))
    near = _copies_by_representative(probes.num_rows, kept, representatives, image_ids.take(pa.array(copies)))
    representatives_table = representatives_table.append_column("near_duplicates", near)
    return Selection(representatives_table, skipped.sort_by("source_uri"))


GATE_COLUMNS = ("width", "height", "aspect_ratio", "sharpness", "single_colour_fraction")


def _field(measures: pa.StructArray, name: str, measured: np.ndarray) -> np.ndarray:
    """One measure as float64 (NaN where the image has no measures)."""
    values = pc.fill_null(measures.field(name), 0).to_numpy(zero_copy_only=False).astype(np.float64)
    values[~measured] = np.nan
    return values


def _skipped_rows(
    probes: pa.Table,
    positions: np.ndarray,
    rules: pa.Array,
    values: np.ndarray,
    thresholds: np.ndarray,
    details: pa.Array,
    duplicate_of: pa.Array,
) -> pa.Table:
    """:data:`schemas.arrow.SKIPPED_SCHEMA` rows for the rows of ``probes`` at ``positions``."""
    rows = probes.take(pa.array(positions, pa.int64()))
    uris = rows.column("source_uri").combine_chunks()
    singles = pa.ListArray.from_arrays(pa.array(np.arange(len(uris) + 1, dtype=np.int32)), uris)
    if "source_uris" in rows.column_names:
        places = rows.column("source_uris").combine_chunks().cast(pa.list_(pa.string()))
        empty = pc.fill_null(pc.equal(pc.list_value_length(places), 0), True)
        places = pc.if_else(empty, singles, places)
    else:
        places = singles
    return pa.Table.from_arrays(
        [
            uris,
            rows.column("image_id").combine_chunks(),
            places,
            rules,
            pa.array(values, pa.float64()),
            pa.array(thresholds, pa.float64()),
            details,
            duplicate_of,
            rows.column("measures").combine_chunks().cast(IMAGE_MEASURES),
        ],
        schema=SKIPPED_SCHEMA,
    )


def _copies_by_representative(
    count: int, kept: np.ndarray, representatives: np.ndarray, copy_ids: pa.Array
) -> pa.ListArray:
    """For each kept row (positions ``kept``, ascending), the sorted image ids of the copies it stands for."""
    order = pa.table({"representative": representatives, "image_id": copy_ids}).sort_by(
        [("representative", "ascending"), ("image_id", "ascending")]
    )
    counts = np.bincount(representatives, minlength=count)[kept] if count else np.zeros(0, np.int64)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    values = order.column("image_id").combine_chunks() if order.num_rows else pa.array([], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values.cast(pa.string()))


def _near_duplicates(
    probes: pa.Table,
    positions: np.ndarray,
    measures: pa.StructArray,
    uris: pa.Array,
    image_ids: pa.Array,
    dedup: DedupSettings,
    search: PairSearch,
) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """(positions of the copies, positions of their representatives, their skipped rows) among the rows at
    ``positions``; a row's value and threshold are of the first hash kind, its detail names every distance.
    ``source_uri`` and ``image_id`` go to the grouping as their ranks (the order is all it uses)."""
    none = np.zeros(0, np.int64)
    if positions.size < 2:
        return none, none, _skipped_rows(probes, none, *_no_details(0))
    take = pa.array(positions, pa.int64())
    chosen = measures.take(take)
    columns = {kind: chosen.field(kind).to_numpy(zero_copy_only=False).astype(np.uint64) for kind in dedup.hashes}
    columns["width"] = chosen.field("width").to_numpy(zero_copy_only=False).astype(np.int64)
    columns["height"] = chosen.field("height").to_numpy(zero_copy_only=False).astype(np.int64)
    columns["source_uri"] = _ranks(uris.take(take))
    columns["image_id"] = _ranks(image_ids.take(take))
    if "annotated" in probes.column_names:
        annotated = probes.column("annotated").combine_chunks().take(take)
        columns["preferred"] = pc.fill_null(annotated, False).to_numpy(zero_copy_only=False).astype(bool)
    groups = group_near_duplicates(columns, dedup, search)
    copies = groups.duplicates
    representatives = groups.representative[copies]
    limits = dedup.max_distances()
    distances = {kind: hamming(columns[kind][copies], columns[kind][representatives]) for kind in dedup.hashes}
    first = dedup.hashes[0]
    representative_uris = uris.take(pa.array(positions[representatives], pa.int64())).to_pylist()
    details = []
    for index, representative_uri in enumerate(representative_uris):
        detail = ", ".join(f"{kind} {distances[kind][index]} (max {limits[kind]})" for kind in dedup.hashes)
        detail += f" from {representative_uri}"
        if any(distances[kind][index] > limits[kind] for kind in dedup.hashes):
            detail += "; grouped through other copies"
        details.append(detail)
    copy_positions, representative_positions = positions[copies], positions[representatives]
    rows = _skipped_rows(
        probes,
        copy_positions,
        pa.array([NEAR_DUPLICATE] * copies.size, pa.string()),
        distances[first].astype(np.float64),
        np.full(copies.size, float(limits[first])),
        pa.array(details, pa.string()),
        image_ids.take(pa.array(representative_positions, pa.int64())),
    )
    return copy_positions, representative_positions, rows


def _no_details(count: int) -> tuple[pa.Array, np.ndarray, np.ndarray, pa.Array, pa.Array]:
    return (
        pa.array([], pa.string()),
        np.zeros(count),
        np.zeros(count),
        pa.nulls(count, pa.string()),
        pa.nulls(count, pa.string()),
    )


def _ranks(values: pa.Array) -> np.ndarray:
    """Each value's rank in ascending order (equal values share one): the same order as the strings."""
    return pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.int64)

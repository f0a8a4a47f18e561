"""Which probed images go to the specialists: one call from probe results to (representatives, skipped).

Gates first (an image below a gate takes no part in grouping, so it cannot become a representative),
then near-duplicate groups among the rest. Every input row ends in exactly one of the two tables.

The work is cut in parts, so the images can be judged where they lie (``engine.ingest.curation.curate_parts``
runs a part per image-id partition): :func:`gate_part` gates one part and returns the few columns grouping
needs; :func:`group_members` groups every part's columns (hashes and sizes only: where the columns are, a Ray
task for a large run), and :func:`copies_of_members` reads the rows of the images in groups of two or more to
pick representatives (:func:`near_duplicate_copies`: both, here). :func:`select_for_annotation` is both
steps over one part, in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.curation.gates import GATE_RULES, gate_columns
from filters.curation.hash_bands import IN_PROCESS, PairSearch
from filters.curation.near_duplicates import hamming, near_duplicate_components, pick_representatives
from filters.curation.settings import CurationSettings
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

    The steps of :func:`gate_part` and :func:`near_duplicate_copies` on one part: columnar throughout (the
    measures struct read as NumPy columns), Python objects only for skipped rows."""
    gated = gate_part(probes, settings)
    copies = NO_COPIES
    if settings.dedup.enabled:
        copies = near_duplicate_copies([gated], lambda at: [probes.take(pa.array(at[0], pa.int64()))], settings, search)
    keep = np.ones(probes.num_rows, bool)
    keep[gated.gated] = False
    keep[copies.copy_position] = False
    kept = np.flatnonzero(keep)
    representatives_table = probes.take(pa.array(kept, pa.int64()))
    copy_ids = copies.skipped.column("image_id").combine_chunks()
    near = _copies_by_representative(probes.num_rows, kept, copies.representative_position, copy_ids)
    representatives_table = representatives_table.append_column("near_duplicates", near)
    skipped = pa.concat_tables([gated.skipped, copies.skipped])
    return Selection(representatives_table, skipped.sort_by("source_uri"))


@dataclass(frozen=True)
class GatedPart:
    """One part of the images judged: the positions of those an image gate skipped (``gated``) and their
    skipped rows, and what the near-duplicate grouping needs of the measured others (``grouping``: their
    ``position`` in the part, one uint64 column per hash kind, ``width``, ``height`` and ``preferred``), and
    how many rows the part has."""

    gated: np.ndarray
    skipped: pa.Table
    grouping: dict[str, np.ndarray]
    rows: int


def gate_part(probes: pa.Table, settings: CurationSettings) -> GatedPart:
    """The gates over one part of the images (the columns of :func:`select_for_annotation`'s ``probes``; an
    id in two parts is the caller's to prevent), and the grouping columns of the images they keep."""
    missing = [name for name in REQUIRED_COLUMNS if name not in probes.column_names]
    if missing:
        raise ValueError(f"probe table lacks column(s) {missing} (has {probes.column_names})")
    image_ids = probes.column("image_id")
    if pc.count_distinct(image_ids, mode="all").as_py() != len(image_ids):
        raise ValueError("probe table holds an image_id twice; group paths of identical bytes before curation")
    measures = probes.column("measures").combine_chunks().cast(IMAGE_MEASURES)
    measured = measures.is_valid().to_numpy(zero_copy_only=False)
    columns = {name: _field(measures, name, measured) for name in GATE_COLUMNS}
    rule, value, threshold = gate_columns(columns, settings.gates)
    gated = np.flatnonzero(rule >= 0)
    nulls = pa.nulls(gated.size, pa.string())
    rules = pa.array(np.array(GATE_RULES)[rule[gated]], pa.string())
    skipped = skipped_rows(probes, gated, rules, value[gated], threshold[gated], nulls, nulls)
    grouped = np.flatnonzero(measured & (rule < 0)) if settings.dedup.enabled else np.zeros(0, np.int64)
    grouping = _grouping_columns(probes, measures, grouped, settings.dedup.hashes)
    return GatedPart(gated, skipped, grouping, probes.num_rows)


def _grouping_columns(
    probes: pa.Table, measures: pa.StructArray, positions: np.ndarray, hashes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    chosen = measures.take(pa.array(positions, pa.int64()))
    columns = {kind: chosen.field(kind).to_numpy(zero_copy_only=False).astype(np.uint64) for kind in hashes}
    columns["width"] = chosen.field("width").to_numpy(zero_copy_only=False).astype(np.int64)
    columns["height"] = chosen.field("height").to_numpy(zero_copy_only=False).astype(np.int64)
    preferred = np.zeros(positions.size, bool)
    if "annotated" in probes.column_names:
        annotated = probes.column("annotated").combine_chunks().take(pa.array(positions, pa.int64()))
        preferred = pc.fill_null(annotated, False).to_numpy(zero_copy_only=False).astype(bool)
    return {"position": positions.astype(np.int64), **columns, "preferred": preferred}


@dataclass(frozen=True)
class Copies:
    """Near-duplicates found across parts: each copy's part and position, its representative's, and the
    copies' skipped rows (in the same order)."""

    copy_part: np.ndarray
    copy_position: np.ndarray
    representative_part: np.ndarray
    representative_position: np.ndarray
    skipped: pa.Table


_NONE = np.zeros(0, np.int64)
NO_COPIES = Copies(_NONE, _NONE, _NONE, _NONE, SKIPPED_SCHEMA.empty_table())
# Each part's positions -> those rows of the part (``source_uri``, ``image_id``, ``source_uris``, ``measures``).
MemberRows = Callable[[list[np.ndarray]], list[pa.Table]]


@dataclass(frozen=True)
class GroupMembers:
    """The images in near-duplicate groups of two or more among ``parts`` parts, in part order then position
    order: each one's ``part``, ``position`` in it and ``component`` (its group's label), and its grouping columns
    (``width``, ``height``, ``preferred`` and one column per hash kind)."""

    parts: int
    part: np.ndarray
    position: np.ndarray
    component: np.ndarray
    columns: dict[str, np.ndarray]


def group_members(
    groupings: Sequence[dict[str, np.ndarray]], settings: CurationSettings, search: PairSearch = IN_PROCESS
) -> GroupMembers:
    """The near-duplicate groups among every part's grouping columns (each part's ``GatedPart.grouping``; steps of
    ``curation/near_duplicates.py``: components from the hashes and sizes alone), kept for the images in a group
    of two or more: the only images the next step (:func:`copies_of_members`) needs, a few in a hundred."""
    grouping = {name: np.concatenate([part[name] for part in groupings]) for name in groupings[0]}
    part_of = np.concatenate([np.full(p["position"].size, k, np.int64) for k, p in enumerate(groupings)])
    if part_of.size < 2:
        return GroupMembers(len(groupings), _NONE, _NONE, _NONE, {name: c[:0] for name, c in grouping.items()})
    component, _, _ = near_duplicate_components(grouping, settings.dedup, search)
    members = np.flatnonzero(np.bincount(component)[component] > 1)
    columns = {name: column[members] for name, column in grouping.items() if name != "position"}
    return GroupMembers(len(groupings), part_of[members], grouping["position"][members], component[members], columns)


def near_duplicate_copies(
    parts: Sequence[GatedPart], member_rows: MemberRows, settings: CurationSettings, search: PairSearch = IN_PROCESS
) -> Copies:
    """The near-duplicates among every part's images: :func:`group_members`, then :func:`copies_of_members`."""
    return copies_of_members(group_members([part.grouping for part in parts], settings, search), member_rows, settings)


def copies_of_members(members: GroupMembers, member_rows: MemberRows, settings: CurationSettings) -> Copies:
    """Each group's representative picked among its ``members`` from their rows (``member_rows``: the only
    strings read), and the others as its copies. A copy's value and threshold are of the first hash kind; its
    detail names every distance."""
    if not members.part.size:
        return NO_COPIES
    dedup = settings.dedup
    member_part, member_position, columns = members.part, members.position, members.columns
    rows = pa.concat_tables(member_rows([member_position[member_part == k] for k in range(members.parts)]))
    uris, ids = rows.column("source_uri").combine_chunks(), rows.column("image_id").combine_chunks()
    pixels = columns["width"] * columns["height"]
    representative = pick_representatives(members.component, pixels, _ranks(uris), _ranks(ids), columns["preferred"])
    copies = np.flatnonzero(representative != np.arange(member_part.size))
    representatives = representative[copies]
    distances = {kind: hamming(columns[kind][copies], columns[kind][representatives]) for kind in dedup.hashes}
    limits = dedup.max_distances()
    details = []
    for index, representative_uri in enumerate(uris.take(pa.array(representatives, pa.int64())).to_pylist()):
        detail = ", ".join(f"{kind} {distances[kind][index]} (max {limits[kind]})" for kind in dedup.hashes)
        detail += f" from {representative_uri}"
        if any(distances[kind][index] > limits[kind] for kind in dedup.hashes):
            detail += "; grouped through other copies"
        details.append(detail)
    first = dedup.hashes[0]
    skipped = skipped_rows(
        rows,
        copies,
        pa.array([NEAR_DUPLICATE] * copies.size, pa.string()),
        distances[first].astype(np.float64),
        np.full(copies.size, float(limits[first])),
        pa.array(details, pa.string()),
        ids.take(pa.array(representatives, pa.int64())),
    )
    return Copies(
        member_part[copies],
        member_position[copies],
        member_part[representatives],
        member_position[representatives],
        skipped,
    )


GATE_COLUMNS = ("width", "height", "aspect_ratio", "sharpness", "single_colour_fraction")


def _field(measures: pa.StructArray, name: str, measured: np.ndarray) -> np.ndarray:
    """One measure as float64 (NaN where the image has no measures)."""
    values = pc.fill_null(measures.field(name), 0).to_numpy(zero_copy_only=False).astype(np.float64)
    values[~measured] = np.nan
    return values


def skipped_rows(
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


def _ranks(values: pa.Array) -> np.ndarray:
    """Each value's rank in ascending order (equal values share one): the same order as the strings."""
    return pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy(zero_copy_only=False).astype(np.int64)

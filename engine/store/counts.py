"""Annotation counts of a shard table, computed with Arrow kernels (no per-row Python)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.records import MASK_DROP, MASK_DROP_SUFFIX

Counts = dict[str, Any]


def value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    if len(values) == 0:
        return {}
    counted = pc.value_counts(values)
    return {
        str(v): int(n)
        for v, n in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    }


def _flat(table: pa.Table, column: str) -> pa.ChunkedArray | pa.Array:
    return (
        pc.list_flatten(table.column(column))
        if table.num_rows
        else pa.array([], table.schema.field(column).type.value_type)
    )


def drop_keys(dropped: Any) -> Any:
    """``Drop.key`` of every drop (``stage/rule``, `` (mask)`` for a mask drop), with Arrow kernels."""
    keys = pc.binary_join_element_wise(pc.struct_field(dropped, "stage"), pc.struct_field(dropped, "rule"), "/")
    is_mask = pc.equal(pc.struct_field(dropped, "annotation_type"), MASK_DROP)
    return pc.if_else(is_mask, pc.binary_join_element_wise(keys, MASK_DROP_SUFFIX, ""), keys)


def count_annotations(table: pa.Table) -> Counts:
    """Counts per annotation type, kind/granularity, source, drop rule and stage error of one table."""
    texts, regions, phrases = _flat(table, "texts"), _flat(table, "regions"), _flat(table, "phrases")
    dropped, errors = _flat(table, "dropped"), _flat(table, "errors")

    def field(array: Any, name: str) -> Any:
        return pc.struct_field(array, name)

    def by_source(array: Any) -> dict[str, int]:
        return value_counts(field(field(array, "provenance"), "source")) if len(array) else {}

    rules = drop_keys(dropped) if len(dropped) else []
    counts: Counts = {
        "images": table.num_rows,
        "texts": {"total": len(texts), **value_counts(field(texts, "granularity") if len(texts) else [])},
        "regions": {"total": len(regions), **value_counts(field(regions, "kind") if len(regions) else [])},
        "phrases": {"total": len(phrases)},
        "dropped": {"total": len(dropped), **value_counts(rules)},
        "errors": {"total": len(errors), **value_counts(field(errors, "stage") if len(errors) else [])},
        "sources": {"texts": by_source(texts), "regions": by_source(regions), "phrases": by_source(phrases)},
    }
    # Refinement's in-place changes per field (schema 1.2.0; a table of an older version has none).
    changes = _flat(table, "changes") if "changes" in table.column_names else []
    if len(changes):
        counts["changes"] = {"total": len(changes), **value_counts(field(changes, "field"))}
    return counts


def merge_counts(parts: Iterable[Counts]) -> Counts:
    """Sum nested count dictionaries."""
    total: Counts = {}
    for part in parts:
        _add(total, part)
    return total


def _add(into: Counts, part: Counts) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _add(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value

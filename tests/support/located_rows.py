"""Annotation rows with the locator column the annotate phase reads them by."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.image_bytes import LOCATED_ROWS, LOCATOR_COLUMN
from engine.ingest.locator import LOCATOR, Locator


def with_locators(rows: pa.Table, locators: dict[str, Locator]) -> pa.Table:
    """``rows`` (annotation schema) with each row's locator by its ``source_uri`` (null where ``locators`` has none)."""
    found = [locators.get(uri) for uri in rows.column("source_uri").to_pylist()]
    column = pa.array([None if loc is None else loc.to_dict() for loc in found], LOCATOR)
    return rows.append_column(LOCATED_ROWS.field(LOCATOR_COLUMN), column)

"""Image bytes travel with their rows through the pixel stages (the in-flight schema).

Rows to annotate may carry a ``locator`` column (``engine/ingest/locator.py``): images inside a
WebDataset shard or a Parquet table are then read by range or by row group, never by rescanning
their container, and rows in read order (:func:`in_read_order`) let a batch read neighbours at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import pyarrow as pa

from engine.ingest.locator import LOCATOR, Locator, read_images, read_order
from schemas.arrow import ANNOTATION_SCHEMA, IN_FLIGHT_SCHEMA

INGEST_STAGE = "ingest"
LOCATOR_COLUMN = "locator"


def with_locators(rows: pa.Table, locators: Mapping[str, Locator]) -> pa.Table:
    """``rows`` (annotation schema) with each row's locator (by ``source_uri``; null for plain files),
    in read order: each container front to back, then plain files by URI."""
    uris = rows.column("source_uri").to_pylist()
    found = [locators.get(uri) for uri in uris]
    order = read_order(found, uris)
    column = pa.array([None if loc is None else loc.to_dict() for loc in found], LOCATOR)
    return rows.append_column(LOCATOR_COLUMN, column).take(pa.array(order, pa.int64()))


def attach_image_bytes(batch: pa.Table, read: bool) -> pa.Table:
    """Add each row's image bytes (empty when ``read`` is False); a file that vanished or changed
    since probing gets an ingest error."""
    found = batch.column(LOCATOR_COLUMN).to_pylist() if LOCATOR_COLUMN in batch.column_names else None
    batch = batch.select(ANNOTATION_SCHEMA.names)
    uris, ids = batch.column("source_uri").to_pylist(), batch.column("image_id").to_pylist()
    data: list[bytes] = [b""] * len(uris)
    failures: dict[int, str] = {}
    if read:
        locators = [Locator.from_dict(loc) for loc in found] if found is not None else [None] * len(uris)
        for i, (content, image_id) in enumerate(zip(read_images(uris, locators), ids, strict=True)):
            if isinstance(content, OSError):
                failures[i] = f"unreadable: {content}"
            elif hashlib.sha256(content).hexdigest() != image_id:
                failures[i] = "changed_since_probe: file bytes changed during the run"
            else:
                data[i] = content
    if failures:
        errors = batch.column("errors").to_pylist()
        for i, message in failures.items():
            errors[i] = [*(errors[i] or []), {"stage": INGEST_STAGE, "message": message}]
        index = batch.schema.get_field_index("errors")
        batch = batch.set_column(index, "errors", pa.array(errors, type=ANNOTATION_SCHEMA.field("errors").type))
    position = IN_FLIGHT_SCHEMA.get_field_index("image_bytes")
    batch = batch.add_column(position, IN_FLIGHT_SCHEMA.field("image_bytes"), pa.array(data, pa.large_binary()))
    return batch.cast(IN_FLIGHT_SCHEMA)

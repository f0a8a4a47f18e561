"""Image bytes travel with their rows through the pixel stages (the in-flight schema).

Rows to annotate may carry a ``locator`` column (``engine/ingest/locator.py``): images inside a
WebDataset shard or a Parquet table are then read by range or by row group, never by rescanning
their container, and rows in read order (:func:`in_read_order`) let a batch read neighbours at once.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.locator import LOCATOR, Locator, read_images
from schemas.arrow import ANNOTATION_SCHEMA, IN_FLIGHT_SCHEMA

INGEST_STAGE = "ingest"
LOCATOR_COLUMN = "locator"
READ_KEYS = ["read_container", "read_part", "read_at", "source_uri"]
# Annotation rows with the locator of the place their image is read from (null for a plain file).
LOCATED_ROWS = ANNOTATION_SCHEMA.append(pa.field(LOCATOR_COLUMN, LOCATOR))


def in_read_order(rows: pa.Table) -> pa.Table:
    """``rows`` (with a locator column) in read order: plain files by URI, then each container front to back."""
    keys = read_keys(rows)
    return rows.take(pc.sort_indices(keys, [(name, "ascending") for name in keys.column_names]))


def read_keys(rows: pa.Table) -> pa.Table:
    """The sort keys of read order (:data:`READ_KEYS`, ascending) of ``rows`` (with a locator column): the
    container (empty for a plain file), the Parquet row group (0 in a tar), the member's offset in a tar or
    its row in its row group, and the URI."""
    locators = rows.column(LOCATOR_COLUMN)
    offset = pc.struct_field(locators, "offset")
    in_tar = pc.is_valid(offset)
    columns = [
        pc.fill_null(pc.struct_field(locators, "container"), ""),
        pc.if_else(in_tar, 0, pc.fill_null(pc.struct_field(locators, "row_group").cast(pa.int64()), 0)),
        pc.if_else(in_tar, offset, pc.fill_null(pc.struct_field(locators, "row"), 0)).cast(pa.int64()),
        rows.column("source_uri"),
    ]
    return pa.Table.from_arrays(columns, names=READ_KEYS)


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

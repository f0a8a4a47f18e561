"""Image bytes travel with their rows through the pixel stages (the in-flight schema)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

from schemas.arrow import ANNOTATION_SCHEMA, IN_FLIGHT_SCHEMA

INGEST_STAGE = "ingest"


def attach_image_bytes(batch: pa.Table, read: bool) -> pa.Table:
    """Add each row's image bytes (empty when ``read`` is False); a file that vanished or changed
    since probing gets an ingest error."""
    batch = batch.select(ANNOTATION_SCHEMA.names)
    data: list[bytes] = []
    failures: dict[int, str] = {}
    uris, ids = batch.column("source_uri").to_pylist(), batch.column("image_id").to_pylist()
    for i, (uri, image_id) in enumerate(zip(uris, ids, strict=True)):
        content = b""
        if read:
            try:
                content = Path(uri).read_bytes()
                if hashlib.sha256(content).hexdigest() != image_id:
                    failures[i] = "changed_since_probe: file bytes changed during the run"
            except OSError as error:
                failures[i] = f"unreadable: {error}"
        data.append(content)
    if failures:
        errors = batch.column("errors").to_pylist()
        for i, message in failures.items():
            errors[i] = [*(errors[i] or []), {"stage": INGEST_STAGE, "message": message}]
        index = batch.schema.get_field_index("errors")
        batch = batch.set_column(index, "errors", pa.array(errors, type=ANNOTATION_SCHEMA.field("errors").type))
    position = IN_FLIGHT_SCHEMA.get_field_index("image_bytes")
    batch = batch.add_column(position, IN_FLIGHT_SCHEMA.field("image_bytes"), pa.array(data, pa.large_binary()))
    return batch.cast(IN_FLIGHT_SCHEMA)

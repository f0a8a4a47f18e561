"""The Arrow schema of annotation, quarantine and skipped shards, and row/table conversions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

# 1.1.0: the top-level ``metadata`` column, the input's own per-image metadata (a WebDataset ``.json`` member,
# a table's other columns) as JSON text; shards of 1.0.0 read with it null (``conform``). Additive nested
# fields keep the version: ``texts.analysis.linking_words`` reads as null from shards written before it.
# 1.2.0: the ``changes`` column, every in-place change refinement made to an annotation (what, old value, new
# value, round); shards of 1.1.0 and older read with it null (``conform``, the reader's dataset schema).
# 1.3.0: the top-level ``measures`` column (``IMAGE_MEASURES``, what curation measured at probe time);
# shards of 1.2.0 and older read with it null.
SCHEMA_VERSION = "1.3.0"

PROVENANCE = pa.struct([("source", pa.string()), ("model", pa.string()), ("round", pa.int32())])
RLE_MASK = pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])
FLOATS = pa.list_(pa.float32())

TEXT_ANALYSIS = pa.struct(
    [
        ("num_tokens", pa.int32()),
        ("objects", pa.list_(pa.string())),
        ("attributes", pa.list_(pa.string())),
        ("actions", pa.list_(pa.string())),
        ("proper_nouns", pa.list_(pa.string())),
        ("noun_phrases", pa.list_(pa.list_(pa.int32()))),
        ("object_complexity", pa.float32()),
        ("action_complexity", pa.float32()),
        ("linking_words", pa.int32()),
    ]
)

TEXT = pa.struct(
    [
        ("id", pa.string()),
        ("granularity", pa.string()),
        ("text", pa.string()),
        ("score", pa.float32()),
        ("analysis", TEXT_ANALYSIS),
        ("provenance", PROVENANCE),
    ]
)

REGION = pa.struct(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("bbox", FLOATS),
        ("quad", FLOATS),
        ("text", pa.string()),
        ("score", pa.float32()),
        ("mask", RLE_MASK),
        ("polygon", FLOATS),
        ("metrics", pa.map_(pa.string(), pa.float32())),
        ("provenance", PROVENANCE),
    ]
)

GROUNDED_REGION = pa.struct([("bbox", FLOATS), ("score", pa.float32()), ("mask", RLE_MASK), ("polygon", FLOATS)])

PHRASE = pa.struct(
    [
        ("id", pa.string()),
        ("text_id", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("phrase", pa.string()),
        ("regions", pa.list_(GROUNDED_REGION)),
        ("score", pa.float32()),
        ("provenance", PROVENANCE),
    ]
)

DROP = pa.struct(
    [
        ("annotation_type", pa.string()),
        ("annotation_id", pa.string()),
        ("stage", pa.string()),
        ("rule", pa.string()),
        ("annotation", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("by", pa.string()),
        ("round", pa.int32()),
    ]
)

# An in-place change of an annotation (``schemas.records.Change``): old and new values as JSON text.
CHANGE = pa.struct(
    [
        ("annotation_type", pa.string()),
        ("annotation_id", pa.string()),
        ("field", pa.string()),
        ("old", pa.string()),
        ("new", pa.string()),
        ("stage", pa.string()),
        ("round", pa.int32()),
        ("by", pa.string()),
    ]
)

# What curation measured on an image (``schemas.records.ImageMeasures``): a column of the probe index
# and, later, of annotation rows.
IMAGE_MEASURES = pa.struct(
    [
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("aspect_ratio", pa.float32()),
        ("phash", pa.uint64()),
        ("dhash", pa.uint64()),
        ("sharpness", pa.float32()),
        ("brightness", pa.float32()),
        ("contrast", pa.float32()),
        ("single_colour_fraction", pa.float32()),
    ]
)

STAGE_ERROR = pa.struct([("stage", pa.string()), ("message", pa.string())])

_METADATA = {b"fld_engine.schema_version": SCHEMA_VERSION.encode()}

IDENTITY_FIELDS = [
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("source_uri", pa.string(), nullable=False),
    pa.field("source_uris", pa.list_(pa.string())),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("format", pa.string()),
    pa.field("metadata", pa.string()),
    pa.field("measures", IMAGE_MEASURES),
]

ANNOTATION_FIELDS = [
    pa.field("texts", pa.list_(TEXT)),
    pa.field("regions", pa.list_(REGION)),
    pa.field("phrases", pa.list_(PHRASE)),
    pa.field("dropped", pa.list_(DROP)),
    pa.field("changes", pa.list_(CHANGE)),
    pa.field("errors", pa.list_(STAGE_ERROR)),
    pa.field("stages", pa.map_(pa.string(), pa.string())),
]

ANNOTATION_SCHEMA = pa.schema(IDENTITY_FIELDS + ANNOTATION_FIELDS, metadata=_METADATA)

# In flight between pipeline stages each row also carries the encoded image.
IN_FLIGHT_SCHEMA = pa.schema(
    [*IDENTITY_FIELDS, pa.field("image_bytes", pa.large_binary()), *ANNOTATION_FIELDS], metadata=_METADATA
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("image_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("size_bytes", pa.int64()),
    ],
    metadata=_METADATA,
)


# Good files not worth annotating: a near-duplicate of a representative (``duplicate_of``) or below an
# image gate. Like quarantine, one row per image (``source_uris``: every path holding its bytes), with the
# measured value and the threshold it crossed; ``detail`` is the reason in words; ``measures`` all of
# the image's measures (its size, for exporting a representative's annotations onto a copy).
SKIPPED_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("source_uris", pa.list_(pa.string())),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("detail", pa.string()),
        pa.field("duplicate_of", pa.string()),
        pa.field("measures", IMAGE_MEASURES),
    ],
    metadata=_METADATA,
)


# Images of the parent version that a version no longer holds, and why (``engine/refresh/tombstones.py``).
TOMBSTONE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("source_uris", pa.list_(pa.string())),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("replaced_by", pa.string()),
    ]
)


def conform(table: pa.Table, schema: pa.Schema = ANNOTATION_SCHEMA) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: a column that shards of an older schema version
    lack (nullable by construction) is added as nulls."""
    missing = [f for f in schema if f.name not in table.column_names]
    for field in missing:
        table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names) if missing else table


def rows_to_table(rows: Sequence[dict[str, Any]], schema: pa.Schema = ANNOTATION_SCHEMA) -> pa.Table:
    """Build a table of ``schema`` from row dicts (as made by ``ImageRecord.to_row``)."""
    return pa.Table.from_pylist(list(rows), schema=schema)


def table_to_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Row dicts from a table, the inverse of :func:`rows_to_table`."""
    return table.to_pylist()


def records_to_table(records: Iterable[Any], schema: pa.Schema = ANNOTATION_SCHEMA) -> pa.Table:
    """Build a table from :class:`schemas.records.ImageRecord` objects."""
    return rows_to_table([record.to_row() for record in records], schema)


def schema_version_of(schema: pa.Schema) -> str | None:
    """The schema version stamped in a shard's metadata, if any."""
    value = (schema.metadata or {}).get(b"fld_engine.schema_version")
    return None if value is None else value.decode()

"""What discovery finds: sources to probe (an image file, a WebDataset shard, a Parquet table of image
bytes), the options that say how to read tables, and the ``<container>#<member>`` URIs of images
held inside a container.

A source is plain data (it travels to Ray workers as one Arrow row): probing it is a pure function
of the source and the ingest limits (``engine/ingest/probe.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote_from_bytes

import pyarrow as pa

from engine.store.location import Entry, StorageError, location


class SourceKind(StrEnum):
    FILE = "file"  # one image file or object
    TAR = "tar"  # a WebDataset shard: images, captions and metadata as members
    TABLE = "table"  # a Parquet table with image bytes in a column


CONTAINER_SUFFIXES = {".tar": SourceKind.TAR, ".parquet": SourceKind.TABLE}


class InputError(ValueError):
    """An input cannot be read as a folder, a list, a WebDataset shard, a Parquet table or an image file."""


@dataclass(frozen=True, slots=True)
class InputOptions:
    """How Parquet inputs are read (``fld-engine run --path-column/--image-column/--caption-column``).

    None means the default: the ``path`` column, an image-bytes column detected by name and type
    (img2dataset's ``jpg``/``png``/``webp``..., Hugging Face's ``{bytes, path}`` image struct), and
    the ``caption`` column when the table has one.
    """

    path_column: str | None = None
    image_column: str | None = None
    caption_column: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Source:
    """One discovered input to probe.

    ``size``, ``mtime_ns`` and ``etag`` are what the listing said of the object (None when it was named
    by a list or a table: the probe cache then stats it). A file named by a table may bring its
    ``caption`` and ``metadata`` (a JSON object of the table's other columns). ``problem`` says why a
    listed name cannot be read at all (a FIFO, a device, a dangling link, an unusable URI): it is
    quarantined without being opened. ``layout`` is a Parquet table's column layout (JSON).
    """

    kind: SourceKind
    uri: str
    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None
    caption: str | None = None
    metadata: str | None = None
    problem: str | None = None
    layout: str | None = None

    @property
    def is_container(self) -> bool:
        return self.kind != SourceKind.FILE

    def stamp_from_listing(self) -> Entry | None:
        """What the listing said of the object (size and mtime, or the ETag), if it was listed."""
        if self.size is not None and (self.mtime_ns is not None or self.etag is not None):
            return Entry(self.uri, self.size, self.mtime_ns, self.etag)
        return None

    def stamp(self) -> Entry | None:
        """What the object looks like, as listed, else stated now (size and mtime, or the ETag: a ``HEAD``
        in an object store); None when it cannot be had (reading it will say why)."""
        listed = self.stamp_from_listing()
        if listed is not None:
            return listed
        try:
            return location(self.uri).stat()
        except (OSError, StorageError, pa.ArrowException):
            return None

    def to_row(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Source:
        return cls(**{**{name: row.get(name) for name in SOURCE_SCHEMA.names}, "kind": SourceKind(row["kind"])})


SOURCE_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("problem", pa.string()),
        pa.field("layout", pa.string()),
    ]
)


def sources_table(sources: list[Source]) -> pa.Table:
    return pa.Table.from_pylist([s.to_row() for s in sources], schema=SOURCE_SCHEMA)


def member_uri(container_uri: str, member: str) -> str:
    """``<container uri>#<member>``; a member name that is not UTF-8 is percent-encoded (Arrow strings are
    UTF-8), so the URI names it losslessly."""
    try:
        member.encode()
    except UnicodeEncodeError:
        member = quote_from_bytes(member.encode("utf-8", "surrogateescape"), safe="/")
    return f"{container_uri}#{member}"


def split_member_uri(uri: str) -> tuple[str, str, SourceKind] | None:
    """``(container uri, member, kind)`` of an image inside a container, or None for a plain file.

    The container is the part before the first ``#`` that follows a ``.tar`` or ``.parquet`` name.
    """
    start = 0
    while (mark := uri.find("#", start)) != -1:
        head = uri[:mark]
        for suffix, kind in CONTAINER_SUFFIXES.items():
            if head.lower().endswith(suffix):
                return head, uri[mark + 1 :], kind
        start = mark + 1
    return None


def json_text(value: Any) -> str:
    """Compact JSON for a metadata field (non-ASCII kept; values JSON cannot hold written as text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)

"""Reading an image's bytes again after probing, without rescanning its container.

Probing records a :class:`Locator` for every image inside a container: a WebDataset member's data
offset and size, a Parquet row's row group, row and column. :func:`read_images` reads a batch of
images grouped by container: the members of one tar in one ranged read per cluster of neighbours
(``Location.read_ranges``), the rows of one Parquet row group with one read of that row group's
image column (the last few kept per process, so the batches of one row group that a worker takes
in turn read it once). Rows in read order (``engine.ingest.image_bytes.in_read_order``) make neighbours
meet in a batch.

:func:`read_source` serves readers that hold only a ``source_uri`` (exports, the audit, refinement):
it finds the member by scanning its container once per process and container version.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.ingest.parquet_input import find_row, image_columns, read_column
from engine.ingest.sources import SourceKind, member_uri, split_member_uri
from engine.ingest.webdataset import iter_samples
from engine.store.location import Location, StorageError, location

LOCATOR = pa.struct(
    [
        ("container", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("row_group", pa.int32()),
        ("row", pa.int64()),
        ("column", pa.string()),
        ("version", pa.string()),
    ]
)
# Row groups of image bytes kept per process: a worker takes a row group's batches in turn.
CACHED_ROW_GROUPS = 2
# Reads from a store in flight at once per process (their latency, not their bytes, is what costs).
REMOTE_READS = 8


@dataclass(frozen=True, slots=True)
class Locator:
    """Where an image lies inside its container: ``offset``/``length`` of a tar member's data, or
    ``row_group``/``row``/``column`` of a Parquet cell; ``version`` is the container's ETag or size and
    mtime when probed (a row group read once is kept under it)."""

    container: str
    offset: int | None = None
    length: int | None = None
    row_group: int | None = None
    row: int | None = None
    column: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Locator | None:
        return None if data is None else cls(**data)


def read_images(uris: Sequence[str], locators: Sequence[Locator | None]) -> list[bytes | OSError]:
    """The bytes of each image (or the error reading it), grouped into one read per container range;
    reads from a store run a few at a time."""
    groups: dict[str, list[int]] = {}
    for i, (uri, locator) in enumerate(zip(uris, locators, strict=True)):
        groups.setdefault(uri if locator is None else locator.container, []).append(i)

    def read(key: str) -> list[bytes | OSError]:
        indexes = groups[key]
        if locators[indexes[0]] is None:
            return [_read_file(key)]
        return _read_container(key, [locators[i] for i in indexes])  # type: ignore[misc]

    remote = [key for key in groups if not is_local_uri(key)]
    found: dict[str, list[bytes | OSError]] = {}
    if len(remote) > 1:
        with ThreadPoolExecutor(REMOTE_READS) as pool:
            found = dict(zip(remote, pool.map(read, remote), strict=True))
    for key in groups:
        if key not in found:
            found[key] = read(key)
    results: list[bytes | OSError] = [OSError("not read")] * len(uris)
    for key, indexes in groups.items():
        for i, data in zip(indexes, found[key], strict=True):
            results[i] = data
    return results


def is_local_uri(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def read_source(uri: str, image_id: str | None = None) -> bytes:
    """The bytes a ``source_uri`` names: a file, a tar member or a Parquet row. Without a locator the
    container is scanned once per process and version to find the member. With ``image_id`` (a sha256),
    a Parquet row's image columns are tried until one holds those bytes. Raises ``OSError``."""
    member = split_member_uri(uri)
    if member is None or _is_local_file(uri):
        return _file_bytes(uri)
    container, name, kind = member
    try:
        place = location(container)
        stamp = place.stat()
    except StorageError as error:
        raise OSError(str(error)) from None
    if stamp is None:
        raise FileNotFoundError(f"{uri}: no such container {container}")
    if kind == SourceKind.TAR:
        where = _tar_index(container, (stamp.size, stamp.mtime_ns, stamp.etag)).get(name)
        if where is None:
            raise FileNotFoundError(f"{uri}: no such member in the tar")
        return place.read_ranges([where])[0]
    return _table_row(place, name, uri, image_id)


# -- containers -----------------------------------------------------------------------------
def _read_container(container: str, locators: list[Locator]) -> list[bytes | OSError]:
    try:
        place = location(container)
        if locators[0].offset is not None:
            return list(place.read_ranges([(loc.offset, loc.length) for loc in locators]))  # type: ignore[misc]
        return _read_rows(place, locators)
    except (OSError, StorageError, pa.ArrowException) as error:
        return [error if isinstance(error, OSError) else OSError(str(error))] * len(locators)


_ROW_GROUPS: OrderedDict[tuple[Any, ...], pa.Array] = OrderedDict()


def _read_rows(place: Location, locators: list[Locator]) -> list[bytes | OSError]:
    """Parquet rows, by row group: one read of the image column per row group (cached per process)."""
    version = locators[0].version
    if version is None:  # no version recorded: ask the store (a HEAD), so a changed table is read again
        stamp = place.stat()
        if stamp is None:
            raise FileNotFoundError(f"{place.uri}: no such table")
        version = f"{stamp.size}:{stamp.mtime_ns}:{stamp.etag}"
    out: list[bytes | OSError] = []
    for loc in locators:
        key = (place.uri, version, loc.row_group, loc.column)
        values = _ROW_GROUPS.get(key)
        if values is None:
            with place.open_input() as handle:
                values = read_column(handle, loc.column, loc.row_group)  # type: ignore[arg-type]
            _ROW_GROUPS[key] = values
            while len(_ROW_GROUPS) > CACHED_ROW_GROUPS:
                _ROW_GROUPS.popitem(last=False)
        else:
            _ROW_GROUPS.move_to_end(key)
        value = values[loc.row].as_py() if loc.row is not None and loc.row < len(values) else None
        out.append(value if value is not None else OSError(f"{place.uri}: row {loc.row} holds no image bytes"))
    return out


@lru_cache(maxsize=8)
def _tar_index(container: str, stamp: tuple[Any, ...]) -> dict[str, tuple[int, int]]:
    """Member name (as in ``source_uri``) -> (data offset, size) of every image member of a tar, from
    one streaming pass; ``stamp`` (size, mtime, ETag) makes a changed tar a new entry."""
    index: dict[str, tuple[int, int]] = {}
    with location(container).open_input_stream() as stream:
        for sample in iter_samples(stream, None, max_bytes=-1):
            for image in sample.images:
                index[member_uri("", image.name)[1:]] = (image.offset, image.size)
    return index


def _table_row(place: Location, name: str, uri: str, image_id: str | None) -> bytes:
    with place.open_input() as handle:
        parquet = pq.ParquetFile(handle)
        where = find_row(parquet, name)
        if where is None:
            raise FileNotFoundError(f"{uri}: no such row in the table")
        for column in image_columns(parquet.schema_arrow):
            value = read_column(handle, column, where[0])[where[1]].as_py()
            if value is not None and (image_id is None or hashlib.sha256(value).hexdigest() == image_id):
                return value
    raise FileNotFoundError(f"{uri}: the row holds no such image")


# -- plain files ----------------------------------------------------------------------------
def _read_file(uri: str) -> bytes | OSError:
    try:
        return _file_bytes(uri)
    except OSError as error:
        return error


def _file_bytes(uri: str) -> bytes:
    try:
        return location(uri).read_bytes()
    except StorageError as error:
        raise OSError(str(error)) from None
    except pa.ArrowException as error:
        raise OSError(str(error)) from None


def _is_local_file(uri: str) -> bool:
    """A local file whose own name holds ``.tar#`` is a file, not a member."""
    if "://" in uri and not uri.startswith("file://"):
        return False
    try:
        return os.path.isfile(location(uri).os_path)
    except StorageError:
        return False

"""Probing the input files: each is read, hashed and fully decoded once, and the work is planned.

Every input ends as exactly one of: a unique image to annotate (with all paths that hold the
same bytes), or a quarantine row with its reason. A few files are probed in this process; many
are probed as Ray tasks (starting those costs more than hashing a few dozen MB).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from engine.ingest.decode import BadImage, decode_image
from engine.store.location import Entry, StorageError, location

# New files of at most this many bytes in all are probed in this process: starting Ray's probe tasks
# costs seconds of CPU, more than hashing and decoding a few dozen MB (a small refresh, a sample run).
IN_PROCESS_PROBE_BYTES = 64 * 1024**2
# The probe index (``probes/*.parquet``, see ``engine/ingest/probe_cache.py``): a probed file, its size
# and change key (mtime for local files, ETag for objects in a store) taken before reading, and when it
# was checked.
PROBE_INDEX_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("checked_ns", pa.int64()),
        pa.field("image_id", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("etag", pa.string()),
    ]
)
PROBED_FIELDS = ("source_uri", "size_bytes", "image_id", "width", "height", "format", "reason", "detail")


@dataclass(frozen=True, slots=True)
class ProbedFile:
    """What probing one input file found: its content id and image facts, or why it is quarantined."""

    source_uri: str
    size_bytes: int
    image_id: str | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A unique image (by content) to annotate, with every path that holds its bytes."""

    image_id: str
    source_uri: str
    source_uris: tuple[str, ...]
    width: int
    height: int
    format: str


def probe_file(uri: str, max_pixels: int, max_bytes: int) -> ProbedFile:
    """Read, hash and fully decode one file; a failure becomes a quarantine reason, never an exception."""
    try:
        size = os.path.getsize(uri)
        if size > max_bytes:
            return ProbedFile(uri, size, reason="too_large", detail=f"{size} bytes exceeds max_bytes={max_bytes}")
        with open(uri, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return ProbedFile(uri, 0, reason="unreadable", detail=f"{type(error).__name__}: {error.strerror or error}")
    image_id = hashlib.sha256(data).hexdigest()
    try:
        pixels, fmt = decode_image(data, max_pixels)
    except BadImage as error:
        return ProbedFile(uri, len(data), image_id=image_id, reason=error.reason, detail=error.detail)
    height, width = pixels.shape[:2]
    return ProbedFile(uri, len(data), image_id, width, height, fmt)


def plan_work(probed: Iterable[ProbedFile]) -> tuple[list[WorkItem], list[ProbedFile]]:
    """Group good files by content (duplicates annotated once); return work items and quarantined files."""
    by_id: dict[str, list[ProbedFile]] = {}
    quarantined: list[ProbedFile] = []
    for item in probed:
        if item.reason is not None or item.image_id is None:
            quarantined.append(item)
        else:
            by_id.setdefault(item.image_id, []).append(item)
    work = []
    for image_id in sorted(by_id):
        copies = sorted(by_id[image_id], key=lambda p: p.source_uri)
        first = copies[0]
        work.append(
            WorkItem(
                image_id, first.source_uri, tuple(c.source_uri for c in copies), first.width, first.height, first.format
            )
        )
    return work, sorted(quarantined, key=lambda p: p.source_uri)


def probed_from_row(row: dict[str, Any]) -> ProbedFile:
    return ProbedFile(**{name: row[name] for name in PROBED_FIELDS})


def probe_batch(batch: pa.Table, max_pixels: int, max_bytes: int) -> pa.Table:
    """Probe each file of ``batch`` (a ``source_uri`` column) into probe index rows; its change key (mtime
    or ETag) is taken before reading, for the next run's probe cache."""
    rows = []
    for uri in batch.column("source_uri").to_pylist():
        checked_ns = time.time_ns()
        entry = file_entry(uri)
        keys = {"mtime_ns": entry.mtime_ns, "etag": entry.etag} if entry else {"mtime_ns": None, "etag": None}
        rows.append({**asdict(probe_file(uri, max_pixels, max_bytes)), **keys, "checked_ns": checked_ns})
    return pa.Table.from_pylist(rows, schema=PROBE_INDEX_SCHEMA)


def file_entry(uri: str) -> Entry | None:
    """A file's size and change key (local: mtime; object stores: ETag), or None if it cannot be found."""
    try:
        return location(uri).stat()
    except (OSError, StorageError, pa.ArrowException):
        return None


def probe_on_ray(files: list[str], limits: dict[str, int]) -> list[dict[str, Any]]:
    """Probe index rows of ``files``, probed as Ray tasks (Ray must be running)."""
    import ray

    probe = ray.data.from_items([{"source_uri": f} for f in files], override_num_blocks=max(1, min(len(files), 32)))
    return probe.map_batches(
        probe_batch,
        fn_kwargs=limits,
        batch_format="pyarrow",
        batch_size=16,
        num_cpus=1,  # hashing and decoding fill a core; fewer concurrent tasks start fewer worker processes
    ).take_all()


def probe_files(files: list[str], limits: dict[str, int], ensure_ray: Callable[[], None]) -> list[dict[str, Any]]:
    """Probe index rows of ``files``: in this process when they are few bytes in all, else as Ray tasks."""
    if not files:
        return []
    if _total_bytes(files) <= IN_PROCESS_PROBE_BYTES:
        return probe_batch(pa.table({"source_uri": files}), **limits).to_pylist()
    ensure_ray()
    return probe_on_ray(files, limits)


def _total_bytes(files: list[str]) -> int:
    total = 0
    for path in files:
        with suppress(OSError):  # probing reports it
            total += os.stat(path).st_size
    return total

"""Probing the sources: every image is read, hashed and fully decoded once, and the work is planned.

Every image ends as exactly one of: a unique image to annotate (with all the places that hold the
same bytes, and every caption they came with), or a quarantine row with its reason. Probing a
source is a pure function, :func:`probe_source` (source -> probe index rows): a file gives one
row, a WebDataset shard or a Parquet table of image bytes one row per image, each with the
:class:`~engine.ingest.locator.Locator` that reads it back without rescanning the container. A few
small sources are probed in this process; more are probed as Ray tasks, one container per task.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import IMAGE_EXTENSIONS, IngestConfig
from engine.ingest.decode import BadImage, decode_image
from engine.ingest.listing import as_listing, is_container, listing_sources
from engine.ingest.locator import LOCATOR, REMOTE_READS, Locator, is_local_uri
from engine.ingest.parquet_input import TableLayout, iter_table_images
from engine.ingest.sources import InputError, Source, SourceKind, member_uri
from engine.ingest.webdataset import ShardError, iter_samples
from engine.store.location import Entry, StorageError, location
from filters.curation.measures import measure_image
from schemas.arrow import IMAGE_MEASURES
from schemas.records import ImageMeasures

# New sources of at most this many bytes in all are probed in this process: starting Ray's probe tasks
# costs seconds of CPU, more than hashing and decoding a few dozen MB (a small refresh, a sample run).
IN_PROCESS_PROBE_BYTES = 64 * 1024**2
# Plain files go to probe tasks in groups: about TASKS_PER_CPU tasks per CPU of the cluster, each of at least
# MIN_FILES_PER_TASK and at most MAX_FILES_PER_TASK files (every task costs Ray milliseconds of scheduling and
# a block of its own, more than hashing and decoding a small image; more tasks than CPUs keep them all busy).
MIN_FILES_PER_TASK = 16
MAX_FILES_PER_TASK = 256
TASKS_PER_CPU = 4
# CPUs each probe task asks: hashing and decoding fill a core; fewer concurrent tasks start fewer worker processes.
PROBE_TASK_CPUS = 1.0
# The probe index (``probes/*.parquet``, see ``engine/ingest/probe_cache.py``): a probed image, what the
# object holding it (the file, or its container) looked like before reading (size, mtime, ETag), when it
# was checked, what probing found (with what curation measured on the pixels: hashes, size, sharpness...),
# the caption and metadata it came with, and its locator in a container.
PROBE_INDEX_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64()),
        pa.field("object_size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("checked_ns", pa.int64()),
        pa.field("image_id", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("locator", LOCATOR),
        pa.field("measures", IMAGE_MEASURES),
    ]
)


@dataclass(frozen=True, slots=True)
class ProbedFile:
    """What probing one image found: its content id, image facts and curation measures, or why it is
    quarantined; the caption and metadata it came with, and where it lies inside its container."""

    source_uri: str
    size_bytes: int
    image_id: str | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    reason: str | None = None
    detail: str | None = None
    caption: str | None = None
    metadata: str | None = None
    locator: Locator | None = None
    measures: ImageMeasures | None = None


PROBED_FIELDS = tuple(f.name for f in fields(ProbedFile))


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A unique image (by content) to annotate, with every place that holds its bytes, their captions,
    the metadata of the first place, where to read it, and what curation measured on it."""

    image_id: str
    source_uri: str
    source_uris: tuple[str, ...]
    width: int
    height: int
    format: str
    captions: tuple[str, ...] = ()
    metadata: str | None = None
    locator: Locator | None = None
    measures: ImageMeasures | None = None


def probe_settings(ingest: IngestConfig) -> dict[str, Any]:
    """The keyword arguments of :func:`probe_source` (and :func:`probe_batch`) that ``ingest`` decides."""
    return {**ingest.limits(), "extensions": list(ingest.extensions)}


def probe_bytes(uri: str, data: bytes, max_pixels: int, **context: Any) -> ProbedFile:
    """Hash, fully decode and measure one image's bytes (the pixels are decoded here, so curation's measures
    cost no second decode); a failure becomes a quarantine reason, never an exception."""
    image_id = hashlib.sha256(data).hexdigest()
    try:
        pixels, fmt = decode_image(data, max_pixels)
    except BadImage as error:
        return ProbedFile(uri, len(data), image_id=image_id, reason=error.reason, detail=error.detail, **context)
    height, width = pixels.shape[:2]
    return ProbedFile(uri, len(data), image_id, width, height, fmt, measures=measure_image(pixels), **context)


def probe_file(uri: str, max_pixels: int, max_bytes: int) -> ProbedFile:
    """Read (at most ``max_bytes``; only regular files), hash and fully decode one file."""
    try:
        data = location(uri).read_bytes(max_bytes)
    except (OSError, StorageError, pa.ArrowException) as error:
        return ProbedFile(uri, 0, reason="unreadable", detail=_describe(error))
    if len(data) > max_bytes:
        return ProbedFile(uri, len(data), reason="too_large", detail=f"more than max_bytes={max_bytes} bytes")
    return probe_bytes(uri, data, max_pixels)


def probe_source(
    source: Source, max_pixels: int, max_bytes: int, extensions: Collection[str] = IMAGE_EXTENSIONS
) -> list[dict[str, Any]]:
    """Probe index rows of one source: a file's one row, or a row per image of a container (and one for
    the container itself if it breaks: the images before the break are kept)."""
    checked_ns = time.time_ns()
    if source.problem is not None:
        return [_row(ProbedFile(source.uri, 0, reason="unreadable", detail=source.problem), None, checked_ns)]
    stamp = source.stamp()  # before reading: a change after it is seen by the next run
    if source.kind == SourceKind.FILE:
        probed = probe_file(source.uri, max_pixels, max_bytes)
        probed = ProbedFile(**{**_fields(probed), "caption": source.caption, "metadata": source.metadata})
        return [_row(probed, stamp if probed.reason != "unreadable" else None, checked_ns)]
    version = None if stamp is None else stamp.etag or f"{stamp.size}:{stamp.mtime_ns}"
    images = (
        _tar_images(source, version, max_pixels, max_bytes, extensions)
        if source.kind == SourceKind.TAR
        else _table_images(source, version, max_pixels, max_bytes)
    )
    return [_row(probed, stamp, checked_ns) for probed in images]


def _tar_images(
    source: Source, version: str | None, max_pixels: int, max_bytes: int, extensions: Collection[str]
) -> Iterator[ProbedFile]:
    """Every image member of a WebDataset shard, streamed (never unpacked to disk)."""
    try:
        with location(source.uri).open_input_stream() as stream:
            for sample in iter_samples(stream, extensions, max_bytes):
                caption = _caption(sample.caption)
                for image in sample.images:
                    uri = member_uri(source.uri, image.name)
                    context = {
                        "caption": caption,
                        "metadata": sample.metadata,
                        "locator": Locator(source.uri, offset=image.offset, length=image.size, version=version),
                    }
                    if image.data is None:
                        detail = f"{image.size} bytes exceeds max_bytes={max_bytes}"
                        yield ProbedFile(uri, image.size, reason="too_large", detail=detail, **context)
                    else:
                        yield probe_bytes(uri, image.data, max_pixels, **context)
    except ShardError as error:
        yield ProbedFile(source.uri, source.size or 0, reason=error.reason, detail=error.detail)
    except (OSError, StorageError, pa.ArrowException) as error:
        yield ProbedFile(source.uri, source.size or 0, reason="unreadable", detail=_describe(error))


def _table_images(source: Source, version: str | None, max_pixels: int, max_bytes: int) -> Iterator[ProbedFile]:
    """Every row of a Parquet table of image bytes."""
    layout = TableLayout.from_json(source.layout or "")
    try:
        for row in iter_table_images(location(source.uri), layout):
            uri = member_uri(source.uri, row.member)
            context = {
                "caption": _caption(row.caption),
                "metadata": row.metadata,
                "locator": Locator(
                    source.uri, row_group=row.row_group, row=row.row, column=layout.column, version=version
                ),
            }
            if not row.data:
                yield ProbedFile(
                    uri, 0, reason="empty", detail=f"no image bytes in column {layout.column!r}", **context
                )
            elif len(row.data) > max_bytes:
                detail = f"{len(row.data)} bytes exceeds max_bytes={max_bytes}"
                yield ProbedFile(uri, len(row.data), reason="too_large", detail=detail, **context)
            else:
                yield probe_bytes(uri, row.data, max_pixels, **context)
    except (InputError, OSError, StorageError, pa.ArrowException) as error:
        yield ProbedFile(source.uri, source.size or 0, reason="unreadable", detail=_describe(error))


def _caption(text: str | None) -> str | None:
    """A caption as kept: surrounding whitespace removed; an empty one is no caption."""
    text = (text or "").strip()
    return text or None


def _row(probed: ProbedFile, stamp: Entry | None, checked_ns: int) -> dict[str, Any]:
    row = _fields(probed)
    row["locator"] = None if probed.locator is None else probed.locator.to_dict()
    row["measures"] = None if probed.measures is None else probed.measures.to_dict()
    return {
        **row,
        "object_size": None if stamp is None else stamp.size,
        "mtime_ns": None if stamp is None else stamp.mtime_ns,
        "etag": None if stamp is None else stamp.etag,
        "checked_ns": checked_ns,
    }


def _fields(probed: ProbedFile) -> dict[str, Any]:
    return {name: getattr(probed, name) for name in PROBED_FIELDS}


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return f"{type(error).__name__}: {error}"


# The work table: one row per distinct image (by content), every probe index column of its first copy
# (by ``source_uri``; a column added to PROBE_INDEX_SCHEMA flows through), with all its copies' places
# and captions. This is what curation and the annotate phase take.
WORK_EXTRA_FIELDS = [pa.field("source_uris", pa.list_(pa.string())), pa.field("captions", pa.list_(pa.string()))]
WORK_SCHEMA = pa.schema([*PROBE_INDEX_SCHEMA, *WORK_EXTRA_FIELDS])
QUARANTINE_COLUMNS = ["source_uri", "image_id", "reason", "detail", "size_bytes"]


def as_probe_index(table: pa.Table) -> pa.Table:
    """``table`` with exactly the probe index columns (a column it lacks, e.g. one added since it was
    written, is null), cast to :data:`PROBE_INDEX_SCHEMA`."""
    return _conformed(table, PROBE_INDEX_SCHEMA)


def as_work_table(table: pa.Table) -> pa.Table:
    """``table`` with exactly the work table columns (those it lacks are null), cast to :data:`WORK_SCHEMA`."""
    return _conformed(table, WORK_SCHEMA)


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    count = table.num_rows
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(count, f.type) for f in schema]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def group_by_content(index: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split probe index rows into the work table (good images grouped by ``image_id``, sorted by it) and the
    quarantined rows (sorted by ``source_uri``), with Arrow kernels: no Python object per image."""
    good = pc.and_(pc.is_null(index.column("reason")), pc.is_valid(index.column("image_id")))
    quarantined = index.filter(pc.invert(good)).sort_by("source_uri").select(QUARANTINE_COLUMNS)
    # Only the sort keys and positions are copied whole; the other columns are taken once, for first rows.
    good_at = pa.array(np.flatnonzero(pc.fill_null(good, False).to_numpy(zero_copy_only=False)), pa.int64())
    keys = index.select(["image_id", "source_uri"]).take(good_at)
    order = good_at.take(pc.sort_indices(keys, [("image_id", "ascending"), ("source_uri", "ascending")]))
    del keys
    ids = index.column("image_id").take(order).combine_chunks()
    count = len(ids)
    changed = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False) if count > 1 else np.zeros(0, bool)
    starts = np.flatnonzero(np.r_[count > 0, changed])  # the first row of each image id
    offsets = pa.array(np.r_[starts, count].astype(np.int32))
    firsts = index.take(order.take(pa.array(starts, pa.int64())))
    for column, name in (("source_uri", "source_uris"), ("caption", "captions")):
        values = index.column(column).take(order).combine_chunks()
        firsts = firsts.append_column(name, pa.ListArray.from_arrays(offsets, values))
    return firsts, quarantined


def plan_work(probed: Iterable[ProbedFile]) -> tuple[list[WorkItem], list[ProbedFile]]:
    """Group good images by content (duplicates annotated once); return work items and quarantined ones
    (:func:`group_by_content` over a list, for callers that hold :class:`ProbedFile` objects)."""
    probed = list(probed)
    by_uri = {p.source_uri: p for p in probed}
    index = pa.Table.from_pylist([_row(p, None, 0) for p in probed], schema=PROBE_INDEX_SCHEMA)
    work, quarantined = group_by_content(index)
    return [work_item(row) for row in work.to_pylist()], [by_uri[u] for u in quarantined.column(0).to_pylist()]


def work_item(row: dict[str, Any]) -> WorkItem:
    """A work table row as a :class:`WorkItem`: captions kept once each, in the order of their places."""
    captions = tuple(dict.fromkeys(c for c in row["captions"] if c))
    return WorkItem(
        row["image_id"],
        row["source_uri"],
        tuple(row["source_uris"]),
        row["width"],
        row["height"],
        row["format"],
        captions,
        row["metadata"],
        Locator.from_dict(row["locator"]),
        ImageMeasures.from_dict(row["measures"]) if row["measures"] else None,
    )


def probed_from_row(row: dict[str, Any]) -> ProbedFile:
    values = {name: row.get(name) for name in PROBED_FIELDS}
    values["locator"] = Locator.from_dict(row.get("locator"))
    measures = row.get("measures")
    values["measures"] = ImageMeasures.from_dict(measures) if measures else None
    return ProbedFile(**values)


def probe_batch(
    batch: pa.Table, max_pixels: int, max_bytes: int, extensions: Collection[str] = IMAGE_EXTENSIONS
) -> pa.Table:
    """Probe index rows of every source of ``batch`` (``engine.ingest.sources.SOURCE_SCHEMA`` rows); sources
    in a store are read a few at a time (each costs a round trip more than its bytes)."""
    sources = listing_sources(batch)

    def probe(source: Source) -> list[dict[str, Any]]:
        return probe_source(source, max_pixels, max_bytes, extensions)

    if sum(not is_local_uri(s.uri) for s in sources) > 1:
        with ThreadPoolExecutor(REMOTE_READS) as pool:
            found = list(pool.map(probe, sources))
    else:
        found = [probe(source) for source in sources]
    return pa.Table.from_pylist([row for rows in found for row in rows], schema=PROBE_INDEX_SCHEMA)


def files_per_task(files: int, cpus: float) -> int:
    """How many of ``files`` plain files one probe task takes on a cluster of ``cpus`` CPUs."""
    wanted = -(-files // max(1, round(TASKS_PER_CPU * cpus)))
    return max(MIN_FILES_PER_TASK, min(MAX_FILES_PER_TASK, wanted))


def probe_blocks(listing: pa.Table, cpus: float) -> list[pa.Table]:
    """The listing cut into probe tasks' blocks: each container alone, then the plain files in URI order,
    :func:`files_per_task` of them a block (slices of the listing: no copy here, unless it mixes both)."""
    containers = is_container(listing)
    count = pc.sum(containers).as_py() or 0
    files = listing if not count else listing.filter(pc.invert(containers))
    batches = [] if not count else listing.filter(containers).to_batches(max_chunksize=1)
    batches += files.to_batches(max_chunksize=files_per_task(files.num_rows, cpus))
    return [pa.Table.from_batches([batch]) for batch in batches if batch.num_rows]


def probe_on_ray(sources: pa.Table | list[Source], limits: dict[str, Any]) -> pa.Table:
    """Probe index rows of ``sources`` (a listing, ``SOURCE_SCHEMA`` rows), probed as Ray tasks (Ray must be
    running), gathered here."""
    import ray

    # Arrow blocks, never Python rows: a few hundred bytes per image in the driver.
    blocks = [block for block in ray.get(probe_refs_on_ray(as_listing(sources), limits)) if block.num_rows]
    return pa.concat_tables(blocks).cast(PROBE_INDEX_SCHEMA) if blocks else PROBE_INDEX_SCHEMA.empty_table()


def probe_refs_on_ray(listing: pa.Table, limits: dict[str, Any], block_rows: int | None = None) -> list[Any]:
    """Probe ``listing`` as Ray tasks (Ray must be running): a task per container, plain files in groups
    (:func:`files_per_task`); each task gets its rows as an Arrow block and makes their :class:`Source`
    objects itself. The refs of the probe index blocks, in listing order (the rows stay in the object store);
    with ``block_rows``, the tasks' blocks are combined as they come into blocks of about that many rows."""
    import ray

    blocks = probe_blocks(listing, ray.cluster_resources().get("CPU", 1.0))
    # ``from_blocks`` takes each block's metadata here; ``from_arrow`` would first run a Ray task per block for it.
    probe = ray.data.from_blocks(blocks)
    probed = probe.map_batches(
        probe_batch,
        fn_kwargs=limits,
        batch_format="pyarrow",
        batch_size=None,  # one block per call: a container, or a handful of files
        num_cpus=PROBE_TASK_CPUS,
    )
    if block_rows is not None:
        # A task's block of a few hundred rows is less than 100 KiB, which Ray keeps in its owner's memory: the
        # driver's. Combined as they stream, only the blocks in flight are ever there, never every image's row.
        probed = probed.repartition(target_num_rows_per_block=block_rows)
    return list(probed.to_arrow_refs())


def fits_in_process(listing: pa.Table, budget: int = IN_PROCESS_PROBE_BYTES) -> bool:
    """Whether the listing's objects hold at most ``budget`` bytes: listed sizes summed, the others stated
    until the budget is exceeded; an object of unknown size far away counts as the whole budget."""
    sizes = listing.column("size")
    total = pc.sum(sizes).as_py() or 0
    if total > budget:
        return False
    for chunk in listing.filter(pc.is_null(sizes)).column("uri").chunks:
        for uri in chunk.to_pylist():
            place = None
            with suppress(StorageError):
                place = location(uri)
            if place is None or not place.is_local:
                total += budget
            else:
                with suppress(OSError):  # probing reports it
                    stamp = place.stat()
                    total += stamp.size if stamp is not None else 0
            if total > budget:
                return False
    return True

"""The run's listing of sources in Arrow (``SOURCE_SCHEMA`` rows): never a Python object per file held.

Discovery's sources become record batches a chunk at a time (:func:`listing_batches`); the listing is
one table sorted by URI with each URI once (:func:`sorted_listing`, Arrow kernels), so ``--limit`` takes
the first files in URI order. :class:`~engine.ingest.sources.Source` objects are made only for the few
rows a probe task (or a test) handles at once (:func:`listing_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.sources import SOURCE_SCHEMA, Source, SourceKind

LISTING_CHUNK = 8192  # sources turned into one record batch at a time
# What discovery yields: a source, or ``SOURCE_SCHEMA`` rows already made in Arrow (a path table's).
Listed = Source | pa.RecordBatch


def listing_batches(sources: Iterable[Listed], chunk: int = LISTING_CHUNK) -> Iterator[pa.RecordBatch]:
    """``sources`` as ``SOURCE_SCHEMA`` record batches of at most ``chunk`` rows, lazily, in their order; a
    record batch among them (rows already made in Arrow) is passed on as it is, after the sources before it."""
    names = SOURCE_SCHEMA.names
    columns: dict[str, list[Any]] = {name: [] for name in names}
    count = 0
    for source in sources:
        if isinstance(source, pa.RecordBatch):
            if count:
                yield _batch(columns)
                columns, count = {name: [] for name in names}, 0
            if source.num_rows:
                yield source
            continue
        for name in names:
            columns[name].append(getattr(source, name))
        count += 1
        if count == chunk:
            yield _batch(columns)
            columns, count = {name: [] for name in names}, 0
    if count:
        yield _batch(columns)


def _batch(columns: dict[str, list[Any]]) -> pa.RecordBatch:
    columns["kind"] = [str(kind) for kind in columns["kind"]]
    return pa.RecordBatch.from_pydict(columns, schema=SOURCE_SCHEMA)


def sorted_listing(batches: Iterable[pa.RecordBatch]) -> pa.Table:
    """One table of ``batches``, sorted by URI (a stable sort: of the rows with one URI, the first listed is
    kept), each URI once. Sorted column by column, each dropped once taken: the driver holds the listing
    and one column more, not the listing twice; the memory freed goes back to the system."""
    chunks: list[list[pa.Array]] = [[] for _ in SOURCE_SCHEMA]
    for batch in batches:
        for i, column in enumerate(batch.columns):
            chunks[i].append(column)
    columns = {f.name: pa.chunked_array(c, f.type) for f, c in zip(SOURCE_SCHEMA, chunks, strict=True)}
    del chunks
    order = pc.sort_indices(columns["uri"])
    uris = columns.pop("uri").take(order)
    keep = np.ones(len(uris), bool)
    if len(uris) > 1:
        keep[1:] = pc.not_equal(uris[1:], uris[:-1]).to_numpy(zero_copy_only=False)
    keep_array = pa.array(keep)
    kept, sorted_columns = order.filter(keep_array), {"uri": uris.filter(keep_array)}
    del uris, order
    for name in list(columns):
        sorted_columns[name] = columns.pop(name).take(kept)
    listing = pa.table({name: sorted_columns.pop(name) for name in SOURCE_SCHEMA.names}, schema=SOURCE_SCHEMA)
    pa.default_memory_pool().release_unused()
    return listing.combine_chunks()


def as_listing(sources: pa.Table | Iterable[Source]) -> pa.Table:
    """A listing as given, or ``SOURCE_SCHEMA`` rows of the sources given (in their order)."""
    if isinstance(sources, pa.Table):
        return sources
    return pa.Table.from_batches(list(listing_batches(sources)), schema=SOURCE_SCHEMA)


def listing_sources(listing: pa.Table) -> list[Source]:
    """The rows of ``listing`` as :class:`Source` objects (for a probe task's few rows, or a small listing)."""
    return [Source.from_row(row) for row in listing.to_pylist()]


def is_container(listing: pa.Table) -> pa.ChunkedArray:
    """Whether each row is a container (a WebDataset shard or a Parquet table of image bytes)."""
    return pc.not_equal(listing.column("kind"), str(SourceKind.FILE))


def split_at_limit(listing: pa.Table, limit: int | None) -> tuple[pa.Table, pa.ChunkedArray]:
    """The first ``limit`` rows of ``listing`` (all without a limit), and the URIs of the rest."""
    taken = listing if limit is None else listing.slice(0, limit)
    return taken, listing.slice(taken.num_rows).column("uri")

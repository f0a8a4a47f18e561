"""The run's listing in consecutive URI ranges, sorted on the driver's disk when it is longer than one chunk.

Discovery yields the sources in input order, a record batch at a time. Up to ``chunk_rows`` of them, the listing
is sorted here as one table (``engine/ingest/listing.py``) and cut into ranges of ``chunk_rows`` rows. A longer
listing is an external merge sort: each chunk sorted (each URI once, the first listed kept) and written to a
local Arrow file, range boundaries picked from evenly spaced URIs of every sorted chunk, and each range merged
from its slice of every chunk and written again. The ranges are read back memory-mapped: their pages are the
files', so the driver's own memory holds about one chunk at a time, however many files the corpus has; its local
disk holds the listing (about 120 bytes a file), deleted with the :class:`RangedListing`.
"""

from __future__ import annotations

import bisect
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from engine.ingest.listing import sorted_listing
from engine.ingest.sources import SOURCE_SCHEMA

SAMPLES_PER_CHUNK = 256  # URIs of each sorted chunk the range boundaries are picked from


@dataclass(frozen=True)
class RangedListing:
    """``SOURCE_SCHEMA`` rows sorted by URI, each URI once, in consecutive ranges (each a table: held here, or
    memory-mapped from the file ``spill`` holds, deleted with it)."""

    ranges: tuple[pa.Table, ...]
    spill: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, listing: pa.Table, range_rows: int) -> RangedListing:
        """A sorted listing held here, cut into ranges of at most ``range_rows`` rows (one range at least)."""
        step = max(1, range_rows)
        return cls(tuple(listing.slice(start, step) for start in range(0, max(listing.num_rows, 1), step)))

    @property
    def rows(self) -> int:
        return sum(table.num_rows for table in self.ranges)

    @property
    def lows(self) -> list[str | None]:
        """The first URI of each range (None for an empty one)."""
        return [table.column("uri")[0].as_py() if table.num_rows else None for table in self.ranges]

    def table(self) -> pa.Table:
        """Every range as one table (their chunks, not copied)."""
        return pa.concat_tables([SOURCE_SCHEMA.empty_table(), *self.ranges])


def ranged_listing(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> RangedListing:
    """``batches`` (``SOURCE_SCHEMA`` rows in the order listed) sorted by URI, each URI once (its first listed row),
    in ranges of about ``chunk_rows`` rows; sorted on local disk when longer than one chunk (see the module)."""
    pending: list[pa.RecordBatch] = []
    count, runs, spill = 0, [], None
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= chunk_rows:
            spill = spill or tempfile.TemporaryDirectory(prefix="fld-listing-")
            runs.append(_spilled(sorted_listing(pending), Path(spill.name) / f"run-{len(runs):06d}.arrow"))
            pending, count = [], 0
    if spill is None:
        return RangedListing.of(sorted_listing(pending), chunk_rows)
    if count:
        runs.append(_spilled(sorted_listing(pending), Path(spill.name) / f"run-{len(runs):06d}.arrow"))
    del pending
    bounds = range_bounds(runs, math.ceil(sum(run.num_rows for run in runs) / chunk_rows))
    ranges = []
    for number, (low, high) in enumerate(zip([None, *bounds], [*bounds, None], strict=True)):
        merged = sorted_listing(piece for run in runs for piece in _between(run, low, high).to_batches())
        ranges.append(_spilled(merged, Path(spill.name) / f"range-{number:06d}.arrow"))
    del runs  # their files go now (the ranges hold every row): the disk holds the listing once
    for path in Path(spill.name).glob("run-*.arrow"):
        path.unlink()
    return RangedListing(tuple(ranges), spill)


def range_bounds(runs: Sequence[pa.Table], count: int) -> list[str]:
    """The lowest URI of ranges 1..count-1 (fewer where URIs repeat), from evenly spaced URIs of each sorted run,
    so that each range holds about as many rows."""
    samples: list[str] = []
    for run in runs:
        step = max(1, run.num_rows // SAMPLES_PER_CHUNK)
        samples.extend(run.column("uri").take(pa.array(range(0, run.num_rows, step))).to_pylist())
    samples.sort()
    picked = {samples[len(samples) * k // count] for k in range(1, count)} if samples else set()
    return sorted(picked)


def _between(run: pa.Table, low: str | None, high: str | None) -> pa.Table:
    """The rows of a sorted run with ``low <= uri < high`` (None: no bound), found by bisection (a slice)."""
    uris = _Uris(run.column("uri"))
    start = 0 if low is None else bisect.bisect_left(uris, low)
    end = run.num_rows if high is None else bisect.bisect_left(uris, high)
    return run.slice(start, end - start)


class _Uris(Sequence[str]):
    """A sorted URI column as a sequence :mod:`bisect` can search, reading only the URIs it compares."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # bisect asks for single items only
        return self.column[index].as_py()


def _spilled(table: pa.Table, path: Path) -> pa.Table:
    """``table`` written to ``path`` (an Arrow file) and read back memory-mapped; the copy held here is freed."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, SOURCE_SCHEMA) as writer:
        writer.write_table(table)
    del table
    pa.default_memory_pool().release_unused()
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()

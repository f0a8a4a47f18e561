"""Skipping the re-hash of unchanged sources: the previous version's probe index, by the object probed.

Each version lists a probe index (``probes/*.parquet``, in parts sorted by URI) with every probed image, what the object
holding it (the file, or its WebDataset shard or Parquet table) looked like before it was read, and
what probing found. The next run compares each source with that: the same size and the same ETag
(objects in a store: an object's mtime says when it was uploaded, not whether its bytes changed), or
the same size and mtime (local files), and the source's rows are reused instead of reading, hashing
and decoding it again; a container's rows come back all together. As in git's index, an mtime
within ``RACY_NS`` of the moment it was checked is not trusted (the file may have changed again
within the clock's resolution). The cache is used only when the ingest settings
that decide what probing finds are unchanged (:func:`probe_key`); ``--full`` never uses it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import IngestConfig
from engine.ingest.listing import as_listing
from engine.ingest.locator import REMOTE_READS, is_local_uri
from engine.ingest.probe import PROBE_INDEX_SCHEMA, as_probe_index
from engine.ingest.sources import InputOptions, Source, SourceKind
from engine.store.location import Entry
from engine.store.manifest import Manifest
from engine.store.writer import ShardInfo
from filters.curation.measures import MEASURES_VERSION

RACY_NS = 2_000_000_000
SPLIT_CHUNK = 8192  # listing rows compared (and, unlisted, stated) at a time
# What an object looks like now, per listing row (null where it cannot be had).
STAMP_SCHEMA = pa.schema([("uri", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("etag", pa.string())])


@dataclass(frozen=True)
class ProbeCache:
    """A probe index and its rows ordered by the object each came from (its container, or the file itself):
    object ``k`` (``objects[k]``, sorted) has the rows ``order[bounds[k]:bounds[k + 1]]``. All in Arrow and
    NumPy, as read: no Python object per object or row."""

    index: pa.Table
    objects: pa.Array
    order: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, index: pa.Table) -> ProbeCache:
        """``index`` (probe index rows, a container's rows in member order) grouped by object, orders kept."""
        index = as_probe_index(index)
        keyed = pa.table({"object": object_column(index), "position": np.arange(index.num_rows)})
        keyed = keyed.sort_by([("object", "ascending"), ("position", "ascending")])
        objects = keyed.column("object").combine_chunks()
        changed = pc.not_equal(objects[1:], objects[:-1]).to_numpy(zero_copy_only=False) if len(objects) > 1 else []
        firsts = np.flatnonzero(np.r_[len(objects) > 0, changed])
        order = keyed.column("position").to_numpy()
        cache = cls(index, objects.take(pa.array(firsts, pa.int64())), order, np.r_[firsts, index.num_rows])
        del keyed, objects
        pa.default_memory_pool().release_unused()  # what reading and sorting used goes back to the system
        return cache

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> ProbeCache:
        return cls.of(pa.Table.from_pylist(rows, schema=PROBE_INDEX_SCHEMA))

    @property
    def rows(self) -> int:
        return self.index.num_rows

    def object_numbers(self, uris: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Each URI's object number ``k``, or -1 where the index has no rows of it (one hash lookup each)."""
        found = pc.index_in(uris, value_set=self.objects)
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)

    def positions(self, uri: str) -> np.ndarray | None:
        """The index rows of the object ``uri``, in the index's order; None when the index has none."""
        (k,) = self.object_numbers(pa.array([uri], pa.string()))
        return None if k < 0 else self.order[self.bounds[k] : self.bounds[k + 1]]

    def rows_of(self, numbers: np.ndarray) -> np.ndarray:
        """The index rows of objects ``numbers``, object after object, each object's in the index's order."""
        starts, ends = self.bounds[numbers], self.bounds[numbers + 1]
        lengths = ends - starts
        if not len(lengths) or not lengths.sum():
            return np.zeros(0, np.int64)
        # position j of the result: starts[object] + (j - where that object's run starts in the result)
        run_starts = np.cumsum(lengths) - lengths
        return self.order[np.repeat(starts - run_starts, lengths) + np.arange(lengths.sum())]


@dataclass
class CacheSplit:
    """Probe index rows reused from the cache (a probe index table), and the sources still to probe (an
    Arrow listing, ``SOURCE_SCHEMA`` rows in the listing's order)."""

    hits: pa.Table
    misses: pa.Table


def probe_key(ingest: IngestConfig, options: InputOptions) -> dict[str, Any]:
    """The settings that decide what probing finds: limits, image extensions, the table columns, and the
    definition of curation's measures (an index of older measures, or of none, is not reused)."""
    return {
        **ingest.limits(),
        "extensions": sorted(ingest.extensions),
        "columns": options.to_dict(),
        "measures": MEASURES_VERSION,
    }


def object_column(index: pa.Table) -> pa.ChunkedArray:
    """The object each probe index row came from: its container, or the file itself."""
    locator = index.column("locator")
    return pc.if_else(pc.is_valid(locator), pc.struct_field(locator, "container"), index.column("source_uri"))


def cache_parts(previous: Manifest | None, ingest_key: dict[str, Any]) -> list[ShardInfo] | None:
    """The parts of the previous version's probe index, if probed under the same ``ingest_key`` (else None:
    nothing to reuse)."""
    if previous is None or not previous.probe_index or previous.extra.get("ingest") != ingest_key:
        return None
    return previous.probe_index


def split_by_cache(sources: pa.Table | Iterable[Source], cache: ProbeCache | None) -> CacheSplit:
    """Reuse the cached rows of every source (a listing's row) whose object is unchanged; the others are to
    probe. Matched by URI with one Arrow hash lookup and compared column by column, a chunk at a time;
    sources not listed with a stamp (named by a list or a table) are stated, those in a store a few at a time."""
    listing = as_listing(sources)
    if cache is None:
        return CacheSplit(PROBE_INDEX_SCHEMA.empty_table(), listing)
    numbers = cache.object_numbers(listing.column("uri"))
    numbers[pc.is_valid(listing.column("problem")).to_numpy(zero_copy_only=False)] = -1
    firsts = cache.index.select(["object_size", "mtime_ns", "etag", "checked_ns"])
    firsts = firsts.take(pa.array(cache.order[cache.bounds[:-1]], pa.int64()))  # object k's first row
    hit = np.zeros(listing.num_rows, bool)
    for start in range(0, listing.num_rows, SPLIT_CHUNK):
        chunk = listing.slice(start, SPLIT_CHUNK)
        known = numbers[start : start + chunk.num_rows]
        cached = np.flatnonzero(known >= 0)
        if len(cached):
            now = stamps_now(chunk.take(pa.array(cached, pa.int64())))
            was = firsts.take(pa.array(known[cached], pa.int64()))
            hit[start + cached] = unchanged(now, was)
    taken = cache.rows_of(numbers[hit])
    every_row_in_order = len(taken) == cache.rows and bool((taken == np.arange(cache.rows)).all())
    hits = cache.index if every_row_in_order else cache.index.take(pa.array(taken, pa.int64()))
    return CacheSplit(hits, listing.filter(pa.array(~hit)))


def stamps_now(listing: pa.Table) -> pa.Table:
    """What each source's object looks like now (``STAMP_SCHEMA``): as listed, else stated (objects in a
    store a few at a time); a row of nulls where it cannot be had or is not a regular file."""
    listed = pc.and_(
        pc.is_valid(listing.column("size")),
        pc.or_(pc.is_valid(listing.column("mtime_ns")), pc.is_valid(listing.column("etag"))),
    ).to_numpy(zero_copy_only=False)
    if listed.all():
        return listing.select(STAMP_SCHEMA.names).cast(STAMP_SCHEMA)
    stamps = listing.select(STAMP_SCHEMA.names).to_pydict()
    unlisted = np.flatnonzero(~listed)
    uris = [stamps["uri"][i] for i in unlisted]
    remote = sum(not is_local_uri(uri) for uri in uris)
    if remote > 1:
        with ThreadPoolExecutor(REMOTE_READS) as pool:
            found = list(pool.map(_stat, uris))
    else:
        found = [_stat(uri) for uri in uris]
    for i, entry in zip(unlisted, found, strict=True):
        usable = entry is not None and entry.special is None
        stamps["size"][i] = entry.size if usable else None
        stamps["mtime_ns"][i] = entry.mtime_ns if usable else None
        stamps["etag"][i] = entry.etag if usable else None
    return pa.Table.from_pydict(stamps, schema=STAMP_SCHEMA)


def _stat(uri: str) -> Entry | None:
    """What ``Source.stamp`` says of an unlisted object; a local path (as listings hold it) is stated directly,
    without building its ``Location`` (a third of the cost, paid once per file of a path list)."""
    if not uri.startswith("/"):
        return Source(SourceKind.FILE, uri).stamp()
    try:
        status = os.stat(uri)
    except OSError:
        return None
    return Entry(uri, status.st_size, mtime_ns=status.st_mtime_ns) if stat.S_ISREG(status.st_mode) else None


def unchanged(now: pa.Table, was: pa.Table) -> np.ndarray:
    """Whether each object is as it was when its probe index rows were made: same size and ETag (objects in
    a store), or same size and an mtime that was not racy (local files). ``now`` is ``STAMP_SCHEMA`` rows,
    ``was`` the probe index columns ``object_size``, ``mtime_ns``, ``etag`` and ``checked_ns`` of each
    object's first row; a null anywhere that matters is a change."""
    same_size = pc.equal(was.column("object_size"), now.column("size"))
    by_etag = pc.or_(pc.is_valid(now.column("etag")), pc.is_valid(was.column("etag")))
    same_etag = pc.equal(now.column("etag"), was.column("etag"))
    mtime = was.column("mtime_ns")
    settled = pc.less(mtime, pc.subtract(was.column("checked_ns"), RACY_NS))
    same_mtime = pc.and_(pc.equal(now.column("mtime_ns"), mtime), settled)
    same = pc.and_(same_size, pc.if_else(by_etag, same_etag, same_mtime))
    return pc.fill_null(same, False).to_numpy(zero_copy_only=False)

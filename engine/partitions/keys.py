"""Partition keys: contiguous ranges of image ids (content hashes) and of a sorted listing's URIs.

Image ids are cut into ``count`` ranges of the hash space by their first eight hex digits: a partition
holds every row of an id (a group-by or join on ``image_id`` stays inside it), the ranges are even for
SHA-256 ids, and partitions concatenated in order keep ids sorted. Rows without an id (quarantined files)
go where the caller says.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PREFIX = 8  # hex digits of an id that choose its partition (2**32 ranges at most)


def id_bounds(count: int) -> np.ndarray:
    """The lowest id prefix of partitions 1..count-1 (partition 0 starts at the lowest id), as bytes."""
    return np.array([f"{k * 2**32 // count:08x}".encode() for k in range(1, count)], f"S{PREFIX}")


def id_partitions(ids: pa.Array | pa.ChunkedArray, count: int, missing: int = 0) -> np.ndarray:
    """Each id's partition among ``count`` (``missing`` where the id is null): ``searchsorted`` of its
    first eight characters among :func:`id_bounds`, so the partition of an id follows its sort order. A chunked
    column is read a chunk at a time (no copy of the ids)."""
    if isinstance(ids, pa.ChunkedArray):
        found = [_chunk_partitions(chunk, count, missing) for chunk in ids.chunks]
        return np.concatenate([np.zeros(0, np.int32), *found])
    return _chunk_partitions(ids, count, missing)


def _chunk_partitions(ids: pa.Array, count: int, missing: int) -> np.ndarray:
    found = np.full(len(ids), missing, np.int32)
    if count <= 1 or not len(ids):
        return np.where(pc.is_null(ids).to_numpy(zero_copy_only=False), missing, 0).astype(np.int32)
    valid = pc.is_valid(ids).to_numpy(zero_copy_only=False)
    prefixes = pc.utf8_slice_codeunits(ids.filter(pa.array(valid)), 0, PREFIX).cast(pa.binary())
    values = np.array(prefixes.to_numpy(zero_copy_only=False), f"S{PREFIX}")
    found[valid] = np.searchsorted(id_bounds(count), values, side="right")
    return found


def ids_by_partition(ids: pa.Array | pa.ChunkedArray, count: int) -> Iterator[pa.Array]:
    """``ids`` (no nulls) in their ``count`` partitions, one array each, made one at a time as they are asked for."""
    if count == 1:
        yield ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        return
    partitions = id_partitions(ids, count)
    for k in range(count):
        mine = ids.filter(pa.array(partitions == k))
        yield mine.combine_chunks() if isinstance(mine, pa.ChunkedArray) else mine


def split_rows(table: pa.Table, partitions: np.ndarray, count: int) -> list[pa.Table]:
    """``table``'s rows in ``count`` tables by each row's partition (``partitions``), each in table order."""
    if count == 1:
        return [table]
    order = np.argsort(partitions, kind="stable")
    bounds = np.searchsorted(partitions[order], np.arange(count + 1))
    taken = table.take(pa.array(order, pa.int64()))
    return [taken.slice(bounds[k], bounds[k + 1] - bounds[k]) for k in range(count)]


def split_by_id(table: pa.Table, count: int, missing: int = 0) -> list[pa.Table]:
    """``table``'s rows in its ``count`` image-id partitions (:func:`id_partitions` of its ``image_id`` column;
    rows without an id in partition ``missing``), each in table order."""
    return split_rows(table, id_partitions(table.column("image_id"), count, missing), count)


def range_starts(rows: int, per_range: int) -> list[int]:
    """The first row of each range of at most ``per_range`` rows cutting ``rows`` rows (one range at least)."""
    return list(range(0, max(rows, 1), max(1, per_range)))


def part_rows_for(total: int, wanted: int, min_piece_rows: int) -> int:
    """The rows of a part when ``total`` rows are planned in parts of ``wanted`` rows: ``wanted``, or more where
    the pieces exchanged between parts would be smaller than ``min_piece_rows``.

    An exchange cuts each of about ``total / rows`` parts into as many pieces (a piece per range and id
    partition), so a piece holds about ``rows**2 / total`` rows and shrinks as the corpus grows. Ray keeps a
    task's result of less than 100 KiB in its owner's memory, and the owner of every piece is the driver; parts
    of at least ``sqrt(total * min_piece_rows)`` rows keep the pieces above that size, in the object store."""
    return max(wanted, math.ceil(math.sqrt(max(total, 0) * min_piece_rows)))


def batches_by_rows(rows: list[int], per_batch: int) -> list[range]:
    """Consecutive items whose ``rows`` add up to about ``per_batch`` (one item at least), as ranges of positions."""
    starts: list[int] = []
    size = 0
    for position, count in enumerate(rows):
        if not starts or size + count > per_batch:
            starts.append(position)
            size = 0
        size += count
    ends = [*starts[1:], len(rows)] if starts else []
    return [range(start, end) for start, end in zip(starts, ends, strict=True)]

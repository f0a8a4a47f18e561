"""Is a listed file the one the manifest recorded? Size always, row count and SHA-256 on request.

Readers check each shard's size before reading it (one request). ``inspect --verify`` and every
export also hash each listed file and compare it with the manifest's SHA-256, which catches a shard
replaced by another valid shard of the same size and row count. Manifests written before checksums
were recorded have none; their files are checked by size and rows only.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow.parquet as pq

from engine.errors import OutputError
from engine.store.location import Location, Where, location
from engine.store.writer import ShardInfo


def size_problem(root: Location, shard: ShardInfo) -> str | None:
    """What is wrong with a listed file's presence and size (one request), or None."""
    found = (root / shard.path).stat()
    if found is None:
        return f"shard {shard.path} is missing"
    if found.size != shard.bytes:
        return (
            f"shard {shard.path} is unreadable: it has {found.size} bytes, the manifest says {shard.bytes} "
            "(truncated or replaced)"
        )
    return None


def checksum_problem(root: Location, shard: ShardInfo) -> str | None:
    """A listed file whose SHA-256 differs from the manifest's (the file is read whole), or None."""
    if not shard.sha256:
        return None
    actual = (root / shard.path).sha256()
    if actual != shard.sha256:
        return (
            f"shard {shard.path} does not match the manifest's checksum (sha256 {actual[:16]}..., "
            f"recorded {shard.sha256[:16]}...): it was replaced or changed"
        )
    return None


def rows_problem(root: Location, shard: ShardInfo) -> str | None:
    """A listed Parquet file that cannot be opened or holds another number of rows, or None."""
    try:
        with (root / shard.path).open_input() as handle:
            rows = pq.ParquetFile(handle).metadata.num_rows
    except Exception as error:  # pyarrow raises several types for a damaged file; all mean "unreadable"
        detail = " ".join(str(error).split())
        return f"shard {shard.path} is unreadable ({type(error).__name__}: {detail})"
    if rows != shard.rows:
        return f"shard {shard.path} has {rows} rows, the manifest says {shard.rows}"
    return None


def file_problems(root: Where, shards: Iterable[ShardInfo], checksums: bool = False) -> list[str]:
    """Every problem with the listed files: missing, resized, unreadable, another row count and, with
    ``checksums``, other bytes than recorded. One problem per file, the first found."""
    root = location(root)
    problems = []
    for shard in shards:
        problem = size_problem(root, shard) or rows_problem(root, shard)
        if problem is None and checksums:
            problem = checksum_problem(root, shard)
        if problem is not None:
            problems.append(problem)
    return problems


def verify_checksums(root: Where, shards: Iterable[ShardInfo]) -> None:
    """Raise one :class:`OutputError` naming the first listed file that is not the one recorded."""
    root = location(root)
    for shard in shards:
        problem = size_problem(root, shard) or checksum_problem(root, shard)
        if problem is not None:
            raise OutputError(f"{root}: {problem}")

"""The probe-cache split in Arrow: an Arrow listing against the previous probe index, by URI, with ProbeCache's
rules (size and ETag for objects in a store, size and a settled mtime for local files), no dict per object."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.probe_cache import RACY_NS, STAMP_SCHEMA, ProbeCache, split_by_cache, unchanged
from engine.ingest.sources import SOURCE_SCHEMA

CHECKED = 100 * RACY_NS
SETTLED = CHECKED - 2 * RACY_NS  # an mtime well before the check
WAS = pa.schema(
    [("object_size", pa.int64()), ("mtime_ns", pa.int64()), ("etag", pa.string()), ("checked_ns", pa.int64())]
)


def decide(*pairs: tuple[tuple, tuple]) -> list[bool]:
    now = pa.Table.from_pylist([dict(zip(STAMP_SCHEMA.names, ("u", *n), strict=True)) for n, _ in pairs], STAMP_SCHEMA)
    was = pa.Table.from_pylist([dict(zip(WAS.names, w, strict=True)) for _, w in pairs], WAS)
    return unchanged(now, was).tolist()


def test_a_local_file_is_unchanged_only_with_its_size_and_an_mtime_settled_before_the_check() -> None:
    assert decide(
        ((10, SETTLED, None), (10, SETTLED, None, CHECKED)),  # as it was
        ((10, CHECKED - RACY_NS, None), (10, CHECKED - RACY_NS, None, CHECKED)),  # racy: written near the check
        ((11, SETTLED, None), (10, SETTLED, None, CHECKED)),  # resized
        ((10, SETTLED + 1, None), (10, SETTLED, None, CHECKED)),  # touched
        ((None, None, None), (10, SETTLED, None, CHECKED)),  # gone (cannot be stated)
        ((10, SETTLED, None), (None, SETTLED, None, CHECKED)),  # the index never saw its size
        ((10, SETTLED, None), (10, SETTLED, None, None)),  # nor when it was checked
    ) == [True, False, False, False, False, False, False]


def test_an_object_in_a_store_is_unchanged_only_with_its_size_and_etag_whatever_its_mtime() -> None:
    assert decide(
        ((10, None, "e1"), (10, 5, "e1", 0)),  # uploaded again with the same bytes: the mtime does not matter
        ((10, None, "e2"), (10, None, "e1", CHECKED)),  # rewritten, same size
        ((10, SETTLED, None), (10, SETTLED, "e1", CHECKED)),  # an ETag on one side only
        ((11, None, "e1"), (10, None, "e1", CHECKED)),
    ) == [True, False, False, False]


def index_row(uri: str, size: int, mtime: int, container: str | None = None, offset: int = 0) -> dict:
    locator = None if container is None else {"container": container, "offset": offset}
    return {"source_uri": uri, "object_size": size, "mtime_ns": mtime, "checked_ns": CHECKED,
            "image_id": f"id-{uri.rsplit('/', 1)[1]}", "locator": locator}  # fmt: skip


def test_a_listing_splits_into_cached_rows_and_misses_in_listing_order_without_stating_listed_files() -> None:
    # None of these paths exists: the listing's size and mtime are what the split compares.
    members = [index_row(f"/d/s.tar#{m}", 30, SETTLED, "/d/s.tar", k) for k, m in enumerate(("b.png", "a.png"))]
    others = [index_row(f"/d/{name}", 10, SETTLED) for name in ("a.jpg", "bad.jpg", "touched.jpg")]
    cache = ProbeCache.from_rows([index_row("/d/z.jpg", 10, SETTLED), *members, *others])
    listing = pa.Table.from_pylist(
        [
            {"kind": "file", "uri": "/d/a.jpg", "size": 10, "mtime_ns": SETTLED},
            {"kind": "file", "uri": "/d/bad.jpg", "size": 10, "mtime_ns": SETTLED, "problem": "a dangling symlink"},
            {"kind": "file", "uri": "/d/new.jpg", "size": 10, "mtime_ns": SETTLED},
            {"kind": "tar", "uri": "/d/s.tar", "size": 30, "mtime_ns": SETTLED},
            {"kind": "file", "uri": "/d/touched.jpg", "size": 10, "mtime_ns": SETTLED + 1},
            {"kind": "file", "uri": "/d/z.jpg", "size": 10, "mtime_ns": SETTLED},
        ],
        SOURCE_SCHEMA,
    )
    split = split_by_cache(listing, cache)
    assert split.hits.column("image_id").to_pylist() == ["id-a.jpg", "id-s.tar#b.png", "id-s.tar#a.png", "id-z.jpg"]
    assert split.misses.schema == SOURCE_SCHEMA
    assert split.misses.column("uri").to_pylist() == ["/d/bad.jpg", "/d/new.jpg", "/d/touched.jpg"]
    assert split_by_cache(listing, None).misses.equals(listing)
    assert split_by_cache(listing.slice(0, 0), cache).hits.num_rows == 0


def test_a_listed_file_without_a_stamp_is_stated(tmp_path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 10)
    stat = path.stat()
    cache = ProbeCache.from_rows(
        [{**index_row(str(path), 10, stat.st_mtime_ns), "checked_ns": stat.st_mtime_ns + 2 * RACY_NS}]
    )
    listing = pa.Table.from_pylist(
        [{"kind": "file", "uri": str(path)}, {"kind": "file", "uri": str(tmp_path / "gone.jpg")}], SOURCE_SCHEMA
    )
    split = split_by_cache(listing, cache)
    assert split.hits.column("source_uri").to_pylist() == [str(path)]
    assert split.misses.column("uri").to_pylist() == [str(tmp_path / "gone.jpg")]
    path.write_bytes(b"y" * 11)
    assert split_by_cache(listing, cache).hits.num_rows == 0

"""The run's listing in Arrow: built a chunk at a time, sorted by URI, each URI once, and cut by --limit."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.discover import discover_listing
from engine.ingest.listing import listing_batches, listing_sources, sorted_listing, split_at_limit
from engine.ingest.sources import SOURCE_SCHEMA, Source, SourceKind
from tests.support.image_files import jpeg_bytes

EXTENSIONS = (".jpg", ".png")


def test_sources_become_record_batches_a_chunk_at_a_time() -> None:
    sources = [Source(SourceKind.FILE, f"/d/{i}.jpg", size=i) for i in range(5)] + [Source(SourceKind.TAR, "/d/s.tar")]
    batches = list(listing_batches(iter(sources), chunk=4))
    assert [b.num_rows for b in batches] == [4, 2] and all(b.schema == SOURCE_SCHEMA for b in batches)
    assert listing_sources(pa.Table.from_batches(batches)) == sources


def test_the_listing_is_sorted_by_uri_and_keeps_the_first_listed_row_of_a_uri() -> None:
    first = pa.RecordBatch.from_pylist(
        [{"kind": "file", "uri": "/b.jpg", "size": 1}, {"kind": "file", "uri": "/a.jpg", "size": 2}], SOURCE_SCHEMA
    )
    second = pa.RecordBatch.from_pylist(
        [{"kind": "file", "uri": "/c.jpg"}, {"kind": "file", "uri": "/a.jpg", "size": 3}], SOURCE_SCHEMA
    )
    listing = sorted_listing([first, second])
    assert listing.column("uri").to_pylist() == ["/a.jpg", "/b.jpg", "/c.jpg"]
    assert listing.column("size").to_pylist() == [2, 1, None]
    assert sorted_listing([]).num_rows == 0


def test_two_inputs_naming_the_same_files_list_each_once_in_uri_order(tmp_path) -> None:
    for name in ("b.jpg", "a.jpg", "c.png"):
        (tmp_path / "images" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "images" / name).write_bytes(jpeg_bytes())
    (tmp_path / "list.txt").write_text("images/c.png\nimages/a.jpg\n/elsewhere/z.jpg\n")
    folder_first = discover_listing([str(tmp_path / "images"), str(tmp_path / "list.txt")], EXTENSIONS)
    names = [uri.removeprefix(f"{tmp_path}/") for uri in folder_first.column("uri").to_pylist()]
    assert names == ["/elsewhere/z.jpg", "images/a.jpg", "images/b.jpg", "images/c.png"]
    # Of the rows one URI has, the first input's is kept: the folder's listing says size and mtime, the list's not.
    assert folder_first.column("size").is_valid().to_pylist() == [False, True, True, True]
    list_first = discover_listing([str(tmp_path / "list.txt"), str(tmp_path / "images")], EXTENSIONS)
    assert list_first.column("uri").to_pylist() == folder_first.column("uri").to_pylist()
    assert list_first.column("size").is_valid().to_pylist() == [False, False, True, False]


def test_limit_takes_the_first_files_by_uri_and_defers_the_rest() -> None:
    listing = sorted_listing(listing_batches(Source(SourceKind.FILE, f"/d/{i}.jpg") for i in (3, 1, 4, 0, 2)))
    probed, deferred = split_at_limit(listing, 2)
    assert probed.column("uri").to_pylist() == ["/d/0.jpg", "/d/1.jpg"]
    assert deferred.to_pylist() == ["/d/2.jpg", "/d/3.jpg", "/d/4.jpg"]
    everything, none = split_at_limit(listing, None)
    assert everything.num_rows == 5 and none.to_pylist() == []
    assert split_at_limit(listing, 9)[0].num_rows == 5 and split_at_limit(listing, 0)[1].to_pylist()[0] == "/d/0.jpg"

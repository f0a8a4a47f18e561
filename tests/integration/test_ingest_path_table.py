"""A Parquet table of paths becomes listing rows made with Arrow kernels: the same URIs, kinds, problems,
captions, metadata and order as a Location and a Source per row (the rule it replaced, kept below)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.ingest.discover import discover_listing
from engine.ingest.listing import listing_batches, sorted_listing
from engine.ingest.parquet_input import _iter_rows, iter_path_batches, read_layout
from engine.ingest.sources import SOURCE_SCHEMA, InputOptions, Source, SourceKind, json_text
from engine.store.location import Location, StorageError, location

EXTENSIONS = (".jpg", ".png")


def per_row_sources(table: Location) -> Iterator[Source]:
    """The path table's sources one row at a time, as discovery made them before (a Location per row)."""
    layout = read_layout(table, InputOptions(), EXTENSIONS)
    base = table.parent
    for row in _iter_rows(table, [layout.column], layout):
        value = row.pop(layout.column)
        if not value:
            continue
        caption = row.pop("__caption__")
        metadata = json_text(row) if row else None
        try:
            place = location(value) if "://" in value or value.startswith(("/", "~")) else base / value
        except StorageError as error:
            yield Source(SourceKind.FILE, value, caption=caption, metadata=metadata, problem=str(error))
            continue
        yield Source(SourceKind.FILE, place.uri, caption=caption, metadata=metadata)


def in_arrow(table: Location) -> pa.Table:
    layout = read_layout(table, InputOptions(), EXTENSIONS)
    return pa.Table.from_batches(list(iter_path_batches(table, layout)), schema=SOURCE_SCHEMA)


def per_row(table: Location) -> pa.Table:
    return pa.Table.from_batches(list(listing_batches(per_row_sources(table))), schema=SOURCE_SCHEMA)


def local_paths(folder: Path) -> list[str | None]:
    return [
        "a.jpg",
        "dir/b.jpg",
        "./c.jpg",
        "../up.jpg",
        "dir//d.jpg",
        "dir/sub/../e.jpg",
        "dir/",
        "my photo é.jpg",
        ".hidden/f.jpg",
        "..dots.jpg",
        "~/home.jpg",
        str(folder / "abs" / "g.jpg"),
        f"{folder}/abs/../h.jpg",
        f"{folder}//abs/i.jpg",
        "/",
        "//double/j.jpg",
        f"file://{folder}/k%20l.jpg",
        "file://host/m.jpg",
        "s3://",
        "nosuch://bucket/n.jpg",
        f"{folder}/x://o.jpg",
        "",
        None,
        "a.jpg",  # duplicates: the same value, and the same file named relatively and absolutely
        str(folder / "tables" / "a.jpg"),
        "dir/b.jpg",
    ]


def write_table(folder: Path, paths: list[str | None], **columns: list) -> Location:
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    path = folder / "tables" / "paths.parquet"
    pq.write_table(pa.table({"path": paths, **columns}), path)
    return location(str(path))


def test_a_local_path_table_lists_as_a_source_per_row_did(tmp_path: Path) -> None:
    paths = local_paths(tmp_path)
    count = len(paths)
    table = write_table(
        tmp_path,
        paths,
        caption=[f"caption {i}" if i % 3 else None for i in range(count)],
        width=list(range(count)),
        score=[float("nan") if i == 4 else i / 2 for i in range(count)],
    )
    arrow, rows = in_arrow(table), per_row(table)
    assert arrow.equals(rows), (arrow.to_pylist(), rows.to_pylist())
    assert arrow.num_rows == count - 2  # the empty path and the null one name no file
    by_uri: dict[str, dict] = {}
    for row in arrow.to_pylist():
        by_uri.setdefault(row["uri"], row)  # the first row of each URI
    tables = tmp_path / "tables"
    assert by_uri[f"{tables}/a.jpg"]["caption"] is None and by_uri[f"{tables}/dir/b.jpg"]["caption"] == "caption 1"
    assert json.loads(by_uri[f"{tables}/dir/b.jpg"]["metadata"]) == {"width": 1, "score": 0.5}
    assert json.loads(by_uri[f"{tables}/dir/d.jpg"]["metadata"]) == {"width": 4, "score": None}
    assert f"{tmp_path}/up.jpg" in by_uri and f"{tables}/my photo é.jpg" in by_uri
    assert f"{tmp_path}/k l.jpg" in by_uri and f"{tmp_path}/h.jpg" in by_uri and "//double/j.jpg" in by_uri
    problems = {row["uri"]: row["problem"] for row in arrow.to_pylist() if row["problem"]}
    assert set(problems) == {"file://host/m.jpg", "s3://", "nosuch://bucket/n.jpg", f"{tmp_path}/x://o.jpg"}
    assert "not host 'host'" in problems["file://host/m.jpg"] and "missing bucket name" in problems["s3://"]
    assert set(arrow.column("kind").to_pylist()) == {"file"}
    assert arrow.column("size").null_count == arrow.num_rows


def test_the_listing_of_a_path_table_is_sorted_and_each_uri_once_as_before(tmp_path: Path) -> None:
    table = write_table(tmp_path, local_paths(tmp_path), caption=[str(i) for i in range(len(local_paths(tmp_path)))])
    listing = discover_listing([table.uri], EXTENSIONS)
    assert listing.equals(sorted_listing(listing_batches(per_row_sources(table))))
    uris = listing.column("uri").to_pylist()
    assert uris == sorted(set(uris)) and uris.count(f"{tmp_path}/tables/a.jpg") == 1
    assert listing.num_rows == len(local_paths(tmp_path)) - 2 - 3  # three duplicate URIs kept once
    first = {row["uri"]: row["caption"] for row in listing.to_pylist()}
    assert first[f"{tmp_path}/tables/a.jpg"] == "0"  # of the rows with one URI, the first listed is kept


def test_a_dictionary_encoded_path_column_in_several_batches_lists_the_same(tmp_path: Path) -> None:
    paths = [f"d{i % 7}/img{i}.jpg" for i in range(20_000)] + [str(tmp_path / "z.jpg"), "./x.jpg"]
    path = tmp_path / "tables" / "paths.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"path": pa.array(paths).dictionary_encode()}), path, row_group_size=5_000)
    table = location(str(path))
    arrow = in_arrow(table)
    assert arrow.equals(per_row(table)) and arrow.num_rows == len(paths)


def test_a_path_table_without_a_usable_path_lists_nothing(tmp_path: Path) -> None:
    table = write_table(tmp_path, [None, "", None])
    assert in_arrow(table).num_rows == 0 and per_row(table).num_rows == 0
    assert discover_listing([table.uri], EXTENSIONS).num_rows == 0
    empty = tmp_path / "tables" / "none.parquet"
    pq.write_table(pa.table({"path": pa.array([], pa.string())}), empty)
    assert discover_listing([str(empty)], EXTENSIONS).num_rows == 0


@pytest.mark.slow
def test_an_object_store_path_table_lists_as_a_source_per_row_did(tmp_path: Path, s3_bucket: str) -> None:
    bucket = s3_bucket.removeprefix("s3://")
    paths = [
        "rel/a.jpg",
        "./b.jpg",
        "rel/../c.jpg",
        f"s3://{bucket}/d.jpg",
        f"s3://{bucket}/dir/",
        f"S3://{bucket}/e.jpg",
        f"s3://{bucket}/f.jpg?version=1",
        f"s3://{bucket}/g h.jpg",
        f"s3://{bucket}/d.jpg",
        "s3:///no-bucket.jpg",
        str(tmp_path / "local.jpg"),
    ]
    local = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"path": paths}), local)
    table = location(f"{s3_bucket}/tables/paths.parquet")
    with local.open("rb") as source, table.open_output() as sink:
        sink.write(source.read())
    arrow, rows = in_arrow(table), per_row(table)
    assert arrow.equals(rows), (arrow.to_pylist(), rows.to_pylist())
    uris = arrow.column("uri").to_pylist()
    assert uris[:5] == [
        f"s3://{bucket}/tables/rel/a.jpg",
        f"s3://{bucket}/tables/./b.jpg",  # an object store's key is taken as written
        f"s3://{bucket}/tables/rel/../c.jpg",
        f"s3://{bucket}/d.jpg",
        f"s3://{bucket}/dir",
    ]
    assert arrow.column("problem").to_pylist()[9].startswith("s3:///no-bucket.jpg: missing bucket name")

"""Rows to annotate come in read order by their locators: files, then each container front to back."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.image_bytes import LOCATOR_COLUMN, in_read_order
from engine.ingest.locator import Locator
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord
from tests.support.located_rows import with_locators


def _rows(uris: list[str]) -> pa.Table:
    records = [ImageRecord(f"id-{uri}", uri, 4, 4, "png", [uri]).to_row() for uri in uris]
    return pa.Table.from_pylist(records, schema=ANNOTATION_SCHEMA)


def test_rows_take_their_locators_and_come_files_first_then_container_by_container() -> None:
    located = {
        "s3://b/t1.tar#b.jpg": Locator("s3://b/t1.tar", offset=4096, length=10, version="e1"),
        "s3://b/t1.tar#a.jpg": Locator("s3://b/t1.tar", offset=512, length=10, version="e1"),
        "s3://b/p.parquet#7": Locator("s3://b/p.parquet", row_group=1, row=0, column="image", version="e2"),
        "s3://b/p.parquet#3": Locator("s3://b/p.parquet", row_group=0, row=3, column="image", version="e2"),
        "s3://b/p.parquet#2": Locator("s3://b/p.parquet", row_group=0, row=2, column="image", version="e2"),
        "s3://b/other.tar#x.jpg": Locator("s3://b/other.tar", offset=0, length=5),
    }
    uris = ["/in/z.png", *located, "/in/a.png"]
    ordered = in_read_order(with_locators(_rows(uris), located))
    assert ordered.column("source_uri").to_pylist() == [
        "/in/a.png",
        "/in/z.png",
        "s3://b/other.tar#x.jpg",
        "s3://b/p.parquet#2",
        "s3://b/p.parquet#3",
        "s3://b/p.parquet#7",
        "s3://b/t1.tar#a.jpg",
        "s3://b/t1.tar#b.jpg",
    ]
    found = dict(zip(ordered.column("source_uri").to_pylist(), ordered.column(LOCATOR_COLUMN).to_pylist(), strict=True))
    assert all(Locator.from_dict(found[uri]) == loc for uri, loc in located.items())
    assert found["/in/a.png"] is None and found["/in/z.png"] is None
    assert ordered.column("image_id").to_pylist()[2] == "id-s3://b/other.tar#x.jpg"  # whole rows move together


def test_no_rows_and_no_locators() -> None:
    assert in_read_order(with_locators(_rows([]), {})).num_rows == 0
    files = in_read_order(with_locators(_rows(["/in/b.png", "/in/a.png"]), {}))
    assert files.column("source_uri").to_pylist() == ["/in/a.png", "/in/b.png"]

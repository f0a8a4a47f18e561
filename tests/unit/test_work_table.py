"""Grouping probe index rows by content, in Arrow: one work row per distinct image, quarantine apart."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.probe import PROBE_INDEX_SCHEMA, WORK_SCHEMA, as_probe_index, group_by_content


def index(rows: list[dict]) -> pa.Table:
    return as_probe_index(pa.Table.from_pylist(rows))


def test_copies_of_one_image_become_one_work_row_with_every_place_and_caption() -> None:
    found = index(
        [
            {
                "source_uri": "s3://b/z.png",
                "image_id": "bb",
                "width": 3,
                "height": 2,
                "format": "PNG",
                "caption": "a dog",
            },
            {"source_uri": "s3://b/a.png", "image_id": "bb", "width": 3, "height": 2, "format": "PNG", "caption": None},
            {"source_uri": "s3://b/m.png", "image_id": "aa", "width": 5, "height": 4, "format": "JPEG", "caption": "x"},
            {
                "source_uri": "s3://b/q.png",
                "image_id": "bb",
                "width": 3,
                "height": 2,
                "format": "PNG",
                "caption": "a dog",
            },
        ]
    )
    work, quarantined = group_by_content(found)
    assert work.schema.names == WORK_SCHEMA.names and quarantined.num_rows == 0
    assert work.select(["image_id", "source_uri", "source_uris", "captions", "width"]).to_pylist() == [
        {
            "image_id": "aa",
            "source_uri": "s3://b/m.png",
            "source_uris": ["s3://b/m.png"],
            "captions": ["x"],
            "width": 5,
        },
        {
            "image_id": "bb",
            "source_uri": "s3://b/a.png",  # the first place by URI stands for the image
            "source_uris": ["s3://b/a.png", "s3://b/q.png", "s3://b/z.png"],
            "captions": [None, "a dog", "a dog"],
            "width": 3,
        },
    ]


def test_bad_images_go_to_quarantine_sorted_by_place_and_never_to_work() -> None:
    found = index(
        [
            {"source_uri": "/d/b.png", "image_id": "cc", "reason": "truncated", "detail": "cut", "size_bytes": 7},
            {"source_uri": "/d/a.png", "image_id": None, "reason": "unreadable", "detail": "gone", "size_bytes": 0},
            {"source_uri": "/d/c.png", "image_id": "cc", "width": 1, "height": 1, "format": "PNG"},
        ]
    )
    work, quarantined = group_by_content(found)
    assert work.column("source_uris").to_pylist() == [["/d/c.png"]]
    assert quarantined.to_pylist() == [
        {"source_uri": "/d/a.png", "image_id": None, "reason": "unreadable", "detail": "gone", "size_bytes": 0},
        {"source_uri": "/d/b.png", "image_id": "cc", "reason": "truncated", "detail": "cut", "size_bytes": 7},
    ]


def test_an_empty_index_gives_empty_tables() -> None:
    work, quarantined = group_by_content(PROBE_INDEX_SCHEMA.empty_table())
    assert (work.num_rows, quarantined.num_rows) == (0, 0)


def test_an_index_written_before_a_column_existed_reads_it_as_null() -> None:
    old = pa.table({"source_uri": ["/d/a.png"], "image_id": ["aa"], "width": pa.array([2], pa.int32())})
    conformed = as_probe_index(old)
    assert conformed.schema == PROBE_INDEX_SCHEMA
    assert conformed.column("caption").to_pylist() == [None] and conformed.column("width").to_pylist() == [2]

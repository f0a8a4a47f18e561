"""Parquet inputs: img2dataset and Hugging Face image bytes without flags, path tables, bad tables in one line."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.ingest.discover import discover
from engine.ingest.locator import read_images, read_source
from engine.ingest.parquet_input import TableLayout
from engine.ingest.probe import probe_source, probed_from_row
from engine.ingest.sources import InputError, InputOptions, SourceKind
from tests.support.corpus_inputs import hf_image_table, img2dataset_table, write_parquet
from tests.support.image_files import jpeg_bytes

MAX_PIXELS = 89_478_485
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def sources(path, **options):
    return discover([str(path)], EXTENSIONS, InputOptions(**options))


def probe(path, **options) -> list[dict]:
    (source,) = sources(path, **options)
    return probe_source(source, MAX_PIXELS, 1 << 30, EXTENSIONS)


def test_an_img2dataset_table_is_read_without_flags(tmp_path) -> None:
    table = write_parquet(img2dataset_table(3), tmp_path / "00000.parquet")
    (source,) = sources(table)
    layout = TableLayout.from_json(source.layout)
    assert (source.kind, layout.mode, layout.column, layout.caption_column) == (
        SourceKind.TABLE,
        "bytes",
        "jpg",
        "caption",
    )
    assert layout.metadata_columns == ("url", "key", "status", "width", "height")


def test_table_rows_are_named_by_key_with_caption_and_metadata(tmp_path) -> None:
    rows = probe(write_parquet(img2dataset_table(3), tmp_path / "00000.parquet"))
    assert [r["source_uri"] for r in rows] == [f"{tmp_path}/00000.parquet#{i:09d}" for i in range(3)]
    assert all(r["reason"] is None and (r["width"], r["height"]) == (40, 30) for r in rows)
    assert rows[2]["caption"] == "a dog in a park, picture 000000002"
    assert json.loads(rows[2]["metadata"]) == {
        "url": "https://example.com/000000002.jpg",
        "key": "000000002",
        "status": "success",
        "width": 40,
        "height": 30,
    }


def test_rows_without_unique_keys_are_named_by_index(tmp_path) -> None:
    table = img2dataset_table(3).drop_columns(["key"]).append_column("key", pa.array(["a", "a", "b"]))
    rows = probe(write_parquet(table, tmp_path / "t.parquet"))
    assert [r["source_uri"].rsplit("#", 1)[1] for r in rows] == ["0", "1", "2"]


def test_an_empty_caption_and_missing_bytes_in_a_table(tmp_path) -> None:
    table = img2dataset_table(3, captions=["", None, " a boat "])
    jpg = table.column("jpg").to_pylist()
    table = table.set_column(table.schema.get_field_index("jpg"), "jpg", pa.array([jpg[0], None, jpg[2]], pa.binary()))
    rows = probe(write_parquet(table, tmp_path / "t.parquet"))
    assert [r["caption"] for r in rows] == [None, None, "a boat"]
    assert [r["reason"] for r in rows] == [None, "empty", None]


def test_a_hugging_face_image_struct_is_detected_and_its_caption_column_named(tmp_path) -> None:
    path = write_parquet(hf_image_table(3), tmp_path / "train-00000-of-00001.parquet", row_group_size=2)
    rows = probe(path, caption_column="text")
    assert [r["source_uri"].rsplit("#", 1)[1] for r in rows] == ["0", "1", "2"]
    assert [(r["locator"]["row_group"], r["locator"]["row"]) for r in rows] == [(0, 0), (0, 1), (1, 0)]
    assert [r["format"] for r in rows] == ["png"] * 3 and rows[1]["caption"] == "a cat on a sofa, number 1"
    assert rows[0]["metadata"] is None  # the struct's own path is part of the image column


def test_locators_read_table_rows_back_by_row_group(tmp_path) -> None:
    table = hf_image_table(5)
    path = write_parquet(table, tmp_path / "t.parquet", row_group_size=2)
    probed = [probed_from_row(r) for r in probe(path)]
    found = read_images([p.source_uri for p in probed], [p.locator for p in probed])
    assert found == [image["bytes"] for image in table.column("image").to_pylist()]


def test_a_rewritten_table_is_read_again_not_from_the_row_group_cache(tmp_path) -> None:
    import os

    path = write_parquet(img2dataset_table(2, seed=1), tmp_path / "t.parquet")
    first = [probed_from_row(r) for r in probe(path)]
    assert read_images([p.source_uri for p in first], [p.locator for p in first])[0] == jpeg_of(path, 0)
    write_parquet(img2dataset_table(2, seed=2), path)
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    again = [probed_from_row(r) for r in probe(path)]
    assert read_images([p.source_uri for p in again], [p.locator for p in again])[0] == jpeg_of(path, 0)
    assert first[0].image_id != again[0].image_id


def jpeg_of(path, row: int) -> bytes:
    return pq.read_table(path).column("jpg")[row].as_py()


def test_a_row_is_read_by_its_source_uri_and_image_id(tmp_path) -> None:
    import hashlib

    table = img2dataset_table(3)
    path = write_parquet(table, tmp_path / "t.parquet")
    wanted = table.column("jpg")[1].as_py()
    assert read_source(f"{path}#000000001", hashlib.sha256(wanted).hexdigest()) == wanted
    with pytest.raises(FileNotFoundError, match="no such row"):
        read_source(f"{path}#999")


def test_a_path_table_gives_files_with_their_captions(tmp_path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(jpeg_bytes())
    table = pa.table(
        {"path": ["img/a.jpg", None, "s3://bucket/b.jpg"], "caption": ["a red door", "x", ""], "n": [1, 2, 3]}
    )
    found = sources(write_parquet(table, tmp_path / "t.parquet"))
    assert [(s.kind, s.uri, s.caption) for s in found] == [
        (SourceKind.FILE, str(tmp_path / "img" / "a.jpg"), "a red door"),
        (SourceKind.FILE, "s3://bucket/b.jpg", ""),
    ]
    assert json.loads(found[0].metadata) == {"n": 1}


def test_flags_choose_the_columns(tmp_path) -> None:
    table = img2dataset_table(2).append_column("file", pa.array(["a.jpg", "b.jpg"]))
    path = write_parquet(table, tmp_path / "t.parquet")
    assert [s.uri.rsplit("/", 1)[1] for s in sources(path, path_column="file")] == ["a.jpg", "b.jpg"]
    (source,) = sources(path, image_column="jpg", caption_column="url")
    assert TableLayout.from_json(source.layout).caption_column == "url"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (pa.array([1, 2]), "int64"),
        (pa.array([b"a", b"b"]), "binary"),
        (pa.array([["a"], ["b"]]), "list<element: string>"),
    ],
)
def test_a_path_column_that_holds_no_strings_is_one_line_naming_the_table(tmp_path, values, kind) -> None:
    path = write_parquet(pa.table({"path": values}), tmp_path / "t.parquet")
    with pytest.raises(InputError) as caught:
        sources(path)
    assert str(caught.value) == f"input {path}: column 'path' holds {kind} values, not paths (strings)"


def test_a_corrupt_table_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(InputError, match=rf"^input {path}: not a readable Parquet table \(.+\)$"):
        sources(path)


def test_a_table_with_several_image_columns_asks_which(tmp_path) -> None:
    table = img2dataset_table(1).append_column("png", pa.array([b"x"], pa.binary()))
    with pytest.raises(InputError, match=r"several image columns \(jpg, png\); choose one with --image-column"):
        sources(write_parquet(table, tmp_path / "t.parquet"))


def test_a_missing_named_column_is_named(tmp_path) -> None:
    path = write_parquet(img2dataset_table(1), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"no image column 'pixels'"):
        sources(path, image_column="pixels")
    with pytest.raises(InputError, match=r"no caption column 'alt'"):
        sources(path, caption_column="alt")
    with pytest.raises(InputError, match=r"column 'url' holds string values, not image bytes"):
        sources(path, image_column="url")


def test_metadata_keeps_values_json_cannot_hold_as_null_or_text(tmp_path) -> None:
    import datetime

    table = img2dataset_table(1).append_column("score", pa.array([float("nan")]))
    table = table.append_column("seen", pa.array([datetime.datetime(2024, 5, 1, 12, 0)]))
    (row,) = probe(write_parquet(table, tmp_path / "t.parquet"))
    metadata = json.loads(row["metadata"])
    assert metadata["score"] is None and metadata["seen"] == "2024-05-01 12:00:00"
    assert pq.read_schema(tmp_path / "t.parquet").field("jpg").type == pa.binary()

"""Discovery: every kind of input found, hostile names kept or quarantined with a reason, bad inputs one line."""

from __future__ import annotations

import os
import threading

import pytest

from engine.ingest.discover import discover
from engine.ingest.probe import probe_source
from engine.ingest.sources import InputError, Source, SourceKind, split_member_uri
from tests.support.corpus_inputs import webdataset_members, write_tar
from tests.support.image_files import jpeg_bytes

EXTENSIONS = (".jpg", ".png")
MAX_PIXELS = 89_478_485


def found(*inputs) -> list[Source]:
    return discover([str(i) for i in inputs], EXTENSIONS)


def test_a_folder_gives_images_and_webdataset_shards(tmp_path) -> None:
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "notes.txt").write_text("not an input")
    write_tar(tmp_path / "shards" / "00000.tar", webdataset_members(1))
    assert [(s.kind, s.uri.removeprefix(f"{tmp_path}/")) for s in found(tmp_path)] == [
        (SourceKind.FILE, "a.jpg"),
        (SourceKind.TAR, "shards/00000.tar"),
    ]


def test_special_files_are_sources_with_a_problem_and_are_never_opened(tmp_path) -> None:
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    problems = {s.uri.rsplit("/", 1)[1]: s.problem for s in found(tmp_path)}
    assert problems == {
        "fifo.png": "a FIFO, not a regular file",
        "gone.jpg": "a dangling symlink",
        "loop.jpg": "a symlink loop",
        "zero.png": "a device, not a regular file",
    }
    probing: list[list[dict]] = []
    worker = threading.Thread(
        target=lambda: probing.append([probe_source(s, MAX_PIXELS, 1 << 20) for s in found(tmp_path)]), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "probing blocked on a special file"
    assert {row[0]["reason"] for row in probing[0]} == {"unreadable"}


def test_a_fifo_named_as_an_input_is_quarantined_not_opened(tmp_path) -> None:
    os.mkfifo(tmp_path / "x.png")
    (source,) = found(tmp_path / "x.png")
    assert source.problem == "not a regular file"
    assert probe_source(source, MAX_PIXELS, 1 << 20)[0]["reason"] == "unreadable"


def test_symlinked_folder_loops_end_and_list_each_file_once(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "1.png").write_bytes(b"1")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a")
    assert [s.uri for s in found(tmp_path)] == [str(tmp_path / "a" / "b" / "1.png")]


def test_a_non_utf8_name_is_kept_as_a_file_uri_and_probed(tmp_path) -> None:
    with open(os.fsencode(str(tmp_path)) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(jpeg_bytes())
    (source,) = found(tmp_path)
    assert source.uri == f"file://{tmp_path}/caf%E9.jpg"
    (row,) = probe_source(source, MAX_PIXELS, 1 << 20)
    assert row["reason"] is None and row["width"] == 64


def test_a_list_may_name_files_shards_and_uris(tmp_path) -> None:
    write_tar(tmp_path / "s.tar", webdataset_members(1))
    (tmp_path / "list.txt").write_text("s.tar\nhttps://example.com/a.jpg\nnosuch://x/y.jpg\n")
    assert [(s.kind, s.uri, s.problem is not None) for s in found(tmp_path / "list.txt")] == [
        (SourceKind.TAR, str(tmp_path / "s.tar"), False),
        (SourceKind.FILE, "https://example.com/a.jpg", False),
        (SourceKind.FILE, "nosuch://x/y.jpg", True),
    ]


def test_a_list_that_is_not_utf8_is_one_line_naming_it(tmp_path) -> None:
    (tmp_path / "list.txt").write_bytes(b"a.jpg\n\xff\xfeb.jpg\n")
    with pytest.raises(InputError) as caught:
        found(tmp_path / "list.txt")
    assert str(caught.value) == f"input {tmp_path}/list.txt: a list of paths must be UTF-8 text (byte 0xff at offset 6)"


def test_inputs_named_twice_are_one_source(tmp_path) -> None:
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "list.txt").write_text("a.jpg\n")
    assert [s.uri for s in found(tmp_path, tmp_path / "list.txt", tmp_path / "a.jpg")] == [str(tmp_path / "a.jpg")]


def test_member_uris_split_at_their_container() -> None:
    assert split_member_uri("s3://b/x.tar#a/0001.jpg") == ("s3://b/x.tar", "a/0001.jpg", SourceKind.TAR)
    assert split_member_uri("/d/t.parquet#000012") == ("/d/t.parquet", "000012", SourceKind.TABLE)
    assert split_member_uri("/d/photo#1.jpg") is None

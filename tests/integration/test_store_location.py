"""Locations: local paths and S3 (a real moto server) behind one type."""

from __future__ import annotations

import os
import pickle
import threading

import pytest

from engine.store.location import StorageError, location


def test_local_path_becomes_absolute_and_joins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    here = location("out")
    assert here.uri == str(tmp_path / "out")
    assert (here / "annotations/part-1.parquet").uri == str(tmp_path / "out" / "annotations" / "part-1.parquet")
    assert (here / "a" / "b").parent == here / "a"
    assert (here / "a/b.parquet").relative_to(here) == "a/b.parquet"
    assert (here / "x.JPG").suffix == ".jpg"


def test_file_uri_names_the_same_local_path(tmp_path) -> None:
    assert location(f"file://{tmp_path}/a") == location(tmp_path / "a")


def test_non_utf8_local_name_is_kept_losslessly_as_a_file_uri(tmp_path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.png"
    with open(raw, "wb") as handle:
        handle.write(b"bytes")
    listed = [entry.uri for entry in location(tmp_path).iter_files()]
    assert listed == [f"file://{tmp_path}/caf%E9.png"]
    listed[0].encode("utf-8")  # Arrow strings must be UTF-8
    again = location(listed[0])
    assert os.fsencode(again.os_path) == raw
    assert again.read_bytes() == b"bytes"


def test_missing_bucket_is_refused_in_one_line() -> None:
    with pytest.raises(StorageError, match=r"s3:///out: missing bucket name \(expected s3://BUCKET/prefix\)"):
        location("s3:///out")


def test_unknown_scheme_is_refused_naming_it() -> None:
    with pytest.raises(StorageError, match=r"unknown scheme 'nosuch'"):
        location("nosuch://bucket/out")


def test_reading_stops_past_the_limit(tmp_path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 5000)
    assert len(location(path).read_bytes(max_bytes=100)) == 101


def test_a_fifo_is_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            location(fifo).read_bytes()
        except OSError as error:
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "not a regular file" in str(outcome[0])


def test_a_link_to_a_device_is_refused(tmp_path) -> None:
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(OSError, match="not a regular file"):
        location(tmp_path / "zero.png").read_bytes(max_bytes=10)


def test_listing_ends_on_symlink_loops_and_visits_each_folder_once(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "1.png").write_bytes(b"1")
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "a" / "fifo")
    entries = list(location(tmp_path).iter_files())
    assert [e.uri for e in entries] == [str(tmp_path / "a" / "b" / "1.png")]
    assert entries[0].size == 1 and entries[0].mtime_ns


def test_create_exclusive_creates_once(tmp_path) -> None:
    target = location(tmp_path / "versions" / "v000001.json")
    assert target.create_exclusive(b"first") is True
    assert target.create_exclusive(b"second") is False
    assert target.read_bytes() == b"first"
    assert sorted(os.listdir(tmp_path / "versions")) == ["v000001.json"]


def test_a_failed_write_leaves_no_file(tmp_path) -> None:
    target = location(tmp_path / "shard.parquet")
    with pytest.raises(RuntimeError), target.open_output() as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_local_output_checks_name_what_is_wrong(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"output .*/file is a file, not a folder"):
        location(tmp_path / "file").check_writable_folder()
    with pytest.raises(StorageError, match=r"output .*/file/out is under a file \(.*/file\), not a folder"):
        location(tmp_path / "file" / "out").check_writable_folder()
    location(tmp_path / "new" / "out").check_writable_folder()
    assert not (tmp_path / "new").exists()


def test_locations_pickle_as_their_uri(tmp_path, s3_bucket) -> None:
    for place in (location(tmp_path / "x"), location(f"{s3_bucket}/out/x")):
        assert pickle.loads(pickle.dumps(place)) == place


def test_s3_round_trip_and_lazy_listing(s3_bucket) -> None:
    root = location(f"{s3_bucket}/corpus")
    (root / "b.png").write_bytes(b"bb")
    (root / "sub" / "a.png").write_bytes(b"a")
    (root / "sub" / "deeper" / "c.png").write_bytes(b"ccc")
    entries = list(root.iter_files())
    assert [(e.uri, e.size) for e in entries] == [
        (f"{s3_bucket}/corpus/b.png", 2),
        (f"{s3_bucket}/corpus/sub/a.png", 1),
        (f"{s3_bucket}/corpus/sub/deeper/c.png", 3),
    ]
    assert all(e.etag for e in entries)
    assert [e.uri for e in root.iter_files(recursive=False)] == [f"{s3_bucket}/corpus/b.png"]
    assert (root / "sub" / "deeper" / "c.png").read_bytes(max_bytes=1) == b"cc"
    assert root.is_dir() and (root / "b.png").is_file() and not (root / "none").exists()


def test_s3_conditional_writes(s3_bucket) -> None:
    lock = location(f"{s3_bucket}/out/.lock")
    assert lock.create_exclusive(b"a") is True
    assert lock.create_exclusive(b"b") is False
    data, token = lock.read_with_token()
    assert data == b"a"
    assert lock.replace_if(b"c", token) is True
    assert lock.replace_if(b"d", token) is False  # stale token: someone else wrote since
    assert lock.delete_if(token) is False
    assert lock.delete_if(lock.read_with_token()[1]) is True
    assert lock.read_with_token() is None


def test_s3_output_check_refuses_a_missing_bucket(s3_endpoint) -> None:
    with pytest.raises(StorageError, match=r"s3://fld-no-such-bucket"):
        location("s3://fld-no-such-bucket/out").check_writable_folder()


def test_s3_output_check_passes_and_leaves_nothing(s3_bucket) -> None:
    out = location(f"{s3_bucket}/out")
    out.check_writable_folder()
    assert list(out.iter_files()) == []


def test_ranges_are_read_in_the_order_asked_local_and_s3(tmp_path, s3_bucket) -> None:
    data = bytes(range(256)) * 8
    for place in (location(tmp_path / "blob.bin"), location(f"{s3_bucket}/blob.bin")):
        place.write_bytes(data)
        ranges = [(1000, 5), (0, 3), (1500, 10)]
        assert place.read_ranges(ranges, max_gap=100) == [data[o : o + n] for o, n in ranges]
        with pytest.raises(OSError, match="short read"):
            place.read_ranges([(2040, 100)])


def test_an_empty_s3_object_reads_as_empty_and_a_missing_one_is_not_found(s3_bucket) -> None:
    location(f"{s3_bucket}/empty.png").write_bytes(b"")
    assert location(f"{s3_bucket}/empty.png").read_bytes(max_bytes=10) == b""
    with pytest.raises(FileNotFoundError):
        location(f"{s3_bucket}/none.png").read_bytes()


def test_stat_gives_size_and_change_token(tmp_path, s3_bucket) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    local = location(tmp_path / "a.bin").stat()
    assert (local.size, local.mtime_ns) == (3, (tmp_path / "a.bin").stat().st_mtime_ns)
    remote = location(f"{s3_bucket}/a.bin")
    remote.write_bytes(b"abcd")
    first = remote.stat()
    remote.write_bytes(b"wxyz")
    assert first.size == 4 and first.etag and remote.stat().etag != first.etag


def test_a_second_s3_endpoint_in_the_same_process_is_used_and_then_left(s3_bucket) -> None:
    from tests.support.s3_server import new_bucket, s3_server

    with s3_server():
        other = new_bucket()
        location(f"{other}/a.bin").write_bytes(b"there")
        assert [e.uri for e in location(other).iter_files()] == [f"{other}/a.bin"]
    location(f"{s3_bucket}/a.bin").write_bytes(b"here")  # the first server again, once the second is gone
    assert location(f"{s3_bucket}/a.bin").read_bytes() == b"here"

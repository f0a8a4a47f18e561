"""WebDataset shards: grouped as webdataset groups them, streamed, bad members quarantined, read back by range."""

from __future__ import annotations

import hashlib
import json

from engine.ingest.locator import Locator, read_images, read_source
from engine.ingest.probe import plan_work, probe_source, probed_from_row
from engine.ingest.sources import Source, SourceKind
from engine.ingest.webdataset import iter_samples, key_and_field
from tests.support.corpus_inputs import png_bytes, webdataset_members, write_tar
from tests.support.image_files import jpeg_bytes

MAX_PIXELS = 89_478_485
EXTENSIONS = (".jpg", ".png", ".webp")


def probe_tar(path, max_bytes: int = 1 << 30) -> list[dict]:
    return probe_source(Source(SourceKind.TAR, str(path)), MAX_PIXELS, max_bytes, EXTENSIONS)


def test_members_are_grouped_into_samples_as_webdataset_groups_them(tmp_path) -> None:
    import webdataset.tariterators as wds

    members = [
        ("train/a.b/0001.jpg", b"1"),
        ("train/a.b/0001.seg.png", b"2"),
        ("train/a.b/0001.TXT", b"3"),
        ("__index__", b"meta"),
        ("0002.jpg", b"4"),
        ("no_extension", b"5"),
        ("0002.json", b"{}"),
        ("0001.jpg", b"6"),  # the same key again, not adjacent: a new sample, as in webdataset
    ]
    tar = write_tar(tmp_path / "shard.tar", members)
    with open(tar, "rb") as stream:
        ours = [
            (s.key, sorted(key_and_field(m.name)[1].lower() for m in s.images))
            for s in iter_samples(stream, None, 1 << 20)
        ]
    with open(tar, "rb") as stream:
        expanded = wds.tar_file_expander([{"url": str(tar), "stream": stream}])
        theirs = [(s["__key__"], sorted(k for k in s if not k.startswith("__"))) for s in wds.group_by_keys(expanded)]
    assert ours == theirs
    assert ours[0] == ("train/a.b/0001", ["jpg", "seg.png", "txt"])


def test_every_image_member_is_probed_with_its_caption_metadata_and_member_uri(tmp_path) -> None:
    tar = write_tar(tmp_path / "shard.tar", webdataset_members(3))
    rows = probe_tar(tar)
    assert [r["source_uri"] for r in rows] == [f"{tar}#{i:05d}.jpg" for i in range(3)]
    assert all(r["reason"] is None and (r["width"], r["height"]) == (48, 32) for r in rows)
    assert rows[1]["caption"] == "a photo number 1 of a red car on a street"
    assert json.loads(rows[1]["metadata"]) == {"key": "00001", "url": "https://example.com/00001.jpg"}
    assert rows[0]["object_size"] == tar.stat().st_size and rows[0]["mtime_ns"] == tar.stat().st_mtime_ns


def test_a_corrupt_member_is_quarantined_and_the_rest_of_the_shard_goes_on(tmp_path) -> None:
    members = webdataset_members(3)
    members[3] = ("00001.jpg", jpeg_bytes(200, 150, seed=2)[:700])  # a truncated JPEG
    rows = probe_tar(write_tar(tmp_path / "shard.tar", members))
    reasons = {r["source_uri"].rsplit("#", 1)[1]: r["reason"] for r in rows}
    assert reasons == {"00000.jpg": None, "00001.jpg": "truncated", "00002.jpg": None}


def test_an_empty_caption_is_no_caption(tmp_path) -> None:
    members = webdataset_members(2)
    members[1] = ("00000.txt", b"  \n")
    rows = probe_tar(write_tar(tmp_path / "shard.tar", members))
    assert [r["caption"] for r in rows] == [None, "a photo number 1 of a red car on a street"]


def test_a_member_over_max_bytes_is_quarantined_without_being_read(tmp_path) -> None:
    big = png_bytes(200, 200, seed=3)
    tar = write_tar(tmp_path / "shard.tar", [("a.png", big), ("b.jpg", jpeg_bytes(10, 10))])
    rows = probe_tar(tar, max_bytes=len(big) - 1)
    assert [(r["source_uri"].rsplit("#")[1], r["reason"]) for r in rows] == [("a.png", "too_large"), ("b.jpg", None)]


def test_a_truncated_tar_keeps_the_members_before_the_break(tmp_path) -> None:
    tar = write_tar(tmp_path / "shard.tar", webdataset_members(3))
    data = tar.read_bytes()
    cut = data.index(b"00002.jpg") + 700  # inside the third sample's image
    tar.write_bytes(data[:cut])
    rows = probe_tar(tar)
    assert [r["reason"] for r in rows] == [None, None, "truncated"]
    assert rows[-1]["source_uri"] == str(tar) and "after 6 members" in rows[-1]["detail"]


def test_a_file_that_is_not_a_tar_is_quarantined_as_such(tmp_path) -> None:
    (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 100)
    (tmp_path / "empty.tar").write_bytes(b"")
    assert [r["reason"] for r in probe_tar(tmp_path / "x.tar")] == ["not_a_tar"]
    assert [r["reason"] for r in probe_tar(tmp_path / "empty.tar")] == ["empty"]


def test_locators_read_each_member_back_exactly(tmp_path) -> None:
    members = webdataset_members(4)
    tar = write_tar(tmp_path / "shard.tar", members)
    probed = [probed_from_row(r) for r in probe_tar(tar)]
    found = read_images([p.source_uri for p in probed], [p.locator for p in probed])
    assert found == [data for name, data in members if name.endswith(".jpg")]
    version = f"{tar.stat().st_size}:{tar.stat().st_mtime_ns}"
    assert probed[0].locator == Locator(str(tar), offset=512, length=len(members[0][1]), version=version)


def test_a_member_is_read_by_its_source_uri_without_a_locator(tmp_path) -> None:
    members = webdataset_members(2)
    tar = write_tar(tmp_path / "shard.tar", members)
    assert read_source(f"{tar}#00001.jpg") == members[3][1]


def test_a_changed_shard_is_rescanned_for_a_member(tmp_path) -> None:
    tar = write_tar(tmp_path / "shard.tar", webdataset_members(2))
    read_source(f"{tar}#00001.jpg")
    replaced = [("00001.jpg", jpeg_bytes(20, 20, seed=77))]
    write_tar(tar, replaced)
    assert read_source(f"{tar}#00001.jpg") == replaced[0][1]


def test_identical_images_in_a_shard_are_annotated_once_with_every_caption(tmp_path) -> None:
    same = jpeg_bytes(30, 30, seed=4)
    members = [("a.jpg", same), ("a.txt", b"first caption"), ("b.jpg", same), ("b.txt", b"second caption")]
    probed = [probed_from_row(r) for r in probe_tar(write_tar(tmp_path / "s.tar", members))]
    work, quarantined = plan_work(probed)
    assert not quarantined and len(work) == 1
    assert work[0].captions == ("first caption", "second caption")
    assert work[0].image_id == hashlib.sha256(same).hexdigest()


def test_a_member_name_that_is_not_utf8_is_percent_encoded_and_read_back(tmp_path) -> None:
    data = jpeg_bytes(16, 16, seed=8)
    tar = write_tar(tmp_path / "s.tar", [(b"caf\xe9.jpg".decode("utf-8", "surrogateescape"), data)])
    (row,) = probe_tar(tar)
    assert row["source_uri"] == f"{tar}#caf%E9.jpg" and row["reason"] is None
    assert read_source(row["source_uri"]) == data

"""Which images of the previous version a run may remove: only those it positively found gone."""

from __future__ import annotations

import pyarrow as pa

from engine.refresh.scope import InputScope, input_scope, kept_out_of_scope
from engine.refresh.tombstones import PREVIOUS_IMAGES


def test_a_path_under_a_listed_folder_or_container_is_vouched_gone() -> None:
    scope = InputScope(("/data/a", "s3://bucket/shards/00001.tar"))
    assert scope.vouches_gone("/data/a/x.jpg") and scope.vouches_gone("/data/a/sub/y.png")
    assert scope.vouches_gone("s3://bucket/shards/00001.tar#k/1.jpg")
    assert not scope.vouches_gone("/data/ab/x.jpg")  # a sibling folder sharing the prefix
    assert not scope.vouches_gone("/data/b/x.jpg") and not scope.vouches_gone("s3://bucket/shards/00002.tar#1.jpg")


def test_deferred_files_are_never_vouched_gone_and_prune_vouches_for_the_rest() -> None:
    scope = InputScope(("/data/a",), deferred=pa.array(["/data/a/later.jpg"]), everything=True)
    assert not scope.vouches_gone("/data/a/later.jpg")
    assert scope.vouches_gone("/elsewhere/x.jpg")


def test_list_inputs_vouch_for_nothing(tmp_path) -> None:
    listing = tmp_path / "files.txt"
    listing.write_text("x.jpg\n")
    folder = tmp_path / "imgs"
    folder.mkdir()
    scope = input_scope([str(listing), str(folder) + "/"])
    assert scope.roots == (str(folder),)
    assert not scope.vouches_gone(str(tmp_path / "x.jpg"))


def test_kept_images_are_those_neither_seen_nor_vouched_gone() -> None:
    previous = {
        "seen_path": ["/a/1.jpg"],
        "seen_content": ["/a/old-name.jpg"],
        "gone": ["/a/2.jpg"],
        "elsewhere": ["/b/3.jpg"],
        "half_gone": ["/a/4.jpg", "/b/4.jpg"],
    }
    table = pa.Table.from_pylist([{"image_id": i, "source_uris": u} for i, u in previous.items()], PREVIOUS_IMAGES)
    scope = InputScope(("/a",))
    kept = kept_out_of_scope(table, pa.array(["/a/1.jpg"]), pa.array(["seen_content"]), scope)
    assert kept.to_pylist() == ["elsewhere", "half_gone"]


def test_vouches_gone_for_many_paths_matches_one_at_a_time() -> None:
    scope = InputScope(("/data/a", "s3://b/s.tar"), deferred=pa.array(["/data/a/later.jpg"]))
    uris = ["/data/a/x.jpg", "/data/a", "/data/ab/x.jpg", "/data/a/later.jpg", "s3://b/s.tar#k/1.jpg", "/z.jpg"]
    assert scope.vouches_gone_all(pa.array(uris)).tolist() == [True, True, False, False, True, False]
    assert [scope.vouches_gone(u) for u in uris] == [True, True, False, False, True, False]

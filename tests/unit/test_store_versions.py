"""Version numbers: published with a conditional create, never given twice, a deleted file survived."""

from __future__ import annotations

import pytest

from engine.errors import OutputError
from engine.store.manifest import list_versions, publish, read_manifest, restore_missing_version, version_path
from tests.support.store_datasets import next_manifest, publish_next, same_size_records, write_shards


@pytest.fixture
def two_versions(tmp_path):
    root = tmp_path / "ds"
    publish_next(root, "run-1", write_shards(root, "part-run-1", same_size_records("a")))
    publish_next(root, "run-2", write_shards(root, "part-run-2", same_size_records("ab")))
    return root


def test_a_deleted_latest_version_file_is_still_read_from_manifest_json(two_versions) -> None:
    (two_versions / "versions" / "v000002.json").unlink()
    with pytest.warns(UserWarning, match=r"versions/v000002\.json is missing; version 2 is read from manifest\.json"):
        latest = read_manifest(two_versions)
    assert (latest.version, latest.run_id) == (2, "run-2")


def test_version_numbers_never_repeat_after_the_latest_version_file_is_deleted(two_versions) -> None:
    (two_versions / "versions" / "v000002.json").unlink()
    with pytest.warns(UserWarning, match="missing"):
        third = publish_next(two_versions, "run-3", write_shards(two_versions, "part-run-3", same_size_records("c")))
    assert (third.version, third.parent) == (3, 2)
    assert list_versions(two_versions) == [1, 3]


def test_the_next_writer_restores_a_deleted_version_file(two_versions) -> None:
    kept = (two_versions / "versions" / "v000002.json").read_bytes()
    (two_versions / "versions" / "v000002.json").unlink()
    with pytest.warns(UserWarning, match=r"restored the deleted versions/v000002\.json from manifest\.json"):
        assert restore_missing_version(two_versions) == 2
    assert version_path(two_versions, 2).read_bytes() == kept
    assert restore_missing_version(two_versions) is None


def test_publishing_a_number_another_writer_took_is_refused(two_versions) -> None:
    mine, theirs = next_manifest(two_versions, "mine", []), next_manifest(two_versions, "theirs", [])
    assert mine.version == theirs.version == 3
    publish(two_versions, theirs)
    with pytest.raises(OutputError, match="version 3 was published by another writer meanwhile"):
        publish(two_versions, mine)
    assert read_manifest(two_versions, 3).run_id == read_manifest(two_versions).run_id == "theirs"


def test_an_unreadable_manifest_json_is_ignored_when_version_files_exist(two_versions) -> None:
    (two_versions / "manifest.json").write_text("{torn")
    with pytest.warns(UserWarning, match=r"manifest\.json: unreadable manifest .*; ignored, the versions/ files"):
        assert read_manifest(two_versions).version == 2

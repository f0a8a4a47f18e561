"""Every file a manifest lists carries its size and SHA-256: a replaced shard is caught, named."""

from __future__ import annotations

import hashlib

import pytest

from engine.errors import OutputError
from engine.store.integrity import file_problems
from engine.store.manifest import require_manifest
from engine.store.reader import read_version
from tests.support.store_datasets import publish_next, same_size_records, write_shards
from tests.support.unprivileged import run


@pytest.fixture
def dataset(tmp_path):
    """Three one-row shards of equal size: a, b and c."""
    root = tmp_path / "ds"
    publish_next(root, "run-1", write_shards(root, "part-run-1", same_size_records("abc")))
    return root


def test_each_shard_records_its_size_and_sha256(dataset) -> None:
    for shard in require_manifest(dataset).shards:
        data = (dataset / shard.path).read_bytes()
        assert (shard.bytes, shard.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def _swap(root, source: int, target: int) -> str:
    shards = require_manifest(root).shards
    (root / shards[target].path).write_bytes((root / shards[source].path).read_bytes())
    return shards[target].path


def test_a_shard_swapped_for_a_valid_one_of_the_same_size_is_caught_only_by_its_checksum(dataset) -> None:
    swapped = _swap(dataset, 0, 1)
    shards = require_manifest(dataset).shards
    assert file_problems(dataset, shards) == []  # same size, same row count: only the checksum tells
    (problem,) = file_problems(dataset, shards, checksums=True)
    assert problem.startswith(f"shard {swapped} does not match the manifest's checksum")


def test_inspect_verify_names_a_swapped_shard_in_one_line(dataset) -> None:
    swapped = _swap(dataset, 0, 1)
    assert run(["inspect", str(dataset), "--no-stats"])[0] == 0
    code, err = run(["inspect", str(dataset), "--no-stats", "--verify"])
    assert code == 2 and err.count("\n") == 1
    assert f"shard {swapped} does not match the manifest's checksum" in err


def test_an_export_refuses_a_swapped_shard_before_writing_anything(dataset, tmp_path) -> None:
    swapped = _swap(dataset, 2, 0)
    code, err = run(["export", str(dataset), "--format", "coco", "--to", str(tmp_path / "coco")])
    assert code == 2 and err.count("\n") == 1
    assert f"shard {swapped} does not match the manifest's checksum" in err
    assert not (tmp_path / "coco").exists()


def test_a_shard_of_another_size_is_caught_by_every_reader(dataset, tmp_path) -> None:
    shards = require_manifest(dataset).shards
    other = write_shards(tmp_path / "other", "part-x", same_size_records("d") * 3)
    (dataset / shards[1].path).write_bytes((tmp_path / "other" / other[0].path).read_bytes() + b"\0")
    with pytest.raises(OutputError, match=f"shard {shards[1].path} is unreadable: it has .* bytes, the manifest says"):
        read_version(dataset)


def test_inspect_verify_checks_sizes_and_rows_of_files_listed_without_a_checksum(dataset, capsys) -> None:
    manifest_file = dataset / "manifest.json"
    version_file = dataset / "versions" / "v000001.json"
    for path in (manifest_file, version_file):
        text = path.read_text()
        for shard in require_manifest(dataset).shards:
            text = text.replace(f'"sha256": "{shard.sha256}"', '"sha256": ""')
        path.write_text(text)
    assert run(["inspect", str(dataset), "--no-stats", "--verify"])[0] == 0

"""``fld-engine diff`` shows the source path next to each image id, the first few with a count of the rest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.cli import main as cli
from engine.commands.diff import SHOWN_IDS
from schemas.records import ImageRecord, Provenance, Region
from tests.support.audit_dataset import build_records, publish_records, write_image

DETR = Provenance("detr", "tiny-detr", 0)


def new_record(folder: Path, index: int) -> ImageRecord:
    path = write_image(folder, f"new_{index}.png", 40, 30, [(index, 2, index + 10, 20)])
    return ImageRecord(hashlib.sha256(path.read_bytes()).hexdigest(), str(path), width=40, height=30, format="png")


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """v1: street, sign, bare. v2: street re-annotated, sign and bare removed, 7 new images."""
    base = tmp_path_factory.mktemp("diff")
    street, sign, bare = build_records(base / "images")
    root = base / "dataset"
    publish_records(root, [street, sign, bare])
    changed = ImageRecord.from_row(street.to_row())
    changed.regions = [*changed.regions, Region("object", (1, 1, 9, 9), "cat", DETR, score=0.5)]
    added = [new_record(base / "images", i) for i in range(SHOWN_IDS + 2)]
    publish_records(root, [changed, *added], version=2)
    return root, {"street": street, "sign": sign, "bare": bare, "added": added}


def test_removed_and_reannotated_images_are_listed_with_their_source_paths(two_versions, capsys) -> None:
    root, records = two_versions
    assert cli(["diff", str(root), "--from", "1", "--to", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    removed = lines.index("  removed             2")
    assert sorted(lines[removed + 1 : removed + 3]) == sorted(
        f"      {records[name].image_id[:12]}  {records[name].source_uri}" for name in ("sign", "bare")
    )
    reannotated = lines.index("  re-annotated        1")
    street = records["street"]
    assert lines[reannotated + 1] == f"      {street.image_id[:12]}  {street.source_uri}"


def test_added_images_show_the_first_few_and_count_the_rest(two_versions, capsys) -> None:
    root, records = two_versions
    assert cli(["diff", str(root), "--from", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    added = lines.index(f"  added        {SHOWN_IDS + 2:>8}")
    by_id = {r.image_id[:12]: r.source_uri for r in records["added"]}
    shown = lines[added + 1 : added + 1 + SHOWN_IDS]
    assert all(by_id[line.split()[0]] == line.split()[1] for line in shown)
    assert [line.split()[0] for line in shown] == sorted(by_id)[:SHOWN_IDS]
    assert lines[added + 1 + SHOWN_IDS] == "      ... and 2 more (--ids lists all)"


def test_ids_lists_every_image_with_its_path(two_versions, capsys) -> None:
    root, records = two_versions
    assert cli(["diff", str(root), "--from", "1", "--ids"]) == 0
    out = capsys.readouterr().out
    assert all(f"{r.image_id[:12]}  {r.source_uri}" in out for r in records["added"])
    assert "more (--ids lists all)" not in out

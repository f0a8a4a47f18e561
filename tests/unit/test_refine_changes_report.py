"""Refinement's in-place changes show in ``fld-engine diff``, the audit (text and HTML) and the manifest counts."""

from __future__ import annotations

import pytest

from engine.audit.dataset_audit import audit_version
from engine.audit.html_report import render_html
from engine.audit.text_summary import format_summary
from engine.cli import main as cli
from engine.store.manifest import require_manifest
from engine.store.version_diff import diff_versions
from refine.merge import MergeSettings, merge_round
from schemas.records import ImageRecord, Provenance, Region
from tests.support.audit_dataset import publish_records

IMPORTED = Provenance("import:coco", "file", 0)
MODEL = Provenance("refine", "round", 0)


def record(index: int) -> ImageRecord:
    regions = [
        Region("object", (10, 10, 100, 100), "dog", IMPORTED),
        Region("object", (120, 120, 180, 180), "cup", IMPORTED),
    ]
    return ImageRecord(f"{index:064x}", f"/data/{index}.jpg", 200, 200, "jpeg", regions=regions)


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """v1: two images as imported; v2: the same after two merge rounds (image 0: dog -> cat; both: cup moved)."""
    root = tmp_path_factory.mktemp("changes") / "dataset"
    before = [record(0), record(1)]
    publish_records(root, before)
    after = [ImageRecord.from_row(r.to_row()) for r in before]
    for round_ in (1, 2):
        for index, image in enumerate(after):
            label = "cat" if index == 0 else "dog"
            predicted = ImageRecord(image.image_id, image.source_uri, 200, 200, "jpeg")
            predicted.regions = [
                Region("object", (11, 10, 100, 100), label, MODEL, score=0.9),
                Region("object", (130, 120, 190, 180), "cup", MODEL, score=0.9),
            ]
            merge_round(image, predicted, {"object"}, round_, MergeSettings())
    publish_records(root, after, version=2)
    return root, after


def test_the_manifest_counts_changes_per_field(refined) -> None:
    root, after = refined
    expected = sum(len(r.changes) for r in after)
    counts = require_manifest(root, 2).counts["changes"]
    assert counts["total"] == expected and counts["text"] == 1 and counts["bbox"] >= 2
    assert "changes" not in require_manifest(root, 1).counts


def test_diff_lists_the_changes_new_in_the_newer_version(refined, capsys) -> None:
    root, after = refined
    result = diff_versions(root, require_manifest(root, 1), require_manifest(root, 2))
    assert sum(result.changes.values()) == sum(len(r.changes) for r in after) and result.changes["text"] == 1
    assert cli(["diff", str(root), "--from", "1", "--to", "2", "--ids"]) == 0
    out = capsys.readouterr().out
    relabel = next(line for line in out.splitlines() if " text of region " in line)
    assert relabel.strip().startswith(f"{0:012x}") and "round 2 text" in relabel and '"dog" -> "cat"' in relabel


def test_the_audit_counts_changes_per_field_and_round_with_examples(refined) -> None:
    root, after = refined
    result = audit_version(root, version=2)
    assert result.stats.changes[("text", 2)] == 1
    assert sum(result.stats.changes.values()) == sum(len(r.changes) for r in after)
    text = format_summary(result)
    assert "changes by refinement (field, round):" in text and "text round 2" in text
    html = render_html(result)
    assert "<h2>Changes by refinement</h2>" in html and "&quot;dog&quot;" in html and "&quot;cat&quot;" in html


def test_a_version_without_changes_says_so(refined) -> None:
    root, _ = refined
    assert "No annotation was changed in place." in render_html(audit_version(root, version=1))

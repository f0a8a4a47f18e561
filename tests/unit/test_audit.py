"""The audit: counts, drops with examples, agreement, paper measures, ground truth, review sample, HTML."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from engine.audit.agreement import greedy_match
from engine.audit.cer import character_error_rate, edit_distance
from engine.audit.dataset_audit import audit_version
from engine.audit.drawing import PHRASE_COLOURS, Palette
from engine.audit.html_report import highlighted_text, render_html
from engine.audit.review import choose_images, score_band, strata_of
from engine.cli import main as cli
from engine.exports.coco import export_coco
from engine.store.reader import iter_records
from schemas.boxes import iou_matrix
from tests.support.audit_dataset import build_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def audited(demo):
    return audit_version(demo.root, sample=3)


@pytest.fixture(scope="module")
def report_html(audited) -> str:
    return render_html(audited)


def test_counts_per_type_kind_source_and_round(audited) -> None:
    stats = audited.stats
    assert stats.images == 3
    assert stats.by_kind == {
        "text/brief": 3,
        "text/detailed": 1,
        "region/object": 5,
        "region/proposal": 1,
        "region/ocr_line": 1,
        "region/ocr_word": 1,
        "phrase/grounded_phrase": 2,
    }
    assert stats.by_source[("region", "detr")] == 4 and stats.by_source[("region", "florence2")] == 1
    assert stats.by_round[("region", 1)] == 1 and stats.by_round[("region", 0)] == 7
    assert stats.errors == {"detector": 1} and audited.quarantine == {"truncated": 1}


def test_drops_are_counted_per_rule_with_examples(audited) -> None:
    stats = audited.stats
    assert stats.drops == {"region_filter/min_score": 1, "nms/nms_iou": 1, "text_filter/excessive_objects": 1}
    example = stats.drop_examples["region_filter/min_score"].items[0]
    assert example.summary == "object 'it' at [70, 50, 72, 52] from detr"
    assert (example.value, example.threshold) == (0.05, 0.3)
    assert stats.drop_examples["nms/nms_iou"].items[0].by is not None
    assert stats.drop_thresholds["text_filter/excessive_objects"] == 5


def test_regions_and_phrases_per_image(audited) -> None:
    stats = audited.stats
    assert stats.regions_per_image == {5: 1, 3: 1, 0: 1}
    assert stats.mean_per_image(stats.phrases_per_image["brief"]) == pytest.approx(1.0)  # 2 phrases, 0 phrases


def test_agreement_between_specialists_and_with_the_refined_model(audited) -> None:
    pairs = audited.agreement.pairs
    detr_haar = pairs[("object", "detr", "haar")]
    # haar's car matches detr's kept car; the NMS-suppressed detr car counts as detr output but haar's box is used once.
    assert (detr_haar.boxes_a, detr_haar.boxes_b, detr_haar.matched, detr_haar.same_label) == (3, 1, 1, 1)
    refined = pairs[("object", "specialists (round 0)", "florence2 (round 1)")]
    assert refined.matched == 1 and refined.recall_b == 1.0 and refined.mean_iou > 0.9
    captions = audited.agreement.texts[("brief", "captioner", "florence2 (round 1)")]
    # {a, red, car, next, to, person, b} and {a, red, car, beside, person}: 4 shared of 8 words
    assert captions.images == 1 and captions.mean_jaccard == pytest.approx(4 / 8)


def test_iou_matching_is_greedy_and_one_to_one() -> None:
    import numpy as np

    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], dtype=float)
    ious = iou_matrix(a, b)
    assert ious[0, 0] == 1.0 and ious[0, 1] == pytest.approx(0.81)
    assert greedy_match(ious, 0.5) == [(0, 0, 1.0)]


def test_paper_measures_sit_beside_the_paper_values(audited) -> None:
    rows = {(r.column, r.measure): (r.ours, r.paper) for r in audited.paper.rows}
    assert rows[("brief", "avg tokens")] == (8.0, 7.95)
    assert rows[("brief", "grounded regions per text")] == (pytest.approx(2 / 3), 4.27)  # 2 boxes, 3 brief texts
    assert rows[("region-text", "regions per image")] == (pytest.approx(5 / 3), 5.42)  # objects; no OCR, proposal
    assert rows[("more_detailed", "avg tokens")] == (None, 70.53)
    assert "2 texts have no text-filter analysis" in audited.paper.note


def test_paper_measures_that_cannot_be_computed_are_listed_with_why(audited) -> None:
    (more,) = [line for line in audited.paper.missing if line.startswith("more_detailed:")]
    assert more.startswith("more_detailed: avg tokens, grounded regions per text, avg tokens per grounded region, ")
    assert more.endswith(": no more_detailed texts in this version")
    assert any("no phrase of a detailed text is grounded" in line for line in audited.paper.missing)
    assert "region-text: avg tokens per region text (brief): no region_caption, dense_caption regions with a text" in (
        audited.paper.missing
    )


def test_ground_truth_from_our_own_coco_export_scores_perfectly(demo, tmp_path) -> None:
    export_coco(iter_records(demo.root), tmp_path / "gt", ("object", "ocr_line"), val_fraction=0.0)
    truth = audit_version(demo.root, sample=0, ground_truth=tmp_path / "gt" / "instances_train.json").ground_truth
    assert truth.images_matched == 3 and truth.box_map == pytest.approx(1.0)
    assert truth.box_ap == pytest.approx({"car": 1.0, "person": 1.0, "sign": 1.0, "ocr_line": 1.0})
    assert (truth.objects, truth.objects_found, truth.cer) == (5, 5, 0.0)
    assert truth.mask_map is None and "5 of 6 detections have none" in truth.mask_note


def test_ground_truth_scores_missed_objects_and_misread_text(demo, tmp_path) -> None:
    gt = {
        "images": [{"id": 7, "file_name": "photos/street.png", "width": 96, "height": 64}],
        "categories": [{"id": 1, "name": "Car"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "text"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [8, 20, 40, 30], "area": 1200, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [0, 55, 8, 8], "area": 64, "iscrowd": 0},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [10, 5, 30, 8], "area": 240, "iscrowd": 0,
             "utf8_string": "EXIT"},
        ],
    }  # fmt: skip
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    truth = audit_version(demo.root, sample=0, ground_truth=path).ground_truth
    assert truth.images_matched == 1 and truth.box_ap["Car"] == pytest.approx(1.0) and truth.box_ap["dog"] == 0.0
    assert (truth.objects, truth.objects_found) == (2, 1)
    assert truth.cer == 1.0 and truth.text_references == 1  # street.png has no OCR: "EXIT" entirely missed
    assert truth.unscored_labels["person"] == 1


def test_character_error_rate() -> None:
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    assert character_error_rate([("OPEN", "OPEN"), ("EXIT", "EXT")]) == pytest.approx(1 / 8)


def test_review_sample_covers_strata_round_robin(demo) -> None:
    records = list(iter_records(demo.root))
    assert score_band(None) == "none" and score_band(0.29) == "<0.3" and score_band(0.95) == ">=0.9"
    assert score_band(0.72) == "0.7-0.9"
    assert "ocr/ocr_line/>=0.9" in strata_of(records[1]) and strata_of(records[2]) == {"unannotated"}
    chosen, candidates = choose_images(records, 2)
    assert len(candidates) == 11 and candidates["unannotated"] == [records[2].image_id]
    assert len(chosen) == 2 and len(set(chosen)) == 2
    assert choose_images(list(reversed(records)), 2)[0] == chosen  # order of the stream does not matter
    assert choose_images(records, 10)[0] and len(choose_images(records, 10)[0]) == 3


def test_review_command_writes_coco_with_images(demo, tmp_path, capsys) -> None:
    assert cli(["audit", str(demo.root), "--review", "2", "--to", str(tmp_path / "review")]) == 0
    data = json.loads((tmp_path / "review" / "instances.json").read_text())
    assert len(data["images"]) == 2 and all((tmp_path / "review" / i["file_name"]).is_file() for i in data["images"])
    assert "review export" in capsys.readouterr().out
    assert cli(["audit", str(demo.root), "--review", "2"]) == 2
    assert "--review needs --to DIR" in capsys.readouterr().err


def test_html_escapes_every_text_and_highlights_grounded_phrases(report_html, demo) -> None:
    assert "<script>" not in report_html and "OPEN &lt;script&gt;" in report_html
    assert "&lt;close&gt;" in report_html
    street = demo.records[0]
    marked = highlighted_text(street, street.texts[0].id, street.texts[0].text, Palette(PHRASE_COLOURS))
    assert re.sub(r"<mark[^>]*>", "[", marked).replace("</mark>", "]") == "[A red car] next to [a person] &lt;b&gt;."


def test_html_is_self_contained_with_decodable_embedded_pictures(report_html) -> None:
    assert not re.search(r"""(src|href)=["'](?!data:)""", report_html)
    pictures = re.findall(r'src="data:image/(?:png|jpeg);base64,([^"]+)"', report_html)
    assert len(pictures) >= 8 and report_html.count("data:image/jpeg") == 3  # plots, and 3 samples
    sizes = [Image.open(io.BytesIO(base64.b64decode(p))).size for p in pictures]
    assert all(w > 50 and h > 50 for w, h in sizes)
    for heading in ("Drops per filter rule", "Agreement", "Paper Table 2 / Table 3 measures", "Sample of 3 images"):
        assert heading in report_html


def test_audit_command_prints_summary_and_writes_report(demo, tmp_path, capsys) -> None:
    report = tmp_path / "report.html"
    assert cli(["audit", str(demo.root), "--html", str(report), "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "region/object" in out and "nms/nms_iou" in out and "quarantined: truncated=1" in out
    assert "avg tokens" in out and f"report: {report}" in out
    assert "Sample of 2 images" in report.read_text()
    assert cli(["audit", str(demo.root), "--ground-truth", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli(["audit", str(demo.root), "--version", "3"]) == 2
    assert "version 3 does not exist (versions: [1])" in capsys.readouterr().err


def test_missing_source_image_is_drawn_as_a_placeholder_with_a_note(demo, tmp_path) -> None:
    from engine.audit.html_report import sample_block

    record = demo.records[1]
    moved = type(record).from_row({**record.to_row(), "source_uris": [str(tmp_path / "gone.png")]})
    assert "source image missing or changed" in sample_block(moved, Palette(), Palette(PHRASE_COLOURS))


def test_report_of_the_empty_quarantine_and_no_drops(tmp_path) -> None:
    from tests.support.audit_dataset import build_records, publish_records

    records = build_records(tmp_path / "images")[2:]
    publish_records(tmp_path / "ds", records, quarantined=0)
    result = audit_version(tmp_path / "ds", sample=1)
    page = render_html(result)
    assert "No annotation was dropped." in page and result.quarantine == {}
    assert Path(tmp_path / "ds").is_dir()


def test_a_specialist_that_ran_and_found_nothing_counts_against_agreement() -> None:
    from engine.audit.agreement import AgreementCollector
    from schemas.records import ImageRecord, Provenance, Region

    detr, haar, ocr = Provenance("detr", "d"), Provenance("haar", "h"), Provenance("ocr", "o")
    both = ImageRecord("a" * 64, "a.png", 100, 100, "png", stages={"detr": "1", "haar": "1", "nms": "1"})
    both.regions = [Region("object", (0, 0, 50, 50), "face", detr), Region("object", (1, 1, 50, 50), "face", haar)]
    missed = ImageRecord("b" * 64, "b.png", 100, 100, "png", stages={"detr": "1", "haar": "1", "ocr": "1"})
    missed.regions = [Region("object", (10, 10, 60, 60), "face", detr), Region("ocr_line", (0, 0, 9, 9), "A", ocr)]
    collector = AgreementCollector()
    collector.add(both)
    collector.add(missed)
    assert set(collector.pairs) == {("object", "detr", "haar")}  # no nms, no ocr-vs-detector rows
    totals = collector.pairs[("object", "detr", "haar")]
    assert (totals.images, totals.boxes_a, totals.boxes_b, totals.matched) == (2, 2, 1, 1)
    assert totals.recall_a == 0.5 and totals.recall_b == 1.0


def test_reservoir_keeps_a_uniform_deterministic_sample() -> None:
    from engine.audit.reservoir import Reservoir

    def sample(seed: int) -> list[int]:
        reservoir: Reservoir[int] = Reservoir(10, seed=seed)
        for item in range(1000):
            reservoir.add(item)
        assert reservoir.seen == 1000 and len(reservoir.items) == 10
        return reservoir.items

    assert sample(1) == sample(1) and sample(1) != sample(2)
    kept = [item for seed in range(200) for item in sample(seed)]
    assert 450 < sum(kept) / len(kept) < 550  # uniform over 0..999, not the first items
    assert sum(item < 100 for item in kept) / len(kept) < 0.15


def test_report_numbers_keep_small_thresholds_visible() -> None:
    from engine.audit.html_report import number

    assert number(0.0001) == "0.0001" and number(0.5) == "0.500" and number(0.0) == "0.000" and number(None) == "–"

"""A round's model re-annotates blank copies of the records, its predictions are filtered, then merged."""

from __future__ import annotations

import numpy as np
import pytest

from refine.merge import MergeSettings
from refine.reannotate import AnnotateSettings, RoundAnnotator, annotation_tasks, merged_kinds
from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.stage import Resources

P = Provenance("haar", "opencv", 0)


def records() -> list[ImageRecord]:
    out = []
    for i in range(2):
        r = ImageRecord(f"{i:064x}", f"im{i}.png", 64, 48, "png")
        r.texts = [Text("brief", "a red car", P)]
        r.regions = [Region("object", (4, 4, 40, 30), "car", P), Region("ocr_line", (1, 1, 20, 8), "EXIT", P)]
        out.append(r)
    return out


class DropEveryRegion:
    """A filter that drops every region it sees and remembers which records it was given."""

    name, resources, needs_pixels = "drop_all", Resources(), False

    def __init__(self) -> None:
        self.seen: list[ImageRecord] = []

    def fingerprint(self) -> str:
        return "drop_all"

    def setup(self) -> None:
        pass

    def process(self, records: list[ImageRecord], images: object) -> None:
        self.seen.extend(records)
        for record in records:
            for region in list(record.regions):
                record.drop(region, stage=self.name, rule="test")


def test_only_tasks_with_a_merge_target_re_annotate() -> None:
    assert annotation_tasks(["<OCR>", "<OD>", "<REGION_TO_SEGMENTATION>", "<CAPTION>"]) == ("<CAPTION>", "<OD>")
    assert merged_kinds(["<OD>", "<OCR_WITH_REGION>", "<CAPTION>"]) == {"object", "ocr_line"}
    with pytest.raises(ValueError, match="none of the tasks"):
        RoundAnnotator("unused", 1, ["<OCR>"])


def test_predictions_are_fresh_filtered_records_with_the_round(tiny_florence2_dir) -> None:
    dropper = DropEveryRegion()
    annotator = RoundAnnotator(
        str(tiny_florence2_dir), 2, ["<CAPTION>", "<OD>"], [dropper], AnnotateSettings(max_new_tokens=8, num_beams=1)
    )
    annotator.setup()
    originals = records()
    images = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    predictions = annotator.predict(originals, images)
    assert [p.image_id for p in predictions] == [r.image_id for r in originals]
    assert dropper.seen == predictions and all(not p.regions for p in predictions)
    assert all(a.provenance.round == 2 and a.provenance.source == "refine" for p in predictions for a in p.texts)
    assert [len(r.regions) for r in originals] == [2, 2]  # predicting leaves the records alone
    stats = annotator.refine(originals, images, MergeSettings(drop_after_disagreements=1, add_unscored=False))
    # Every predicted box was filtered away: nothing added, and no verdict on the car box (the model, as
    # filtered, said nothing about objects). The OCR line is not a kind the tasks produce: untouched.
    for record, result in zip(originals, stats, strict=True):
        assert [r.text for r in record.regions if r.kind == "ocr_line"] == ["EXIT"]
        (car,) = [r for r in record.regions if r.text == "car"]
        assert car.metrics == {} and not record.dropped and result.unverified == {"object": 1}
        assert not [r for r in record.regions if r.provenance.source == "refine"]

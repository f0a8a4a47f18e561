"""Florence-2 training targets parse back through the real processor to the same geometry, within one bin."""

from __future__ import annotations

import pytest
from transformers import Florence2Processor

from refine.targets import florence_samples
from schemas.florence_tasks import TRAINING_TASKS as TASKS
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text

P = Provenance("test", "m", 0)
W, H = 640, 480


def record() -> ImageRecord:
    brief = Text("brief", "A woman rides a red bicycle", P)
    r = ImageRecord("c" * 64, "x", W, H, "jpeg")
    r.texts = [
        brief,
        Text("detailed", "A woman in a coat rides a red bicycle down a street.", P),
        Text("more_detailed", "Long.", P),
    ]
    r.regions = [
        Region("object", (10, 20, 300, 400), "woman", P, polygon=(10, 20, 300, 20, 300, 400, 10, 400)),
        Region("object", (320.5, 100.25, 630, 470), "bicycle", P),
        Region("proposal", (0, 0, 639, 479), "", P),
        Region("dense_caption", (320, 100, 630, 470), "a red bicycle", P),
        Region("ocr_line", (50, 60, 200, 90), "EXIT", P, quad=(50, 60, 200, 62, 199, 90, 51, 88)),
        Region("ocr_line", (50, 100, 200, 130), "OPEN", P),
        Region("region_caption", (10, 20, 300, 400), "a woman in a coat", P),
    ]
    r.phrases = [
        Phrase(brief.id, 0, 7, "A woman", [GroundedRegion((10, 20, 300, 400))], P),
        Phrase(
            brief.id, 14, 27, "a red bicycle", [GroundedRegion((320, 100, 630, 470)), GroundedRegion((1, 2, 50, 60))], P
        ),
    ]
    return r


@pytest.fixture(scope="module")
def processor(tiny_florence2_dir) -> Florence2Processor:
    return Florence2Processor.from_pretrained(tiny_florence2_dir)


def close(a, b) -> bool:
    tolerance = [max(W / 1000, 1.0), max(H / 1000, 1.0)] * (len(a) // 2)
    return len(a) == len(b) and all(abs(x - y) <= t for x, y, t in zip(a, b, tolerance, strict=True))


def parse(processor, sample):
    return processor.post_process_generation(sample.target, task=sample.task, image_size=(W, H))[sample.task]


def test_every_task_yields_samples() -> None:
    assert {s.task for s in florence_samples(record())} == set(TASKS)


def test_od_and_dense_captions_round_trip(processor) -> None:
    samples = {s.task: s for s in florence_samples(record())}
    od = parse(processor, samples["<OD>"])
    assert od["labels"] == ["woman", "bicycle"]
    assert close(od["bboxes"][0], (10, 20, 300, 400)) and close(od["bboxes"][1], (320.5, 100.25, 630, 470))
    dense = parse(processor, samples["<DENSE_REGION_CAPTION>"])
    assert dense["labels"] == ["a red bicycle"] and close(dense["bboxes"][0], (320, 100, 630, 470))
    proposals = parse(processor, samples["<REGION_PROPOSAL>"])
    assert len(proposals["bboxes"]) == 1 and close(proposals["bboxes"][0], (0, 0, 639, 479))


def test_ocr_tasks_round_trip(processor) -> None:
    samples = {s.task: s for s in florence_samples(record())}
    assert parse(processor, samples["<OCR>"]) == "EXIT\nOPEN"
    ocr = parse(processor, samples["<OCR_WITH_REGION>"])
    assert ocr["labels"] == ["EXIT", "OPEN"]
    assert close(ocr["quad_boxes"][0], (50, 60, 200, 62, 199, 90, 51, 88))
    assert close(ocr["quad_boxes"][1], (50, 100, 200, 100, 200, 130, 50, 130))


def test_phrase_grounding_round_trips_with_the_caption_as_input(processor) -> None:
    (sample,) = [s for s in florence_samples(record()) if s.task == "<CAPTION_TO_PHRASE_GROUNDING>"]
    assert sample.prefix == "<CAPTION_TO_PHRASE_GROUNDING>A woman rides a red bicycle"
    parsed = parse(processor, sample)
    assert parsed["labels"] == ["A woman", "a red bicycle", "a red bicycle"]
    assert close(parsed["bboxes"][2], (1, 2, 50, 60))


def test_captions_segmentation_and_region_descriptions_round_trip(processor) -> None:
    samples = {s.task: s for s in florence_samples(record())}
    assert parse(processor, samples["<CAPTION>"]) == "A woman rides a red bicycle"
    assert parse(processor, samples["<MORE_DETAILED_CAPTION>"]) == "Long."
    segmentation = samples["<REGION_TO_SEGMENTATION>"]
    assert segmentation.prefix == "<REGION_TO_SEGMENTATION><loc_15><loc_41><loc_468><loc_833>"
    assert close(parse(processor, segmentation)["polygons"][0][0], (10, 20, 300, 20, 300, 400, 10, 400))
    description = samples["<REGION_TO_DESCRIPTION>"]
    assert parse(processor, description) == "a woman in a coat"


def test_unknown_task_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown Florence-2 task '<NOPE>'"):
        florence_samples(record(), ["<NOPE>"])

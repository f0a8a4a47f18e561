"""Florence-2 training targets parse back through the real processor to the same geometry, within one bin."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import Florence2Processor

from refine.targets import MIN_VERTICES, POLYGON_VERTICES, ascii_label, florence_samples
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
            brief.id,
            14,
            27,
            "a red bicycle",
            [
                GroundedRegion((320, 100, 630, 470), polygon=(320, 100, 630, 100, 630, 470, 320, 470)),
                GroundedRegion((1, 2, 50, 60), polygon=(1, 2, 50, 2, 25, 60)),
            ],
            P,
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
    # Florence-2's dense captions, then CLIP's region captions.
    assert dense["labels"] == ["a red bicycle", "a woman in a coat"] and close(dense["bboxes"][0], (320, 100, 630, 470))
    assert close(dense["bboxes"][1], (10, 20, 300, 400))
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


def samples_of(task: str, r: ImageRecord | None = None) -> list:
    return [s for s in florence_samples(r or record(), [task])]


def test_referring_expression_segmentation_takes_the_phrase_and_parses_to_its_polygons(processor) -> None:
    (sample,) = samples_of("<REFERRING_EXPRESSION_SEGMENTATION>")
    assert sample.prefix == "<REFERRING_EXPRESSION_SEGMENTATION>a red bicycle"
    (polygons,) = parse(processor, sample)["polygons"]  # one referred object, its regions' polygons
    assert len(polygons) == 2
    assert close(polygons[0], (320, 100, 630, 100, 630, 470, 320, 470)) and close(polygons[1], (1, 2, 50, 2, 25, 60))


def test_region_to_category_and_region_to_ocr_take_a_box_and_give_its_text(processor) -> None:
    categories = samples_of("<REGION_TO_CATEGORY>")
    assert [(s.prefix, parse(processor, s)) for s in categories] == [
        ("<REGION_TO_CATEGORY><loc_15><loc_41><loc_468><loc_833>", "woman"),
        ("<REGION_TO_CATEGORY><loc_500><loc_208><loc_984><loc_979>", "bicycle"),
    ]
    lines = samples_of("<REGION_TO_OCR>")
    assert [(s.prefix, parse(processor, s)) for s in lines] == [
        ("<REGION_TO_OCR><loc_78><loc_125><loc_312><loc_187>", "EXIT"),
        ("<REGION_TO_OCR><loc_78><loc_208><loc_312><loc_270>", "OPEN"),
    ]


def test_open_vocabulary_detection_takes_a_label_and_parses_to_all_its_boxes(processor) -> None:
    r = record()
    r.regions.append(Region("object", (400, 10, 500, 90), "bicycle", P))
    samples = {s.prefix: s for s in samples_of("<OPEN_VOCABULARY_DETECTION>", r)}
    assert sorted(samples) == ["<OPEN_VOCABULARY_DETECTION>bicycle", "<OPEN_VOCABULARY_DETECTION>woman"]
    parsed = parse(processor, samples["<OPEN_VOCABULARY_DETECTION>bicycle"])
    assert parsed["bboxes_labels"] == ["bicycle", "bicycle"] and parsed["polygons"] == []
    assert close(parsed["bboxes"][0], (320.5, 100.25, 630, 470)) and close(parsed["bboxes"][1], (400, 10, 500, 90))


def test_every_text_of_a_granularity_is_a_caption_sample(processor) -> None:
    r = record()
    r.texts.append(Text("detailed", "A cyclist in a dark coat on a city street.", Provenance("aggregator", "qwen", 0)))
    samples = samples_of("<DETAILED_CAPTION>", r)
    assert [parse(processor, s) for s in samples] == [
        "A woman in a coat rides a red bicycle down a street.",
        "A cyclist in a dark coat on a city street.",
    ]


def test_a_long_polygon_is_simplified_to_the_vertex_budget_and_still_parses(processor) -> None:
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    circle = np.stack([320 + 200 * np.cos(angles), 240 + 200 * np.sin(angles)], axis=1).reshape(-1)
    r = record()
    r.regions = [Region("object", (120, 40, 520, 440), "ball", P, polygon=tuple(circle))]
    (sample,) = samples_of("<REGION_TO_SEGMENTATION>", r)
    assert sample.target.count("<loc_") <= 2 * POLYGON_VERTICES
    (polygons,) = parse(processor, sample)["polygons"]
    vertices = np.asarray(polygons[0]).reshape(-1, 2)
    assert MIN_VERTICES <= len(vertices) <= POLYGON_VERTICES
    # Every kept vertex lies on the circle (within the tolerance and a bin).
    assert np.abs(np.hypot(vertices[:, 0] - 320, vertices[:, 1] - 240) - 200).max() < 4


def test_an_od_region_without_a_label_is_left_out_instead_of_joining_the_label_before(processor) -> None:
    r = record()
    r.regions = [Region("object", (10, 20, 300, 400), "woman", P), Region("object", (320, 100, 630, 470), " ", P)]
    (sample,) = samples_of("<OD>", r)
    parsed = parse(processor, sample)
    assert parsed["labels"] == ["woman"] and len(parsed["bboxes"]) == 1


def test_non_ascii_labels_are_written_as_ascii_the_processor_reads_back(processor) -> None:
    r = record()
    r.regions = [
        Region("object", (10, 20, 300, 400), "café table", P),
        Region("object", (320, 100, 630, 470), "猫", P),  # no ASCII form: left out
        Region("object", (1, 2, 50, 60), "crème brûlée", P),
    ]
    (sample,) = samples_of("<OD>", r)
    parsed = parse(processor, sample)
    assert parsed["labels"] == ["cafe table", "creme brulee"]
    assert close(parsed["bboxes"][1], (1, 2, 50, 60))
    assert ascii_label("Straße <b>") == "Strae b"  # ß has no decomposition; markup brackets become spaces

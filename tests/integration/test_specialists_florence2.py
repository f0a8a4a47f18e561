"""Florence-2 specialist: the real loading path on a tiny random-init checkpoint, and output parsing."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.florence2 import Florence2, Florence2Options
from specialists.florence_parsing import location_prompt, parse_florence_output

PROV = Provenance("florence2", "tiny@sha256:0", 0)


def test_od_answer_becomes_object_regions_clipped_to_the_image() -> None:
    parsed = {"bboxes": [[10.5, 20.5, 300.5, 400.5], [50, 60, 700, 90], [5, 5, 5, 9]], "labels": ["car", "sign", "dot"]}
    regions = parse_florence_output("<OD>", parsed, 640, 480, PROV)
    assert [(r.kind, r.text, r.bbox) for r in regions] == [
        ("object", "car", (10.5, 20.5, 300.5, 400.5)),
        ("object", "sign", (50, 60, 640, 90)),
    ]


def test_caption_tasks_become_texts_of_their_granularity() -> None:
    texts = [parse_florence_output(t, "A cat.</s>", 10, 10, PROV)[0] for t in ("<CAPTION>", "<MORE_DETAILED_CAPTION>")]
    assert [(t.granularity, t.text) for t in texts] == [("brief", "A cat."), ("more_detailed", "A cat.")]


def test_ocr_with_region_becomes_ocr_lines_with_quads() -> None:
    parsed = {"quad_boxes": [[10, 20, 300, 22, 298, 60, 12, 58]], "labels": ["</s>EXIT"]}
    (line,) = parse_florence_output("<OCR_WITH_REGION>", parsed, 640, 480, PROV)
    assert (line.kind, line.text, line.bbox, line.quad) == (
        "ocr_line",
        "EXIT",
        (10, 20, 300, 60),
        (10, 20, 300, 22, 298, 60, 12, 58),
    )


def test_phrase_grounding_groups_boxes_and_finds_character_spans() -> None:
    caption = Text("brief", "A woman rides a red bicycle", PROV)
    parsed = {
        "bboxes": [[1, 2, 30, 40], [50, 50, 90, 90], [60, 60, 95, 95]],
        "labels": ["A woman", "a red bicycle", "a red bicycle"],
    }
    phrases = parse_florence_output("<CAPTION_TO_PHRASE_GROUNDING>", parsed, 100, 100, PROV, caption=caption)
    assert [(p.phrase, p.start, p.end, len(p.regions)) for p in phrases] == [
        ("A woman", 0, 7, 1),
        ("a red bicycle", 14, 27, 2),
    ]
    record = ImageRecord("a" * 64, "x", 100, 100, "png", texts=[caption], phrases=phrases)  # type: ignore[arg-type]
    validate_record(record)


def test_region_description_keeps_the_input_box_and_location_prompt_quantizes() -> None:
    (region,) = parse_florence_output("<REGION_TO_DESCRIPTION>", "a red car", 640, 480, PROV, region=(64, 48, 320, 240))
    assert (region.kind, region.text, region.bbox) == ("region_caption", "a red car", (64, 48, 320, 240))
    assert location_prompt((64, 48, 320, 240), 640, 480) == "<loc_100><loc_100><loc_500><loc_500>"


def test_missing_weights_name_every_place_looked(tmp_path) -> None:
    specialist = Florence2("florence", Florence2Options(model="nobody/no-such-florence"))
    assert not specialist.check_weights().found
    with pytest.raises(WeightsNotFound, match=r"no-such-florence.*looked in .*models--nobody--no-such-florence"):
        specialist.setup()


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'<NOPE>' is not one of"):
        Florence2Options(tasks=("<NOPE>",))


@pytest.fixture(scope="module")
def florence(tiny_florence2_dir) -> Florence2:
    options = Florence2Options(model=str(tiny_florence2_dir), max_new_tokens=12, num_beams=1)
    specialist = Florence2("florence", options)
    specialist.setup()
    return specialist


def test_tiny_checkpoint_runs_every_task_and_rows_stay_schema_valid(florence) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)]
    records = [ImageRecord(f"{i}" * 64, f"mem://{i}", im.shape[1], im.shape[0], "png") for i, im in enumerate(images)]
    records[0].texts.append(Text("brief", "a cat on a sofa", PROV))
    records[0].regions.append(Region("object", (1, 1, 40, 30), "cat", PROV))
    florence.process(records, images)
    for record in records:
        validate_record(record)
        made = [a for a in record.texts + record.regions + record.phrases if a.provenance.source == "florence"]
        assert all(a.provenance.model == florence.model_id for a in made)
    assert florence.model_id.startswith(florence.options.model.rsplit("/", 1)[1] + "@sha256:")


def test_generate_is_batched_and_decodes_one_text_per_image(florence) -> None:
    from PIL import Image

    pictures = [Image.new("RGB", (32, 32)), Image.new("RGB", (50, 20))]
    texts = florence.generate(pictures, ["<OD>", "<CAPTION>"])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)

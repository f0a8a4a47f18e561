"""BLIP captioner: the real loading path on a tiny random-init checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import ImageRecord
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.caption_blip import ImageCaptioner, ImageCaptionOptions, strip_prompt


@pytest.fixture(scope="module")
def captioner(tmp_path_factory) -> ImageCaptioner:
    from tests.support.tiny_models.blip import build_tiny_blip

    directory = build_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))
    specialist = ImageCaptioner("blip", ImageCaptionOptions(model=str(directory), max_new_tokens=6, num_beams=1))
    specialist.setup()
    return specialist


def test_each_image_gets_one_brief_caption_with_provenance(captioner) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)]
    records = [ImageRecord(f"{i}" * 64, f"mem://{i}", im.shape[1], im.shape[0], "png") for i, im in enumerate(images)]
    captioner.process(records, images)
    for record in records:
        validate_record(record)
        (text,) = record.texts
        assert text.granularity == "brief" and text.text.strip() == text.text and text.text
        assert (text.provenance.source, text.provenance.model) == ("blip", captioner.model_id)
    assert captioner.model_id.startswith(captioner.options.model.rsplit("/", 1)[1] + "@sha256:")


def test_caption_batch_returns_one_string_per_picture(captioner) -> None:
    from PIL import Image

    assert (
        len(captioner.caption([Image.new("RGB", (20, 30)), Image.new("RGB", (64, 16)), Image.new("RGB", (8, 8))])) == 3
    )
    assert captioner.caption([]) == []


def test_conditional_prompt_is_removed_from_the_caption() -> None:
    assert strip_prompt("a picture of a dog on grass ", "a picture of") == "a dog on grass"
    assert strip_prompt("dog on grass", "a picture of") == "dog on grass"


def test_missing_weights_name_every_place_looked(tmp_path) -> None:
    specialist = ImageCaptioner("blip", ImageCaptionOptions(model=str(tmp_path / "absent")))
    assert not specialist.check_weights().found
    with pytest.raises(WeightsNotFound, match=r"blip \(blip\): weights for .*absent.* looked in .*absent"):
        specialist.setup()


def test_unknown_dtype_is_rejected_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"dtype: 'fp8' is not one of auto, float32, bfloat16, float16"):
        ImageCaptionOptions(dtype="fp8")

"""CLIP region text: candidates per object box, the best match written as a region_caption with its similarity."""

from __future__ import annotations

import numpy as np
import pytest

from filters.region_agreement import AgreementFilter, AgreementOptions
from schemas.metrics import CLIP_SIMILARITY
from schemas.records import ImageRecord, Provenance, Region
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.region_text_clip import ClipRegionText, ClipRegionTextOptions, candidate_texts, crop

DETECTOR = Provenance("detector", "tiny", 0)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, str]:
    from tests.support.tiny_models.blip import build_tiny_blip
    from tests.support.tiny_models.clip import build_tiny_clip

    return {
        "clip": str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))),
        "blip": str(build_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))),
    }


@pytest.fixture(scope="module")
def region_text(model_dirs) -> ClipRegionText:
    options = ClipRegionTextOptions(model=model_dirs["clip"], captioner=model_dirs["blip"], caption_max_new_tokens=6)
    specialist = ClipRegionText("region_text", options)
    specialist.setup()
    return specialist


def test_candidates_are_category_caption_and_noun_phrases_without_repeats() -> None:
    assert candidate_texts("Dog", "a dog on the grass", ["a dog", "the grass", "dog"]) == [
        "Dog",
        "a dog on the grass",
        "a dog",
        "the grass",
    ]
    assert candidate_texts(" ", "", []) == []


def test_crop_clips_the_box_to_the_image() -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    assert crop(image, (-5.0, 2.2, 12.5, 40.0)).shape == (18, 13, 3)


def test_each_large_enough_object_gets_one_region_caption_scored_by_similarity(region_text) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    record = ImageRecord("c" * 64, "mem://c", 64, 48, "png")
    record.regions += [
        Region("object", (2, 2, 30, 40), "cat", DETECTOR, score=0.9),
        Region("object", (30, 10, 60, 45), "sofa", DETECTOR, score=0.8),
        Region("object", (0, 0, 2, 2), "speck", DETECTOR, score=0.8),  # below min_side: skipped
        Region("proposal", (0, 0, 64, 48), "", DETECTOR),
    ]
    region_text.process([record], [image])
    validate_record(record)
    made = [r for r in record.regions if r.kind == "region_caption"]
    assert [r.bbox for r in made] == [(2.0, 2.0, 30.0, 40.0), (30.0, 10.0, 60.0, 45.0)]
    for region in made:
        assert -1.0 <= region.score <= 1.0 and region.metrics["clip_similarity"] == region.score
        assert region.metrics["candidates"] >= 1 and region.text
        assert region.provenance.model == region_text.model_id
    assert [r.text for r in record.regions if r.kind == "object"] == ["cat", "sofa", "speck"]


def test_chosen_text_has_the_highest_similarity_among_candidates(region_text) -> None:
    from PIL import Image

    crops = [Image.new("RGB", (16, 16), (200, 10, 10))]
    (scores,) = region_text.similarities(crops, [["cat", "a red bicycle", "dog"]])
    assert scores.shape == (3,) and np.all(np.abs(scores) <= 1.0 + 1e-5)
    record = ImageRecord(
        "d" * 64, "mem://d", 16, 16, "png", regions=[Region("object", (0, 0, 16, 16), "cat", DETECTOR)]
    )
    without_captioner = ClipRegionText("rt", ClipRegionTextOptions(model=region_text.options.model))
    without_captioner.process([record], [np.full((16, 16, 3), (200, 10, 10), dtype=np.uint8)])
    (made,) = [r for r in record.regions if r.kind == "region_caption"]
    assert made.text == "cat" and made.metrics["candidates"] == 1.0


def test_missing_captioner_weights_are_reported_with_where_they_were_looked_for(model_dirs, tmp_path) -> None:
    options = ClipRegionTextOptions(model=model_dirs["clip"], captioner=str(tmp_path / "no-blip"))
    check = ClipRegionText("rt", options).check_weights()
    assert not check.found and str(tmp_path / "no-blip") in check.looked_in
    assert model_dirs["clip"] in check.looked_in and "no-blip" in check.detail


def test_missing_clip_weights_raise_the_clear_error(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"rt \(clip_region_text\): weights for .*no-clip.* looked in"):
        ClipRegionText("rt", ClipRegionTextOptions(model=str(tmp_path / "no-clip"))).setup()


def test_agreement_filter_reads_the_similarity_clip_wrote(model_dirs) -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    record = ImageRecord("e" * 64, "mem://e", 64, 48, "png")
    record.regions += [
        Region("object", (2, 2, 30, 40), "cat", DETECTOR, score=0.9),
        Region("object", (30, 10, 60, 45), "a red sofa", DETECTOR, score=0.8),
    ]
    ClipRegionText("rt", ClipRegionTextOptions(model=model_dirs["clip"], noun_phrases=False)).process([record], [image])
    low, high = sorted((r for r in record.regions if r.kind == "region_caption"), key=lambda r: r.score)
    assert low.metrics[CLIP_SIMILARITY] < high.metrics[CLIP_SIMILARITY]
    threshold = (low.metrics[CLIP_SIMILARITY] + high.metrics[CLIP_SIMILARITY]) / 2
    AgreementFilter("agreement", AgreementOptions(min_score_by_kind={"region_caption": threshold})).process(
        [record], None
    )
    assert high in record.regions and low not in record.regions
    (drop,) = record.dropped
    assert (drop.rule, drop.value, drop.threshold) == (
        f"min_{CLIP_SIMILARITY}",
        pytest.approx(low.metrics[CLIP_SIMILARITY]),
        threshold,
    )
    assert drop.restore() == low

"""A representative's annotations carried onto a near-duplicate of another size."""

from __future__ import annotations

import numpy as np
import pytest

from engine.exports.near_duplicates import NearDuplicate, annotated_copy, with_near_duplicates
from schemas.masks import decode_mask, encode_mask
from schemas.records import GroundedRegion, ImageMeasures, ImageRecord, Phrase, Provenance, Region, Text

SOURCE = Provenance("haar", "cascade", 0)


def _record() -> ImageRecord:
    mask = np.zeros((100, 200), bool)
    mask[20:60, 40:120] = True
    region = Region("object", (40, 20, 120, 60), "face", SOURCE, quad=(40, 20, 120, 20, 120, 60, 40, 60))
    region.mask, region.polygon = encode_mask(mask), (40, 20, 120, 20, 120, 60)
    text = Text("brief", "a face", SOURCE)
    phrase = Phrase(text.id, 2, 6, "face", [GroundedRegion((40, 20, 120, 60), 0.9, encode_mask(mask))], SOURCE)
    return ImageRecord("REP", "/in/rep.jpg", 200, 100, "jpeg", texts=[text], regions=[region], phrases=[phrase])


def _copy(width: int, height: int) -> NearDuplicate:
    measures = ImageMeasures(width, height, width / height, 0, 0, 100.0, 100.0, 50.0, 0.1)
    return NearDuplicate("COPY", "/in/copy.jpg", ("/in/copy.jpg", "/in/copy_again.jpg"), measures)


def test_a_half_size_copy_gets_every_coordinate_halved_and_its_own_identity() -> None:
    copy = annotated_copy(_record(), _copy(100, 50))
    assert (copy.image_id, copy.source_uris, copy.width, copy.height) == (
        "COPY",
        ["/in/copy.jpg", "/in/copy_again.jpg"],
        100,
        50,
    )
    region = copy.regions[0]
    assert region.bbox == pytest.approx((20, 10, 60, 30))
    assert region.quad == pytest.approx((20, 10, 60, 10, 60, 30, 20, 30))
    assert region.polygon == pytest.approx((20, 10, 60, 10, 60, 30))
    assert region.mask.size == (50, 100) and decode_mask(region.mask).sum() == 40 * 20
    assert copy.phrases[0].regions[0].bbox == pytest.approx((20, 10, 60, 30))
    assert copy.texts[0].text == "a face"


def test_the_representative_is_left_unchanged_and_followed_by_its_copies() -> None:
    record = _record()
    out = list(with_near_duplicates([record], {"REP": [_copy(400, 200)], "OTHER": [_copy(1, 1)]}))
    assert [r.image_id for r in out] == ["REP", "COPY"]
    assert record.regions[0].bbox == (40.0, 20.0, 120.0, 60.0)
    assert out[1].regions[0].bbox == pytest.approx((80, 40, 240, 120))

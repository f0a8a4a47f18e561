"""The offline classical specialists: Haar cascades find faces, GrabCut segments inside boxes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from schemas.masks import decode_mask
from schemas.records import ImageRecord, Provenance, Region
from schemas.validation import validate_record
from specialists.detect_haar import HaarDetector, HaarOptions, level_weight_to_score
from specialists.segment_grabcut import GrabCutOptions, GrabCutSegmenter


def record_for(image: np.ndarray) -> ImageRecord:
    return ImageRecord("e" * 64, "mem://image", image.shape[1], image.shape[0], "png")


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    detector = HaarDetector("haar", HaarOptions())
    detector.setup()
    return detector


def test_haar_finds_the_astronauts_face(haar) -> None:
    image = data.astronaut()
    record = record_for(image)
    haar.process([record], [image])
    validate_record(record)
    faces = [r for r in record.regions if r.text == "face"]
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].bbox
    assert 160 < x0 < 200 and 50 < y0 < 90 and 250 < x1 < 290 and 140 < y1 < 180
    assert faces[0].score > 0.9 and faces[0].provenance.model.startswith("opencv-4.")
    assert "haarcascade_frontalface_default.xml@" in faces[0].provenance.model


def test_haar_finds_nothing_on_a_blank_image(haar) -> None:
    image = np.full((200, 300, 3), 128, np.uint8)
    record = record_for(image)
    haar.process([record], [image])
    assert record.regions == []


def test_level_weight_maps_to_a_probability_like_score() -> None:
    assert level_weight_to_score(0.0) == 0.5
    assert level_weight_to_score(6.0) == pytest.approx(0.9526, abs=1e-4)
    assert level_weight_to_score(-2.0) < 0.5


def test_haar_weights_check_names_the_cascade_folder(tmp_path) -> None:
    missing = HaarDetector("haar", HaarOptions(cascades={"no_such_cascade.xml": "thing"}))
    check = missing.check_weights()
    assert not check.found and "no_such_cascade.xml" in check.detail and check.looked_in[0].endswith("cv2/data")


def test_grabcut_mask_fits_the_image_and_stays_mostly_in_its_box() -> None:
    image = np.full((120, 160, 3), 30, np.uint8)
    image[30:90, 50:120] = (220, 40, 40)  # a red block on a dark background
    record = record_for(image)
    record.regions.append(Region("object", (40, 20, 130, 100), "block", Provenance("haar", "opencv")))
    GrabCutSegmenter("grabcut", GrabCutOptions()).process([record], [image])
    validate_record(record)
    region = record.regions[0]
    mask = decode_mask(region.mask)
    assert mask.shape == (120, 160)
    block = np.zeros_like(mask)
    block[30:90, 50:120] = True
    assert (mask & block).sum() / (mask | block).sum() > 0.8
    assert region.metrics["grabcut_inside"] > 0.95 and region.polygon is not None


def test_grabcut_segments_the_astronauts_face_box() -> None:
    image = data.astronaut()
    record = record_for(image)
    record.regions.append(Region("object", (177, 66, 272, 161), "face", Provenance("haar", "opencv")))
    GrabCutSegmenter("grabcut", GrabCutOptions()).process([record], [image])
    assert 0.5 < record.regions[0].metrics["grabcut_fill"] < 1.0

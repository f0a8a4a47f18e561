"""OCR with the PP-OCRv4 weights that ship in rapidocr-onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from schemas.records import ImageRecord
from schemas.validation import validate_record
from specialists.ocr_rapid import RapidOcr, RapidOcrOptions, group_words


def rendered(text: str) -> np.ndarray:
    image = Image.new("RGB", (720, 160), "white")
    ImageDraw.Draw(image).text((30, 50), text, fill="black", font=ImageFont.load_default(size=40))
    return np.asarray(image)


@pytest.fixture(scope="module")
def ocr() -> RapidOcr:
    specialist = RapidOcr("ocr", RapidOcrOptions())
    specialist.setup()
    return specialist


def test_ocr_reads_a_rendered_sentence_into_a_line_and_words(ocr) -> None:
    record = ImageRecord("0" * 64, "mem://sentence", 720, 160, "png")
    ocr.process([record], [rendered("Florence reads this line")])
    validate_record(record)
    lines = [r for r in record.regions if r.kind == "ocr_line"]
    words = [r for r in record.regions if r.kind == "ocr_word"]
    assert [line.text for line in lines] == ["Florence reads this line"]
    assert [word.text for word in words] == ["Florence", "reads", "this", "line"]
    x0, y0, _, y1 = lines[0].bbox
    assert 20 <= x0 <= 40 and 40 <= y0 <= 60 and y1 <= 110
    assert lines[0].quad is not None and lines[0].score > 0.9
    assert lines[0].provenance.source == "ocr" and "PP-OCRv4" in lines[0].provenance.model


def test_blank_image_gives_no_text(ocr) -> None:
    record = ImageRecord("1" * 64, "mem://blank", 200, 100, "png")
    ocr.process([record], [np.full((100, 200, 3), 255, np.uint8)])
    assert record.regions == []


def test_character_boxes_group_into_words() -> None:
    quads = [[[i * 10, 0], [i * 10 + 8, 0], [i * 10 + 8, 20], [i * 10, 20]] for i in range(5)]
    words = group_words(list("ab cd"), quads, [1.0, 0.5, 1.0, 0.9, 0.7])
    assert [(w, box) for w, box, _ in words] == [("ab", (0, 0, 18, 20)), ("cd", (30, 0, 48, 20))]
    assert words[0][2] == pytest.approx(0.75)


def test_weights_check_points_into_the_wheel(ocr) -> None:
    check = ocr.check_weights()
    assert check.found and check.looked_in[0].endswith("rapidocr_onnxruntime/models")

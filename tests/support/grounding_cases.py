"""What every phrase-grounding backend must do, checked the same way for OWLv2 and Grounding DINO."""

from __future__ import annotations

import numpy as np

from schemas.records import ImageRecord, Provenance, Text
from schemas.validation import validate_record

CAPTIONER = Provenance("captioner", "tiny", 0)
CAPTION = "A cat sitting on a red sofa next to the window in the image."


def grounding_record(*texts: Text, width: int = 80, height: int = 48) -> ImageRecord:
    return ImageRecord("f" * 64, "mem://f", width, height, "png", texts=list(texts))


def random_image(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def assert_schema_valid_triplets_inside_each_image(grounding) -> None:  # type: ignore[no-untyped-def]
    """A batch of a wide, a text-less and a tall image: triplets with their spans, 1-2 regions inside the image."""
    wide = grounding_record(Text("brief", CAPTION, CAPTIONER))
    tall = grounding_record(Text("detailed", "A woman rides a bicycle.", CAPTIONER), width=30, height=60)
    silent = grounding_record()
    grounding.process([wide, silent, tall], [random_image(), random_image(20, 20), random_image(60, 30)])
    for record in (wide, silent, tall):
        validate_record(record)
    assert [p.phrase for p in wide.phrases] == ["A cat", "a red sofa", "the window"]
    assert [p.phrase for p in tall.phrases] == ["A woman", "a bicycle"] and silent.phrases == []
    for record in (wide, tall):
        for phrase in record.phrases:
            text = next(t for t in record.texts if t.id == phrase.text_id)
            assert text.text[phrase.start : phrase.end] == phrase.phrase
            assert 1 <= len(phrase.regions) <= 2
            assert phrase.score == max(r.score for r in phrase.regions)
            for x0, y0, x1, y1 in (r.bbox for r in phrase.regions):
                assert 0 <= x0 < x1 <= record.width and 0 <= y0 < y1 <= record.height
            assert phrase.provenance.model == grounding.model_id

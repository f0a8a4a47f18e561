"""Thin images and stage pixel caps through the real rapidocr specialist and a real run (issue 18).

A valid 2x200 PNG is what rapidocr enlarges to 736x69184 before detection (51 MP: gigabytes of detector
activations). The stage refuses it before the model runs, with a stage error giving both sizes.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config.profile import parse_config
from engine.ingest.decode import decode_image
from schemas.records import ImageRecord, StageError
from specialists.ocr_rapid import RapidOcr, RapidOcrOptions, detector_input_size
from tests.support.local_ray import local_ray

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
THIN_ERROR = "image_too_large_for_stage: 2x200 upscales to 736x69184 (50919424 pixels > max_pixels 8000000)"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 255, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ocr() -> RapidOcr:
    stage = RapidOcr("ocr", RapidOcrOptions(words=False))
    stage.setup()
    return stage


@pytest.mark.parametrize("size", [(2, 20), (20, 2), (200, 2), (40, 12), (900, 20), (3000, 2100), (50, 700), (31, 29)])
def test_the_computed_detector_size_is_the_one_rapidocr_resizes_to(ocr, size) -> None:
    width, height = size
    engine = ocr._engine
    image, _, _ = engine.preprocess(np.zeros((height, width, 3), np.uint8))
    image, _ = engine.maybe_add_letterbox(image, {})
    image = engine.text_det.get_preprocess(max(image.shape[:2])).resize(image)
    assert ocr.model_input_size(width, height) == (image.shape[1], image.shape[0]) == detector_input_size(*size)


def test_a_2x200_png_is_refused_before_ocr_and_the_rest_of_the_batch_is_read(ocr, monkeypatch) -> None:
    thin, _ = decode_image(_png(2, 200), max_pixels=10**8)
    sign = np.asarray(Image.open(SAMPLES / "text_sign.png").convert("RGB"))
    seen: list[tuple[int, ...]] = []
    run_engine = ocr._engine.__call__
    monkeypatch.setattr(
        type(ocr._engine), "__call__", lambda self, image, **kw: seen.append(image.shape) or run_engine(image, **kw)
    )
    records = [ImageRecord("a" * 64, "mem://thin", 2, 200, "png"), ImageRecord("b" * 64, "mem://sign", 800, 300, "png")]
    ocr.process(records, [thin, sign])
    assert records[0].errors == [StageError("ocr", THIN_ERROR)] and records[0].regions == []
    assert seen == [(300, 800, 3)]  # the model saw the sign only
    assert "Open Monday to Friday" in [r.text for r in records[1].regions] and records[1].errors == []


def test_a_profile_cap_refuses_an_image_the_default_accepts(tmp_path) -> None:
    config = parse_config(
        {"specialists": [{"name": "ocr", "backend": "rapidocr", "limits": {"max_pixels": 1_000_000}}]}
    )
    stage = config.specialists[0].create()
    small_strip, _ = decode_image(_png(2, 20), max_pixels=10**8)  # 736x6624 for the detector: under the 8 MP default
    assert RapidOcr("ocr", RapidOcrOptions()).accepts(small_strip, ImageRecord("c" * 64, "mem://c", 2, 20, "png"))
    record = ImageRecord("c" * 64, "mem://c", 2, 20, "png")
    stage.process([record], [small_strip])
    assert record.errors == [
        StageError("ocr", "image_too_large_for_stage: 2x20 upscales to 736x6624 (4875264 pixels > max_pixels 1000000)")
    ]


@pytest.mark.slow
def test_a_run_publishes_the_thin_png_with_the_ocr_error_and_the_other_stages_work(tmp_path) -> None:
    """End to end on local Ray: the run goes on, Haar still runs on the thin image, the sign is read."""

    from engine.run import RunRequest, run_pipeline
    from engine.store.reader import read_version

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "spacer.png").write_bytes(_png(2, 200))
    shutil.copy(SAMPLES / "text_sign.png", inputs / "text_sign.png")
    profile = {
        "specialists": [
            {"name": "ocr", "backend": "rapidocr", "options": {"words": False}, "resources": {"num_cpus": 0.5}},
            {"name": "haar", "backend": "haar", "resources": {"num_cpus": 0.5}},
        ],
        # Curation off: these images are tiny or flat (a gate or the near-duplicate grouping would skip them).
        "curation": {"dedup": {"enabled": False}, "gates": {"min_side": None}},
        "ray": {"num_cpus": 2},
    }
    with local_ray():
        request = RunRequest((str(inputs),), tmp_path / "out", parse_config(profile), progress_bars=False)
        result = run_pipeline(request, progress=lambda _: None)
    assert result.annotated == 2 and result.quarantined == 0
    rows = {Path(row["source_uris"][0]).name: row for row in read_version(tmp_path / "out").to_pylist()}
    spacer, sign = rows["spacer.png"], rows["text_sign.png"]
    assert spacer["errors"] == [{"stage": "ocr", "message": THIN_ERROR}]
    assert {name for name, _ in spacer["stages"]} == {"ocr", "haar"}
    assert sign["errors"] == [] and "Open Monday to Friday" in [r["text"] for r in sign["regions"]]

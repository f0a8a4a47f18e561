"""Pickled weights (ultralytics ``.pt``) load only when the profile trusts them or pins their sha256."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.config.profile import parse_config
from engine.execute.plan_stages import plan_stages
from schemas.records import ImageRecord
from schemas.stage import UntrustedWeights
from specialists.base import file_sha256
from specialists.detect_ultralytics import UltralyticsDetector, UltralyticsOptions
from specialists.segment_sam_ultralytics import UltralyticsSamOptions


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory) -> Path:
    from tests.support.tiny_models.yolo import build_tiny_yolo

    return build_tiny_yolo(tmp_path_factory.mktemp("pickle-yolo") / "tiny-yolov8n.pt")


class _MakesFolder:
    """Unpickling this makes a folder: the smallest proof that loading a pickle runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


@pytest.fixture
def hostile_pt(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    weights = tmp_path / "hostile-yolov8n.pt"
    weights.write_bytes(pickle.dumps(_MakesFolder(marker)))
    return weights, marker


def _detector(weights: Path, **options) -> UltralyticsDetector:
    return UltralyticsDetector("yolo", UltralyticsOptions(weights=str(weights), image_size=64, **options))


def test_an_unvouched_pickle_is_refused_before_loading_and_runs_no_code(hostile_pt) -> None:
    weights, marker = hostile_pt
    detector = _detector(weights)
    with pytest.raises(UntrustedWeights) as refused:
        detector.setup()
    message = str(refused.value)
    assert message.startswith(f"yolo (ultralytics): {weights} is a pickle, which runs code when loaded;")
    assert "trust_pickle_weights: true" in message and f"weights_sha256: {file_sha256(weights)}" in message
    assert not marker.exists() and detector.model is None


def test_the_hostile_file_does_run_code_once_trusted(hostile_pt) -> None:
    """What the refusal prevents: with the opt-in the pickle is loaded, and its code runs."""
    weights, marker = hostile_pt
    with pytest.raises(Exception):  # noqa: B017 - ultralytics then fails on a file that is no model
        _detector(weights, trust_pickle_weights=True).setup()
    assert marker.is_dir()


def test_trust_pickle_weights_loads_the_file_and_annotates(tiny_yolo) -> None:
    detector = _detector(tiny_yolo, trust_pickle_weights=True, min_score=0.0, max_detections=2)
    assert detector.check_weights().pickle == "trusted"
    record = ImageRecord("a" * 64, "mem://a", 64, 48, "png")
    detector.process([record], [np.zeros((48, 64, 3), np.uint8)])
    assert len(record.regions) == 2 and record.regions[0].kind == "object"


def test_a_matching_sha256_pin_loads_without_the_opt_in(tiny_yolo) -> None:
    detector = _detector(tiny_yolo, weights_sha256=file_sha256(tiny_yolo).upper())
    check = detector.check_weights()
    assert (check.pickle, check.trusted, check.detail) == ("pinned", True, "a pickle, pinned (weights_sha256 matches)")
    detector.setup()
    assert detector.model is not None


def test_a_mismatched_pin_is_refused_even_with_the_opt_in(tiny_yolo, tmp_path) -> None:
    other = tmp_path / "other.pt"
    other.write_bytes(b"not the pinned file")
    detector = _detector(tiny_yolo, weights_sha256=file_sha256(other), trust_pickle_weights=True)
    assert detector.check_weights().pickle == "pin mismatch"
    with pytest.raises(UntrustedWeights, match=f"does not match options.weights_sha256 .*{file_sha256(tiny_yolo)}"):
        detector.setup()
    assert detector.model is None


def test_a_pin_that_is_no_sha256_is_a_config_error_naming_the_key() -> None:
    from engine.config.typed_config import ConfigError

    data = {"specialists": [{"backend": "ultralytics", "options": {"weights": "y.pt", "weights_sha256": "abc"}}]}
    with pytest.raises(ConfigError, match="weights_sha256: 'abc' is not a sha256"):
        parse_config(data)


def test_trust_and_pin_do_not_change_the_stage_fingerprint(tiny_yolo) -> None:
    plain = _detector(tiny_yolo).fingerprint()
    assert _detector(tiny_yolo, trust_pickle_weights=True).fingerprint() == plain
    assert _detector(tiny_yolo, weights_sha256=file_sha256(tiny_yolo)).fingerprint() == plain


def test_a_run_plan_refuses_every_unvouched_pickle_at_once(tiny_yolo, tmp_path) -> None:
    sam = tmp_path / "tiny-mobile_sam.pt"
    sam.write_bytes(b"placeholder")
    config = parse_config(
        {
            "specialists": [
                {"name": "yolo", "backend": "ultralytics", "options": {"weights": str(tiny_yolo)}},
                {"name": "sam", "backend": "sam_ultralytics", "options": {"weights": str(sam)}},
            ]
        }
    )
    with pytest.raises(UntrustedWeights) as refused:
        plan_stages(config)
    assert f"yolo (ultralytics): {tiny_yolo} is a pickle" in str(refused.value)
    assert f"; sam (sam_ultralytics): {sam} is a pickle" in str(refused.value)


def test_models_says_which_stages_load_pickles_and_how_they_are_vouched_for(tiny_yolo, tmp_path, capsys) -> None:
    from engine.cli import main as cli

    sam = tmp_path / "tiny-mobile_sam.pt"
    sam.write_bytes(b"placeholder")
    profile = tmp_path / "profile.yaml"
    pin = file_sha256(sam)
    profile.write_text(
        "specialists:\n"
        f"  - {{name: trusted, backend: ultralytics, options: {{weights: {tiny_yolo}, trust_pickle_weights: true}}}}\n"
        f"  - {{name: pinned, backend: sam_ultralytics, options: {{weights: {sam}, weights_sha256: {pin}}}}}\n"
        f"  - {{name: unvouched, backend: ultralytics, options: {{weights: {tiny_yolo}}}}}\n"
        "  - {name: ocr, backend: rapidocr}\n"
    )
    assert cli(["models", "--config", str(profile)]) == 1
    printed = capsys.readouterr().out
    assert f"found   trusted (ultralytics): {tiny_yolo}\n" in printed
    assert "a pickle, trusted (trust_pickle_weights)" in printed
    assert "a pickle, pinned (weights_sha256 matches)" in printed
    assert f"REFUSED unvouched (ultralytics): {tiny_yolo}\n" in printed
    assert "1 load pickled weights the profile neither trusts nor pins: unvouched" in printed
    assert "found   ocr (rapidocr)" in printed and "PP-OCRv4 ONNX in the wheel" in printed


def test_sam_ultralytics_options_carry_the_same_trust_settings() -> None:
    options = UltralyticsSamOptions(weights="/w/mobile_sam.pt", trust_pickle_weights=True)
    assert options.trust_pickle_weights and options.weights_sha256 is None

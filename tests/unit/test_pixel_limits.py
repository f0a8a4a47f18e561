"""Stage pixel limits: which image sizes a stage refuses, and the stage error that says so (no model needed)."""

from __future__ import annotations

import re

import pytest

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from schemas.pixel_limits import PixelLimits, refusal


def test_an_image_the_model_would_see_enlarged_past_the_cap_is_refused_with_both_sizes() -> None:
    limits = PixelLimits(max_pixels=8_000_000)
    assert refusal(limits, (2, 200), (736, 69184)) == (
        "image_too_large_for_stage: 2x200 upscales to 736x69184 (50919424 pixels > max_pixels 8000000)"
    )


def test_an_image_over_the_cap_at_its_own_size_names_only_its_size() -> None:
    limits = PixelLimits(max_pixels=1_000_000)
    assert refusal(limits, (1200, 1000), (1200, 1000)) == (
        "image_too_large_for_stage: 1200x1000 (1200000 pixels > max_pixels 1000000)"
    )
    assert refusal(limits, (1000, 1000), (1000, 1000)) is None


def test_a_thin_image_is_refused_by_the_aspect_ratio_before_its_pixels() -> None:
    limits = PixelLimits(max_pixels=10, max_aspect_ratio=50)
    assert refusal(limits, (2, 200), (2, 200)) == (
        "image_too_thin_for_stage: 2x200 (aspect ratio 100 > max_aspect_ratio 50)"
    )
    assert refusal(PixelLimits(max_aspect_ratio=100), (2, 200), (2, 200)) is None


def test_no_limits_refuse_nothing() -> None:
    assert refusal(PixelLimits(), (1, 100_000), (736, 73_600_000)) is None


def test_a_profile_override_replaces_only_the_values_it_sets() -> None:
    default = PixelLimits(max_pixels=16_000_000, max_aspect_ratio=256)
    assert default.overridden_by(PixelLimits(max_pixels=500)) == PixelLimits(500, 256)
    assert default.overridden_by(None) is default


def test_profile_limits_override_the_backends_defaults_per_stage() -> None:
    config = parse_config(
        {
            "specialists": [
                {"name": "ocr", "backend": "rapidocr", "limits": {"max_pixels": 1000}},
                {"name": "sam", "backend": "sam_hf", "limits": {"max_aspect_ratio": 10}},
                {"name": "haar", "backend": "haar"},
            ],
            "filters": [{"backend": "nms"}],
        }
    )
    ocr, sam, haar = (stage.create() for stage in config.specialists)
    assert ocr.limits == PixelLimits(max_pixels=1000)
    assert sam.limits == PixelLimits(max_pixels=16_000_000, max_aspect_ratio=10)
    assert haar.limits == PixelLimits(max_pixels=40_000_000)
    assert config.filters[0].create().limits == PixelLimits()


def test_limits_do_not_change_fingerprints() -> None:
    plain = parse_config({"specialists": [{"name": "ocr", "backend": "rapidocr"}]})
    capped = parse_config({"specialists": [{"name": "ocr", "backend": "rapidocr", "limits": {"max_pixels": 9}}]})
    assert plain.fingerprint() == capped.fingerprint()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_pixels": 0}, "specialists[0].limits: max_pixels must be >= 1, got 0"),
        ({"max_aspect_ratio": 0.5}, "specialists[0].limits: max_aspect_ratio must be >= 1, got 0.5"),
        ({"max_pixel": 5}, "specialists[0].limits: unknown key 'max_pixel'"),
    ],
)
def test_bad_limits_are_config_errors_naming_the_key(limits, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"specialists": [{"backend": "rapidocr", "limits": limits}]})

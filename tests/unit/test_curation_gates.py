"""Image gates: each records its rule, the measured value and the threshold it crossed."""

from __future__ import annotations

import dataclasses

import numpy as np

from filters.base import Verdict
from filters.curation.gates import GATE_RULES, gate_columns, gate_image
from filters.curation.settings import GateSettings
from schemas.records import ImageMeasures

GOOD = ImageMeasures(
    width=640,
    height=480,
    aspect_ratio=640 / 480,
    phash=0,
    dhash=0,
    sharpness=350.0,
    brightness=120.0,
    contrast=50.0,
    single_colour_fraction=0.2,
)
ALL_ON = GateSettings(min_side=32, max_aspect_ratio=6.0, min_sharpness=20.0, max_single_colour_fraction=0.95)


def test_a_good_image_passes_every_gate() -> None:
    assert gate_image(GOOD, ALL_ON) is None


def test_min_side_records_the_short_side() -> None:
    small = dataclasses.replace(GOOD, width=300, height=12, aspect_ratio=25.0)
    assert gate_image(small, ALL_ON) == Verdict("min_side", 12, 32)


def test_max_aspect_ratio_records_long_over_short() -> None:
    banner = dataclasses.replace(GOOD, width=1600, height=200, aspect_ratio=8.0)
    assert gate_image(banner, ALL_ON) == Verdict("max_aspect_ratio", 8.0, 6.0)


def test_min_sharpness_records_the_laplacian_variance() -> None:
    blurred = dataclasses.replace(GOOD, sharpness=4.5)
    assert gate_image(blurred, ALL_ON) == Verdict("min_sharpness", 4.5, 20.0)


def test_max_single_colour_fraction_records_the_fraction() -> None:
    blank = dataclasses.replace(GOOD, single_colour_fraction=0.99, sharpness=0.0)
    assert gate_image(blank, dataclasses.replace(ALL_ON, min_sharpness=None)) == Verdict(
        "max_single_colour_fraction", 0.99, 0.95
    )


def test_the_first_failing_gate_in_order_is_the_reason() -> None:
    tiny_blank = dataclasses.replace(GOOD, width=8, height=8, aspect_ratio=1.0, single_colour_fraction=1.0)
    assert gate_image(tiny_blank, ALL_ON).rule == "min_side"


def test_gates_set_to_null_skip_nothing() -> None:
    off = GateSettings(min_side=None)
    worst = ImageMeasures(1, 500, 500.0, 0, 0, 0.0, 0.0, 0.0, 1.0)
    assert gate_image(worst, off) is None


def test_by_default_only_images_under_16_pixels_a_side_are_gated() -> None:
    defaults = GateSettings()
    blank_banner = ImageMeasures(2000, 40, 50.0, 0, 0, 0.0, 255.0, 0.0, 1.0)
    assert gate_image(blank_banner, defaults) is None
    assert gate_image(dataclasses.replace(blank_banner, height=15), defaults) == Verdict("min_side", 15, 16)


def test_the_columnar_gates_give_every_row_the_verdict_of_gate_image() -> None:
    rng = np.random.default_rng(7)
    rows = [
        dataclasses.replace(
            GOOD,
            width=int(rng.integers(1, 100)),
            height=int(rng.integers(1, 100)),
            aspect_ratio=float(rng.uniform(1, 10)),
            sharpness=float(rng.uniform(0, 40)),
            single_colour_fraction=float(rng.uniform(0.9, 1.0)),
        )
        for _ in range(500)
    ]
    names = ("width", "height", "aspect_ratio", "sharpness", "single_colour_fraction")
    columns = {name: np.array([getattr(row, name) for row in rows], np.float64) for name in names}
    for gates in (ALL_ON, GateSettings(), dataclasses.replace(ALL_ON, min_side=None, min_sharpness=None)):
        rule, value, threshold = gate_columns(columns, gates)
        expected = [gate_image(row, gates) for row in rows]
        found = [
            None if r < 0 else Verdict(GATE_RULES[r], v, t) for r, v, t in zip(rule, value, threshold, strict=True)
        ]
        assert found == expected and any(v is not None for v in expected) and any(v is None for v in expected)


def test_an_unmeasured_row_passes_the_columnar_gates() -> None:
    nan = np.array([np.nan])
    columns = dict.fromkeys(("width", "height", "aspect_ratio", "sharpness", "single_colour_fraction"), nan)
    rule, value, _ = gate_columns(columns, ALL_ON)
    assert rule.tolist() == [-1] and np.isnan(value).all()

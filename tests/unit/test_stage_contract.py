"""One stage contract: every registered backend declares it, and its fingerprint ignores how options are written."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engine.config.profile import parse_config
from engine.config.registry import FILTER_BACKENDS, SPECIALIST_BACKENDS, stage_class
from engine.config.typed_config import build
from schemas.fingerprint import canonical
from schemas.stage import BaseStage, WeightsCheck

REGISTERED = [("specialists", key) for key in SPECIALIST_BACKENDS] + [("filters", key) for key in FILTER_BACKENDS]
SPACY_FILTERS = {"spacy_text", "blacklist"}


def reordered(value: Any, rng: random.Random | None = None) -> Any:
    """``value`` with the keys of every mapping, at every depth, reversed (or shuffled with ``rng``); lists keep
    their order, which means something."""
    if isinstance(value, dict):
        keys = list(reversed(value)) if rng is None else rng.sample(list(value), len(value))
        return {key: reordered(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [reordered(item, rng) for item in value]
    return value


def nested_dict_fields(options: Any) -> list[str]:
    return [name for name, value in canonical(options).items() if isinstance(value, dict) and len(value) > 1]


def build_stage(kind: str, backend: str, options: dict) -> BaseStage:
    cls = stage_class(kind, backend)
    return cls("stage", build(cls.Options, options, "options"))


@pytest.mark.parametrize(("kind", "backend"), REGISTERED)
def test_registry_key_is_the_class_backend_and_its_table_the_class_kind(kind: str, backend: str) -> None:
    cls = stage_class(kind, backend)
    assert issubclass(cls, BaseStage)
    assert cls.backend == backend and cls.kind == kind


@pytest.mark.parametrize(("kind", "backend"), REGISTERED)
def test_every_stage_declares_the_contract(kind: str, backend: str) -> None:
    cls = stage_class(kind, backend)
    stage = cls("stage", cls.Options())
    assert isinstance(cls.requires, frozenset) and isinstance(cls.produces, frozenset)
    assert cls.needs_pixels is (kind == "specialists" and backend != "llm_aggregator")
    assert cls.holds_model is (kind == "specialists" or backend in SPACY_FILTERS)
    assert isinstance(stage.model_id, str) and (kind == "filters" or stage.model_id)
    check = stage.check_weights()
    assert isinstance(check, WeightsCheck) and (check.specialist, check.backend) == ("stage", backend)
    assert len(stage.fingerprint()) == 16


@pytest.mark.parametrize("backend", sorted(set(FILTER_BACKENDS) - SPACY_FILTERS))
def test_filters_without_a_model_report_their_weights_bundled(backend: str) -> None:
    check = stage_class("filters", backend)("stage", stage_class("filters", backend).Options()).check_weights()
    assert check.found and check.detail == "bundled with the package"


@pytest.mark.parametrize("backend", sorted(SPACY_FILTERS))
def test_spacy_filters_report_the_installed_model_package(backend: str) -> None:
    check = stage_class("filters", backend)("stage", stage_class("filters", backend).Options()).check_weights()
    assert check.found and check.model.startswith("en_core_web_sm") and check.model in check.looked_in


@pytest.mark.parametrize(("kind", "backend"), REGISTERED)
def test_options_written_in_any_key_order_give_one_fingerprint(kind: str, backend: str) -> None:
    written = canonical(stage_class(kind, backend).Options())
    expected = build_stage(kind, backend, written).fingerprint()
    assert build_stage(kind, backend, reordered(written)).fingerprint() == expected
    rng = random.Random(backend)
    for _ in range(4):
        assert build_stage(kind, backend, reordered(written, rng)).fingerprint() == expected


@pytest.mark.parametrize(
    ("kind", "backend", "option", "change"),
    [
        ("specialists", "haar", "cascades", {"haarcascade_fullbody.xml": "human"}),
        ("filters", "confidence", "min_score_by_kind", {"ocr_line": 0.6}),
    ],
)
def test_nested_option_keys_reordered_keep_the_fingerprint_and_a_changed_value_changes_it(
    kind: str, backend: str, option: str, change: dict
) -> None:
    written = canonical(stage_class(kind, backend).Options())
    expected = build_stage(kind, backend, written).fingerprint()
    nested_reversed = {**written, option: reordered(written[option])}
    assert list(nested_reversed[option]) == list(reversed(written[option])) and len(written[option]) > 1
    assert build_stage(kind, backend, nested_reversed).fingerprint() == expected
    changed = {**written, option: {**written[option], **change}}
    assert build_stage(kind, backend, changed).fingerprint() != expected


def test_backends_with_nested_options_are_among_those_covered() -> None:
    nested = {backend for kind, backend in REGISTERED if nested_dict_fields(stage_class(kind, backend).Options())}
    assert {"haar", "confidence", "region_text_agreement", "nms"} <= nested


def test_the_config_fingerprint_ignores_key_order_of_the_profile() -> None:
    cascades = {"haarcascade_fullbody.xml": "person", "haarcascade_frontalface_default.xml": "face"}
    profile = {
        "specialists": [{"name": "haar", "backend": "haar", "options": {"cascades": cascades}}],
        "filters": [{"name": "confidence", "backend": "confidence", "options": {"min_score_by_kind": {"object": 0.3}}}],
    }
    assert parse_config(reordered(profile)).fingerprint() == parse_config(profile).fingerprint()
    changed = reordered(profile)
    changed["filters"][0]["options"]["min_score_by_kind"]["object"] = 0.4
    assert parse_config(changed).fingerprint() != parse_config(profile).fingerprint()

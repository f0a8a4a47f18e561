"""Filter backends in profiles: registered, validated from YAML, and per-granularity overrides."""

from __future__ import annotations

import pytest

from engine.config.profile import load_config, parse_config
from engine.config.typed_config import ConfigError
from filters.text_rules import TextFilter

# The offline filter chain in its order; a filter added to the profile may sit anywhere between these.
OFFLINE_CHAIN = ["spacy_text", "confidence", "geometry", "nms", "blacklist"]


def test_offline_profile_runs_the_filters_in_order() -> None:
    config = load_config("offline")
    backends = [f.backend for f in config.filters]
    assert [backend for backend in backends if backend in OFFLINE_CHAIN] == OFFLINE_CHAIN
    confidence = next(f for f in config.filters if f.backend == "confidence")
    assert confidence.options.min_metrics == {"predicted_iou": 0.88, "stability_score": 0.95}


def test_overriding_one_brief_rule_keeps_the_other_brief_defaults() -> None:
    data = {"filters": [{"name": "text", "backend": "spacy_text", "options": {"brief": {"max_objects": 8}}}]}
    stage = parse_config(data).filters[0].create()
    assert isinstance(stage, TextFilter)
    assert (stage.options.brief.max_objects, stage.options.brief.max_tokens) == (8, 40)
    assert stage.options.detailed.max_objects == 45


def test_unknown_rule_is_a_config_error_naming_the_key() -> None:
    data = {"filters": [{"backend": "nms", "options": {"iou_treshold": 0.5}}]}
    with pytest.raises(ConfigError, match=r"filters\[0\]\.options: unknown key 'iou_treshold'"):
        parse_config(data)


def test_only_filters_with_a_spacy_model_ask_for_an_actor_pool() -> None:
    holds_model = {s.name: s.holds_model for s in (f.create() for f in load_config("offline").filters)}
    expected = {"text": True, "confidence": False, "geometry": False, "nms": False, "blacklist": True}
    assert {name: holds_model[name] for name in expected} == expected

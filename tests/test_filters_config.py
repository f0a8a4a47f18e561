"""Filter backends in profiles: registered, validated from YAML, and per-granularity overrides."""

from __future__ import annotations

import pytest

from engine.config.profile import load_config, parse_config
from engine.config.typed_config import ConfigError
from filters.text_rules import TextFilter


def test_offline_profile_runs_the_filters_in_order() -> None:
    config = load_config("offline")
    assert [f.backend for f in config.filters] == ["spacy_text", "confidence", "geometry", "nms", "blacklist"]
    assert config.filters[1].options.min_metrics == {"predicted_iou": 0.88, "stability_score": 0.95}


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
    stages = [f.create() for f in load_config("offline").filters]
    assert {s.name: s.holds_model for s in stages} == {
        "text": True,
        "confidence": False,
        "geometry": False,
        "nms": False,
        "blacklist": True,
    }

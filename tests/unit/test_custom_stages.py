"""``backend: module:Class``: a user's stage class, imported and checked against the stage contract at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from schemas.records import ImageRecord, Provenance, Region

SUPPORT = Path(__file__).resolve().parents[1] / "support"


@pytest.fixture(autouse=True)
def user_packages(monkeypatch) -> None:
    """``mypkg`` importable as a user's installed package would be."""
    monkeypatch.syspath_prepend(str(SUPPORT))


def refused(profile: dict) -> str:
    with pytest.raises(ConfigError) as error:
        parse_config(profile)
    return str(error.value)


def test_a_specialist_and_a_filter_by_import_path_are_configured_with_their_options() -> None:
    config = parse_config(
        {
            "specialists": [{"name": "bright", "backend": "mypkg.detectors:BrightestBox", "options": {"threshold": 9}}],
            "filters": [{"backend": "mypkg.filters:MinArea", "options": {"min_share": 0.2}}],
        }
    )
    (bright,) = config.specialists
    (area,) = config.filters
    assert (bright.backend, bright.options.threshold) == ("mypkg.detectors:BrightestBox", 9)
    assert (area.name, area.options.min_share) == ("mypkg.filters:MinArea", 0.2)
    stage = bright.create()
    assert (type(stage).__name__, stage.name, stage.model_id) == ("BrightestBox", "bright", "brightest-box/1")


def test_a_stages_list_takes_the_family_from_the_class() -> None:
    config = parse_config(
        {
            "stages": [
                {"name": "bright", "backend": "mypkg.detectors:BrightestBox"},
                {"backend": "mypkg.filters:MinArea"},
            ]
        }
    )
    assert [s.name for s in config.specialists] == ["bright"]
    assert [s.name for s in config.filters] == ["mypkg.filters:MinArea"]
    assert [s.name for s in config.stages] == ["bright", "mypkg.filters:MinArea"]


def test_the_custom_filter_drops_with_its_rule() -> None:
    config = parse_config({"filters": [{"name": "area", "backend": "mypkg.filters:MinArea"}]})
    stage = config.filters[0].create()
    record = ImageRecord("a" * 64, "mem://a", 100, 100, "png")
    source = Provenance("bright", "brightest-box/1", 0)
    record.regions += [Region("object", (0, 0, 5, 5), "tiny", source), Region("object", (0, 0, 50, 50), "big", source)]
    stage.process([record], None)
    assert [r.text for r in record.regions] == ["big"]
    (drop,) = record.dropped
    assert (drop.stage, drop.rule, drop.value, drop.threshold) == ("area", "min_area", 0.0025, 0.01)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("nosuchpkg.detectors:Box", "'nosuchpkg.detectors:Box': cannot import 'nosuchpkg.detectors' "
         "(ModuleNotFoundError: No module named 'nosuchpkg'); install it, or run from the folder that holds it"),
        ("mypkg.detectors:Nope", "'mypkg.detectors:Nope': module 'mypkg.detectors' has no 'Nope'"),
        ("mypkg.incomplete:NotAStage", "'mypkg.incomplete:NotAStage': NotAStage is not a stage class: derive it from "
         "specialists.base.Specialist or filters.base.Filter"),
        ("mypkg.incomplete:NoAnnotate", "NoAnnotate does not implement the stage contract: missing annotate"),
        ("mypkg.detectors:", "'mypkg.detectors:' is not a registered backend nor a 'module:Class' import path"),
    ],
)  # fmt: skip
def test_a_specialist_that_cannot_be_used_is_refused_naming_what_is_missing(backend, message) -> None:
    error = refused({"specialists": [{"name": "mine", "backend": backend}]})
    assert error.startswith("specialists[0].backend: ")
    assert message in error


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("mypkg.incomplete:NoBackend", "NoBackend does not implement the stage contract: no 'backend' name"),
        ("mypkg.incomplete:UndataclassedOptions", "UndataclassedOptions does not implement the stage contract: "
         "no 'Options' dataclass"),
        ("mypkg.incomplete:NoDecision", "NoDecision does not implement the stage contract: implements neither "
         "check() nor decide()"),
        ("mypkg.detectors:BrightestBox", "'mypkg.detectors:BrightestBox' is one of the specialists, "
         "not of the filters"),
    ],
)  # fmt: skip
def test_a_filter_that_cannot_be_used_is_refused_naming_what_is_missing(backend, message) -> None:
    error = refused({"filters": [{"name": "mine", "backend": backend}]})
    assert error.startswith("filters[0].backend: ")
    assert message in error


def test_a_broken_class_in_a_stages_list_is_named_by_its_index() -> None:
    error = refused({"stages": [{"backend": "rapidocr"}, {"backend": "mypkg.incomplete:NoAnnotate"}]})
    assert error.startswith("stages[1].backend: 'mypkg.incomplete:NoAnnotate': NoAnnotate does not implement ")


def test_the_fingerprint_follows_the_options_and_model_id() -> None:
    def fingerprint(threshold: int) -> str:
        profile = {"specialists": [{"backend": "mypkg.detectors:BrightestBox", "options": {"threshold": threshold}}]}
        return parse_config(profile).specialists[0].create().fingerprint()

    assert fingerprint(200) == fingerprint(200) != fingerprint(201)

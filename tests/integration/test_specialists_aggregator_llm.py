"""LLM aggregator: prompts from the other annotations, detailed texts with model + prompt-version provenance."""

from __future__ import annotations

import pytest

from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.aggregator_llm import LlmAggregator, LlmAggregatorOptions, build_prompt, prompt_path

PROV = Provenance("other", "tiny", 0)


def annotated_record(key: str = "a", brief: bool = True) -> ImageRecord:
    record = ImageRecord(key * 64, f"mem://{key}", 640, 480, "jpg")
    if brief:
        record.texts.append(Text("brief", "a cat on a red sofa", PROV))
    record.regions += [
        Region("object", (10.4, 20, 300, 400), "cat", PROV),
        Region("region_caption", (10, 20, 300, 400), "a sleeping cat", PROV),
        Region("proposal", (0, 0, 5, 5), "", PROV),
        Region("ocr_line", (400, 10, 600, 40), "OPEN", PROV),
    ]
    return record


def test_prompt_lists_caption_regions_and_ocr() -> None:
    template = prompt_path("detailed", "v1").read_text()
    prompt = build_prompt(template, annotated_record(), max_regions=5, max_ocr_lines=5)
    assert "Brief caption: a cat on a red sofa" in prompt
    assert "- cat (10, 20, 300, 400)\n- a sleeping cat (10, 20, 300, 400)\n" in prompt
    assert "640x480" in prompt and "- OPEN" in prompt
    assert "proposal" not in prompt


def test_no_brief_caption_means_no_prompt() -> None:
    assert build_prompt("{caption}", annotated_record(brief=False), 5, 5) is None


def test_unknown_prompt_version_is_rejected_naming_the_file() -> None:
    with pytest.raises(ValueError, match=r"no prompt file .*detailed_v99.txt"):
        LlmAggregatorOptions(prompt_version="v99")


@pytest.fixture(scope="module")
def aggregator(tmp_path_factory) -> LlmAggregator:
    from tests.support.tiny_models.causal_lm import build_tiny_causal_lm

    directory = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
    specialist = LlmAggregator("aggregator", LlmAggregatorOptions(model=str(directory), max_new_tokens=8))
    specialist.setup()
    return specialist


def test_writes_detailed_and_more_detailed_only_where_a_brief_caption_exists(aggregator) -> None:
    assert aggregator.needs_pixels is False
    records = [annotated_record("a"), annotated_record("b", brief=False), annotated_record("c")]
    aggregator.process(records, None)
    for record in records:
        validate_record(record)
    for record in (records[0], records[2]):
        made = {t.granularity: t for t in record.texts if t.provenance.source == "aggregator"}
        assert sorted(made) == ["detailed", "more_detailed"]
        assert made["detailed"].provenance.model == aggregator.model_id + "+prompt:detailed_v1"
        assert made["more_detailed"].provenance.model == aggregator.model_id + "+prompt:more_detailed_v1"
    assert records[1].texts == []


def test_batch_generation_returns_one_answer_per_prompt(aggregator) -> None:
    answers = aggregator.generate(["a cat", "a much longer prompt about a bicycle on the street"])
    assert len(answers) == 2 and all(a == " ".join(a.split()) for a in answers)


def test_missing_weights_raise_the_clear_error(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"agg \(llm_aggregator\): weights for .*no-lm.* looked in"):
        LlmAggregator("agg", LlmAggregatorOptions(model=str(tmp_path / "no-lm"))).setup()

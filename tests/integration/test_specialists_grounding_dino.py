"""Grounding DINO phrase grounding: one " . "-joined prompt per image, phrase scores from their tokens."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import Text
from schemas.stage import WeightsNotFound
from specialists.grounding_dino import (
    DinoGroundingOptions,
    GroundingDino,
    dino_prompt,
    phrase_scores,
    phrase_token_mask,
    phrases_within,
)
from tests.support.grounding_cases import (
    CAPTION,
    CAPTIONER,
    assert_schema_valid_triplets_inside_each_image,
    grounding_record,
    random_image,
)


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory) -> str:
    from tests.support.tiny_models.grounding_dino import build_tiny_grounding_dino

    return str(build_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-grounding-dino")))


@pytest.fixture(scope="module")
def grounding(dino_dir) -> GroundingDino:
    options = DinoGroundingOptions(model=dino_dir, min_score=0.0, box_threshold=0.0, max_regions=2)
    specialist = GroundingDino("grounding", options)
    specialist.setup()
    return specialist


def test_the_prompt_joins_phrases_with_dots_and_keeps_each_phrases_span() -> None:
    caption, spans = dino_prompt(["a cat", "a red sofa"])
    assert caption == "a cat . a red sofa ."
    assert [caption[start:end] for start, end in spans] == ["a cat", "a red sofa"]
    assert dino_prompt([]) == ("", [])


def test_a_phrase_owns_the_tokens_inside_its_characters_and_no_separator_or_special_token() -> None:
    # "[CLS] a cat . a red so ##fa . [SEP] [PAD]" for "a cat . a red sofa ."
    offsets = np.array([(0, 0), (0, 1), (2, 5), (6, 7), (8, 9), (10, 13), (14, 16), (16, 18), (19, 20), (0, 0), (0, 0)])
    mask = phrase_token_mask(offsets, [(0, 5), (8, 18)])
    assert [np.flatnonzero(row).tolist() for row in mask] == [[1, 2], [4, 5, 6, 7]]
    assert phrase_token_mask(offsets, []).shape == (0, 11)


def test_a_phrase_scores_its_best_token_for_each_box() -> None:
    token_probs = np.array([[0.1, 0.7, 0.2, 0.9, 0.3], [0.6, 0.1, 0.4, 0.2, 0.8]])
    mask = np.array([[False, True, True, False, False], [False, False, False, False, True], [False] * 5])
    np.testing.assert_array_equal(phrase_scores(token_probs, mask), [[0.7, 0.3, -np.inf], [0.4, 0.8, -np.inf]])


def test_only_the_leading_phrases_that_fit_the_text_encoder_are_kept() -> None:
    # [CLS] + (2 + ".") + (3 + ".") + [SEP] = 9 tokens
    assert phrases_within([2, 3, 1], max_tokens=9) == 2
    assert phrases_within([2, 3, 1], max_tokens=8) == 1
    assert phrases_within([2, 3, 1], max_tokens=256) == 3
    assert phrases_within([], max_tokens=256) == 0


def test_grounded_phrases_are_schema_valid_triplets_with_boxes_inside_each_image(grounding) -> None:
    assert_schema_valid_triplets_inside_each_image(grounding)


def test_blacklisted_phrases_are_never_put_in_the_prompt(grounding, monkeypatch) -> None:
    queried: list[list[str]] = []
    detect = grounding.detect

    def spy(images: list[np.ndarray], queries: list[list[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        queried.extend(queries)
        return detect(images, queries)

    monkeypatch.setattr(grounding, "detect", spy)
    grounding.process([grounding_record(Text("brief", CAPTION, CAPTIONER))], [random_image()])
    assert queried == [["a cat", "a red sofa", "the window"]]  # "the image" is blacklisted


def test_phrases_past_the_prompts_token_limit_are_not_grounded(dino_dir) -> None:
    # "[CLS] a cat . a red sofa . [SEP]" is 9 tokens: "the window" does not fit.
    options = DinoGroundingOptions(model=dino_dir, min_score=0.0, box_threshold=0.0, max_query_tokens=9)
    short = GroundingDino("g", options)
    record = grounding_record(Text("brief", CAPTION, CAPTIONER))
    short.process([record], [random_image()])
    assert [p.phrase for p in record.phrases] == ["A cat", "a red sofa"]


def test_a_box_whose_best_phrase_is_under_the_box_threshold_grounds_nothing(dino_dir) -> None:
    strict = GroundingDino("g", DinoGroundingOptions(model=dino_dir, min_score=0.0, box_threshold=1.1))
    record = grounding_record(Text("brief", CAPTION, CAPTIONER))
    strict.process([record], [random_image()])
    assert record.phrases == []


def test_the_defaults_are_grounding_dinos_readme_thresholds() -> None:
    options = DinoGroundingOptions()
    assert options.model == "IDEA-Research/grounding-dino-base"
    assert (options.box_threshold, options.min_score) == (0.35, 0.25)


def test_missing_grounding_dino_weights_name_the_path_looked_in(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"grounding \(grounding_dino\): weights for .*no-dino.* not found"):
        GroundingDino("grounding", DinoGroundingOptions(model=str(tmp_path / "no-dino"))).setup()

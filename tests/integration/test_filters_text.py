"""The spaCy text filter: what it extracts, each rule on a hand-checked example, and duplicates."""

from __future__ import annotations

import pytest

from filters.text_analysis import TextAnalyzer
from filters.text_rules import (
    BriefTextRules,
    TextFilter,
    TextFilterOptions,
    check_text,
    non_alpha_fraction,
    repeated_fraction,
)
from schemas.records import ImageRecord, Provenance, Text

CAPTIONER = Provenance("captioner", "blip")


@pytest.fixture(scope="module")
def text_filter() -> TextFilter:
    stage = TextFilter("text", TextFilterOptions())
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def analyzer(text_filter: TextFilter) -> TextAnalyzer:
    return text_filter.analyzer


def _filtered(stage: TextFilter, *texts: Text) -> ImageRecord:
    record = ImageRecord("img", "file:///img.jpg", 64, 64, "jpeg", texts=list(texts))
    stage.process([record], None)
    return record


def _brief(text: str) -> Text:
    return Text("brief", text, CAPTIONER)


def test_woman_on_red_bicycle_has_objects_attribute_and_action(analyzer: TextAnalyzer) -> None:
    (analysis,) = analyzer.analyze(["A woman rides a red bicycle"])
    assert analysis.objects == ["woman", "bicycle"]
    assert analysis.attributes == ["red"]
    assert analysis.actions == ["ride"]
    assert analysis.num_tokens == 6


def test_complexity_is_the_mean_undirected_degree(analyzer: TextAnalyzer) -> None:
    # woman: det + edge to "rides" = 2; bicycle: det + amod + edge to "rides" = 3; rides: nsubj + dobj = 2.
    (analysis,) = analyzer.analyze(["A woman rides a red bicycle"])
    assert analysis.object_complexity == pytest.approx(2.5)
    assert analysis.action_complexity == pytest.approx(2.0)


def test_noun_phrases_are_char_spans_without_blacklisted_ones(analyzer: TextAnalyzer) -> None:
    text = "It is a photo of a stop sign near New York City."
    (analysis,) = analyzer.analyze([text])
    assert [text[a:b] for a, b in analysis.noun_phrases] == ["a stop sign", "New York City"]
    assert analysis.proper_nouns == ["New York City"]
    assert "stop" in analysis.attributes


@pytest.mark.parametrize(
    ("verb", "lemma"), [("rides", "ride"), ("riding", "ride"), ("singing", "sing"), ("bathes", "bathe")]
)
def test_verb_lemmas_prefer_the_full_form(analyzer: TextAnalyzer, verb: str, lemma: str) -> None:
    (analysis,) = analyzer.analyze([f"The man is {verb} near the river" if verb.endswith("ing") else f"The man {verb}"])
    assert analysis.actions == [lemma]


ANIMALS = (
    "cat dog cow horse sheep goat pig duck goose hen fox wolf bear deer owl "
    + "frog toad mouse rat bat crab fish seal whale shark"
)


def test_caption_with_25_objects_is_dropped_as_excessive(text_filter: TextFilter) -> None:
    caption = _brief("A " + ", a ".join(ANIMALS.split()) + ".")
    record = _filtered(text_filter, caption)
    assert record.texts == []
    (drop,) = record.dropped
    assert (drop.rule, drop.stage, drop.value, drop.threshold) == ("excessive_objects", "text", 25.0, 12.0)
    assert drop.restore().analysis.objects[:3] == ["cat", "dog", "cow"]


def test_detailed_text_may_hold_25_objects(text_filter: TextFilter) -> None:
    text = Text("detailed", "A farmer feeds a " + ", a ".join(ANIMALS.split()) + " in the yard.", CAPTIONER)
    record = _filtered(text_filter, text)
    assert record.dropped == [] and len(text.analysis.objects) == 27


def test_ordinary_brief_caption_is_kept_with_its_analysis(text_filter: TextFilter) -> None:
    caption = _brief("A woman rides a red bicycle")
    record = _filtered(text_filter, caption)
    assert record.texts == [caption] and record.dropped == []
    assert caption.analysis is not None and caption.analysis.actions == ["ride"]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Dog", "too_short"),
        ("Stock photo of a dog on a beach", "boilerplate"),
        ("A dog on a beach https://example.com/dog", "boilerplate"),
        ("<b>A dog</b> on a beach", "boilerplate"),
        ("IMG_20230101.jpg", "boilerplate"),
        ("12:30 2023-01-01 #42 $$$", "non_alphabetic"),
        ("dog dog dog dog dog dog", "repeated_tokens"),
        ("Very nice and so beautiful", "min_object_complexity"),
    ],
)
def test_each_text_rule_drops_its_example(text_filter: TextFilter, text: str, rule: str) -> None:
    record = _filtered(text_filter, _brief(text))
    assert [d.rule for d in record.dropped] == [rule]


def test_detailed_text_without_verbs_fails_min_action_complexity(text_filter: TextFilter) -> None:
    text = Text(
        "detailed", "A large red barn, a wooden fence, green fields, tall trees and a blue sky with clouds.", CAPTIONER
    )
    record = _filtered(text_filter, text)
    (drop,) = record.dropped
    assert (drop.rule, drop.value, drop.threshold) == ("min_action_complexity", 0.0, 1.0)


def test_too_long_brief_caption_reports_its_token_count(text_filter: TextFilter) -> None:
    long_text = (
        "A young man with short dark hair and a friendly smile is standing quietly beside an old wooden door "
        "while he slowly reads a small book and gently holds a cup of hot coffee in his left hand during a calm "
        "and sunny morning"
    )
    record = _filtered(text_filter, _brief(long_text))
    (drop,) = record.dropped
    assert (drop.rule, drop.value, drop.threshold) == ("too_long", 44.0, 40.0)  # 44 words, no punctuation


def test_duplicate_text_of_the_same_image_is_dropped_naming_the_kept_one(text_filter: TextFilter) -> None:
    first = _brief("A woman rides a red bicycle.")
    second = Text("brief", "a woman rides a red bicycle", Provenance("other_captioner", "git"))
    record = _filtered(text_filter, first, second)
    assert record.texts == [first]
    (drop,) = record.dropped
    assert (drop.rule, drop.by, drop.annotation_id) == ("duplicate_text", first.id, second.id)


def test_a_rule_set_to_none_is_off(analyzer: TextAnalyzer) -> None:
    text = _brief("Dog")
    (text.analysis,) = analyzer.analyze([text.text])
    assert check_text(text, BriefTextRules()).rule == "too_short"
    assert check_text(text, BriefTextRules(min_tokens=None, min_object_complexity=None)) is None


def test_text_measures() -> None:
    assert non_alpha_fraction("ab12") == 0.5
    assert repeated_fraction("dog cat dog cat") == 0.5
    assert repeated_fraction("dog dog dog") == 0.0  # fewer than four words: not judged


def test_drop_counts_per_rule(text_filter: TextFilter) -> None:
    before = text_filter.drop_counts["too_short"]
    _filtered(text_filter, _brief("Dog"), _brief("Cat"))
    assert text_filter.drop_counts["too_short"] == before + 2


def test_a_bare_list_of_nouns_is_dropped_as_a_word_list(text_filter: TextFilter) -> None:
    caption = _brief("cat, dog, sofa, lamp, table")
    record = _filtered(text_filter, caption)
    (drop,) = record.dropped
    assert (drop.rule, drop.value, drop.threshold) == ("word_list", 0.0, 0.1)  # no linking word in 5 words
    assert caption.analysis.object_complexity >= 1.0  # the complexity rule alone let it through


@pytest.mark.parametrize(
    "text", ["Black leather office chair", "Golden retriever puppy", "A woman rides a red bicycle"]
)
def test_a_single_noun_phrase_or_a_sentence_is_no_word_list(text_filter: TextFilter, text: str) -> None:
    assert _filtered(text_filter, _brief(text)).dropped == []


def test_proper_nouns_are_counted_apart_from_objects(analyzer: TextAnalyzer) -> None:
    (analysis,) = analyzer.analyze(["Tourists photograph the Eiffel Tower in Paris at night"])
    assert analysis.objects == ["tourist", "night"]
    assert analysis.proper_nouns == ["Eiffel Tower", "Paris"]


ALT_TEXT = Provenance("alt_text", "webdataset:shard-00000.tar")
# Alt-texts as img2dataset collects them: junk, each with the rule that drops it, and real descriptions.
ALT_TEXT_JUNK = [
    ("IMG_2041.JPG", "boilerplate"),
    ("DSC0001", "boilerplate"),
    ("Buy now free shipping", "boilerplate"),
    ("https://shop.example.com/p/12345", "boilerplate"),
    ("Free delivery on orders over $50", "boilerplate"),
    ("Product image 3 of 5", "boilerplate"),
    ("Stock photo of a happy family", "boilerplate"),
    ("Click here to enlarge", "boilerplate"),
    ("thumbnail", "too_short"),
    ("Untitled design", "too_short"),
    ("vintage leather sofa brown living room furniture", "word_list"),
    ("wedding, bride, dress, flowers, church", "word_list"),
]
ALT_TEXT_REAL = [
    "A brown dog running on the beach at sunset",
    "Grilled salmon with lemon and asparagus on a white plate",
    "Aerial view of a small town surrounded by green fields",
    "Two children playing soccer in a park",
    "Black leather office chair",
    "The Eiffel Tower lit up at night",
]


def test_alt_text_junk_is_dropped_each_with_its_rule_and_descriptions_are_kept(text_filter: TextFilter) -> None:
    junk = [Text("brief", text, ALT_TEXT) for text, _ in ALT_TEXT_JUNK]
    real = [Text("brief", text, ALT_TEXT) for text in ALT_TEXT_REAL]
    records = [ImageRecord(f"img{i}", f"file:///{i}.jpg", 64, 64, "jpeg", texts=[t]) for i, t in enumerate(junk + real)]
    text_filter.process(records, None)
    rules = {r.dropped[0].annotation_id: r.dropped[0].rule for r in records if r.dropped}
    assert [rules.get(t.id) for t in junk] == [rule for _, rule in ALT_TEXT_JUNK]
    assert [rules.get(t.id) for t in real] == [None] * len(real)

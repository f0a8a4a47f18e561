"""The faster attribute-ruler matching writes exactly what spaCy's own attribute ruler writes."""

from __future__ import annotations

import importlib

import pytest

from bench.text_filter import generate_captions
from filters.spacy_fast_ruler import FastRulerMatch, speed_up_attribute_ruler
from filters.spacy_model import load_spacy, spacy_model_package

TRICKY = [
    "I ain't gonna do it, and there's nothing we can do.",
    "Ain't nothin' like it! She doin' fine; he's goin' home.",
    "There are two dogs. Is it raining? It's not. Don't!",
    "I'd like that, because I was here whilst you weren't.",
    "The 3 men were  running\n\n fast past the old red barn.",
    "w/out it, coz tho they'd've gone",
    "A woman rides a red bicycle while two children watch from the bench.",
]


@pytest.fixture(scope="module")
def pipelines():
    package = importlib.import_module(spacy_model_package())
    plain, fast = package.load(exclude=["ner"]), package.load(exclude=["ner"])
    speed_up_attribute_ruler(fast)
    return plain, fast


def annotations(doc) -> list[tuple[str, ...]]:
    return [(t.text, t.tag_, t.pos_, str(t.morph), t.lemma_, t.dep_) for t in doc]


def test_tagged_pos_morphology_and_lemmas_are_spacys_own(pipelines) -> None:
    plain, fast = pipelines
    texts = TRICKY + generate_captions(300)
    for ours, theirs in zip(fast.pipe(texts), plain.pipe(texts), strict=True):
        assert annotations(ours) == annotations(theirs)


def test_the_matches_are_the_rulers_own_in_the_same_order(pipelines) -> None:
    plain, _ = pipelines
    for text in TRICKY:
        doc = plain.make_doc(text)
        for name, component in plain.pipeline:
            if name == "attribute_ruler":
                break
            doc = component(doc)
        ruler = plain.get_pipe("attribute_ruler")
        assert FastRulerMatch(ruler)(doc) == ruler.match(doc)


def test_the_shared_pipeline_uses_the_fast_matching() -> None:
    assert isinstance(load_spacy(disable=("ner",)).get_pipe("attribute_ruler").match, FastRulerMatch)

"""spaCy is read from disk once per process: pipelines without more components share the loaded one's
components, and parse exactly as a pipeline loaded without those components."""

from __future__ import annotations

import importlib

import pytest

from bench.ceiling import filters_only
from bench.text_filter import generate_captions
from engine.execute.plan_stages import plan_stages
from engine.execute.stage_groups import group_stages
from engine.execute.stage_runner import StageChainWorker
from filters.blacklist import LEMMA_DISABLE, Blacklist
from filters.spacy_fast_ruler import speed_up_attribute_ruler
from filters.spacy_model import load_spacy, spacy_model_package
from filters.text_analysis import ANALYSIS_DISABLE

# The attribute ruler has rules on the parser's labels (a determiner that is not `det` is a pronoun, `has`
# as ROOT is a verb), so these texts tag differently with the parser and without it.
PARSER_SENSITIVE = [
    "There is a man who has a dog that I like.",
    "Those are the ones you did, but I do.",
    "It is what it is.",
]


@pytest.fixture(scope="module")
def loaded_without_parser():
    """The blacklists' pipeline as it was loaded before it was shared: its own read of the package."""
    nlp = importlib.import_module(spacy_model_package()).load(exclude=list(LEMMA_DISABLE))
    speed_up_attribute_ruler(nlp)
    return nlp


def annotations(doc) -> list[tuple[str, ...]]:
    return [(t.text, t.tag_, t.pos_, str(t.morph), t.lemma_, t.dep_, str(t.is_sent_start)) for t in doc]


def test_a_pipeline_without_more_components_shares_the_loaded_components() -> None:
    text, lemmas = load_spacy(disable=ANALYSIS_DISABLE), load_spacy(disable=LEMMA_DISABLE)
    assert text.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]
    assert lemmas.pipe_names == ["tok2vec", "tagger", "attribute_ruler", "lemmatizer"]
    for name in lemmas.pipe_names:
        assert lemmas.get_pipe(name) is text.get_pipe(name)
    assert lemmas.tokenizer is text.tokenizer and lemmas.vocab is text.vocab
    assert load_spacy(disable=("parser", "ner")) is lemmas


def test_the_shared_pipeline_without_the_parser_parses_as_a_package_loaded_without_it(loaded_without_parser) -> None:
    shared = load_spacy(disable=LEMMA_DISABLE)
    texts = PARSER_SENSITIVE + generate_captions(300)
    for ours, theirs in zip(shared.pipe(texts), loaded_without_parser.pipe(texts), strict=True):
        assert annotations(ours) == annotations(theirs)
    assert shared.batch_size == loaded_without_parser.batch_size
    # The comparison is sharp: running the parser as well would have tagged these texts differently.
    with_parser = load_spacy(disable=ANALYSIS_DISABLE)
    assert [annotations(d) for d in with_parser.pipe(PARSER_SENSITIVE)] != [
        annotations(d) for d in shared.pipe(PARSER_SENSITIVE)
    ]


def test_blacklist_matches_are_the_same_on_the_shared_pipeline(loaded_without_parser) -> None:
    phrases = [*PARSER_SENSITIVE, "the images", "it", "a red car", "these", "that one", "things", "two pictures"]
    phrases += [caption.split(" on ")[0] for caption in generate_captions(200)]
    shared = Blacklist.configured("phrases").matches_many(phrases)
    own = Blacklist.configured("phrases", nlp=loaded_without_parser).matches_many(phrases)
    assert shared == own and any(shared) and not all(shared)


def test_the_text_and_blacklist_filters_of_one_worker_hold_one_spacy_model() -> None:
    config = filters_only("offline")
    (group,) = group_stages(plan_stages(config), config.ray.fuse_cpu_stages)
    worker = StageChainWorker([stage.config for stage in group.stages], config.ingest.max_pixels)
    stages = {stage.name: stage for stage in worker.stages}
    text_nlp, blacklist_nlp = stages["text"].analyzer.nlp, stages["blacklist"].phrases.nlp
    assert "parser" in text_nlp.pipe_names and "parser" not in blacklist_nlp.pipe_names
    assert blacklist_nlp.get_pipe("tagger") is text_nlp.get_pipe("tagger")  # one set of weights in the worker
    assert stages["blacklist"].labels.nlp is blacklist_nlp

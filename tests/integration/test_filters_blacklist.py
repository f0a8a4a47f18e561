"""Blacklists: bundled lists, lemma matching, user files that extend or replace, and the spaCy loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from filters import spacy_model
from filters.blacklist import Blacklist, default_list_path, read_entries


@pytest.fixture(scope="module")
def phrases() -> Blacklist:
    return Blacklist.configured("phrases")


@pytest.mark.parametrize("phrase", ["it", "It", "them", "the image", "the images", "a group", "other objects", "lots"])
def test_bundled_phrase_list_blacklists_meaningless_phrases(phrases: Blacklist, phrase: str) -> None:
    assert phrases.matches(phrase)


@pytest.mark.parametrize("phrase", ["a red car", "a group of people", "the left side of the road", "woman"])
def test_bundled_phrase_list_keeps_visual_phrases(phrases: Blacklist, phrase: str) -> None:
    assert not phrases.matches(phrase)


def test_matching_uses_lemmas_of_parsed_spans(phrases: Blacklist) -> None:
    doc = phrases.nlp("Two pictures hang on the wall")
    assert phrases.matches(doc[0:2]) is False
    assert phrases.matches(doc[1:2]) is True  # "pictures" -> lemma "picture"


def test_matches_many_agrees_with_matches(phrases: Blacklist) -> None:
    texts = ["it", "a dog", "the photos", "a dog"]
    assert phrases.matches_many(texts) == [True, False, True, False]


def test_matches_many_of_nothing_or_of_known_strings_answers_from_the_cache(phrases: Blacklist) -> None:
    assert phrases.matches_many([]) == []
    assert phrases.matches_many(["it", " it "]) == [True, True]
    assert phrases.matches_many(["it"]) == [True]  # already parsed: no new string to parse


def test_list_files_skip_comments_and_blank_lines(tmp_path: Path) -> None:
    file = tmp_path / "mine.txt"
    file.write_text("# a comment\n\nwatermark\n  logo  \n")
    assert read_entries(file) == ["watermark", "logo"]


def test_user_file_extends_the_bundled_list(tmp_path: Path, phrases: Blacklist) -> None:
    file = tmp_path / "mine.txt"
    file.write_text("watermark\n")
    extended = Blacklist.configured("phrases", [file], nlp=phrases.nlp)
    assert extended.matches("the watermarks") and extended.matches("it")
    assert len(extended) == len(phrases) + 1


def test_user_file_replaces_the_bundled_list(tmp_path: Path, phrases: Blacklist) -> None:
    file = tmp_path / "mine.txt"
    file.write_text("watermark\n")
    replaced = Blacklist.configured("phrases", [file], replace=True, nlp=phrases.nlp)
    assert replaced.matches("watermark") and not replaced.matches("it")


def test_missing_user_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        Blacklist.from_files([tmp_path / "nope.txt"])


def test_bundled_lists_ship_with_the_package() -> None:
    assert "it" in read_entries(default_list_path("phrases"))
    assert "background" in read_entries(default_list_path("labels"))


def test_load_spacy_is_cached_per_disable_set() -> None:
    first = spacy_model.load_spacy(disable=("ner", "parser"))
    assert spacy_model.load_spacy(disable=("parser", "ner")) is first
    assert "parser" not in first.pipe_names and "lemmatizer" in first.pipe_names


def test_missing_spacy_model_error_names_both_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spacy_model, "MODEL_PACKAGES", ("no_such_model_a", "no_such_model_b"))
    with pytest.raises(spacy_model.SpacyModelNotFound, match="no_such_model_a and no_such_model_b"):
        spacy_model.spacy_model_package()

"""Phrase and label blacklists: words and phrases without visual meaning, matched on lemmas.

A list is a plain text file, one entry a line, ``#`` starting a comment line. An entry matches a
phrase when the whole phrase, lowercased, with punctuation and leading articles removed, equals the
entry either word for word or lemma for lemma ("the images" matches "image", "Them" matches "they").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources as package_files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spaCy is imported where a pipeline is loaded, not where a profile is parsed
    from spacy.language import Language
    from spacy.tokens import Doc, Span

from filters.spacy_model import load_spacy

DEFAULT_LISTS = ("phrases", "labels")
_ARTICLES = frozenset({"a", "an", "the"})
# Lemmas only need the tagger (POS) and the lemmatizer; the parser and NER are not loaded.
LEMMA_DISABLE = ("parser", "ner")

Key = tuple[str, ...]


def default_list_path(name: str) -> Path:
    """The bundled list ``name`` (``phrases`` or ``labels``)."""
    if name not in DEFAULT_LISTS:
        raise ValueError(f"no bundled blacklist named {name!r} (bundled: {', '.join(DEFAULT_LISTS)})")
    return Path(str(package_files.files("filters") / "blacklists" / f"{name}.txt"))


def read_entries(path: str | Path) -> list[str]:
    """Entries of one list file: non-empty lines not starting with ``#``."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"blacklist file {str(file)!r} does not exist")
    lines = (line.strip() for line in file.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _strip_articles(words: Sequence[str]) -> Key:
    start = 0
    while start < len(words) - 1 and words[start] in _ARTICLES:
        start += 1
    return tuple(words[start:])


def _keys(tokens: Iterable) -> tuple[Key, Key]:
    """(surface key, lemma key) of spaCy tokens, ignoring punctuation and spaces."""
    kept = [t for t in tokens if not (t.is_punct or t.is_space)]
    surface = _strip_articles([t.lower_ for t in kept])
    lemmas = _strip_articles([(t.lemma_ or t.text).lower() for t in kept])
    return surface, lemmas


class Blacklist:
    """A set of phrases; :meth:`matches` tells whether a phrase, span or label is one of them."""

    def __init__(self, entries: Iterable[str], nlp: Language | None = None) -> None:
        self._nlp = nlp
        self.entries = tuple(dict.fromkeys(e.strip() for e in entries if e.strip()))
        self._keys: set[Key] = set()
        self._cache: dict[str, bool] = {}
        for doc in self.nlp.pipe(self.entries):
            self._keys.update(_keys(doc))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], nlp: Language | None = None) -> Blacklist:
        """A blacklist with the entries of every file in ``paths``."""
        entries = [entry for path in paths for entry in read_entries(path)]
        return cls(entries, nlp)

    @classmethod
    def configured(
        cls, default: str, extra_files: Iterable[str | Path] = (), replace: bool = False, nlp: Language | None = None
    ) -> Blacklist:
        """The bundled list ``default`` extended by ``extra_files``, or replaced by them if ``replace``."""
        extra = list(extra_files)
        paths = extra if replace else [default_list_path(default), *extra]
        return cls.from_files(paths, nlp)

    @property
    def nlp(self) -> Language:
        if self._nlp is None:
            self._nlp = load_spacy(disable=LEMMA_DISABLE)
        return self._nlp

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, phrase: str | Span | Doc) -> bool:
        """Whether ``phrase`` (a string, or a spaCy span or doc already parsed) is blacklisted."""
        if not isinstance(phrase, str):  # a spaCy Span or Doc
            return any(key in self._keys for key in _keys(phrase))
        text = phrase.strip()
        if text not in self._cache:
            self._cache[text] = any(key in self._keys for key in _keys(self.nlp(text)))
        return self._cache[text]

    def matches_many(self, phrases: Sequence[str]) -> list[bool]:
        """:meth:`matches` for many strings, parsing the new ones in one ``nlp.pipe`` batch."""
        new = [t for t in dict.fromkeys(p.strip() for p in phrases) if t not in self._cache]
        # nlp.pipe costs milliseconds even on nothing: a batch without new strings skips it.
        for text, doc in zip(new, self.nlp.pipe(new) if new else (), strict=True):
            self._cache[text] = any(key in self._keys for key in _keys(doc))
        return [self._cache[p.strip()] for p in phrases]

"""What a text says, measured with spaCy: objects, attributes, actions, proper nouns, complexity.

Following the FLD-5B text filter: objects are common nouns (compound modifiers excluded; proper nouns are
counted apart, as the paper's Table 3 does), attributes are adjectival, compound and numeric modifiers,
adjectives, numerals and colours, actions are verbs. Object and action complexity are the mean total degree
of object and action tokens in the dependency parse seen as an undirected graph (edges to children plus the
edge to the head), 0 when a text has none; corpus statistics pool the degrees over every token instead
(``filters/statistics.py``). Linking words (determiners, prepositions, verbs, auxiliaries, pronouns,
particles, subordinators) are counted: a description links its nouns with them, a word list does not.
Texts are parsed in batches with ``nlp.pipe`` and the NER component is not loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from spacy.attrs import DEP, HEAD, IS_PUNCT, IS_SPACE, POS
from spacy.language import Language
from spacy.strings import hash_string
from spacy.symbols import ADJ, ADP, AUX, DET, NOUN, NUM, PART, PRON, PROPN, SCONJ, VERB
from spacy.tokens import Doc, Token

from filters.blacklist import Blacklist
from filters.spacy_model import load_spacy
from schemas.records import TextAnalysis

# Proper nouns come from the tagger's PROPN, so named-entity recognition is not needed.
ANALYSIS_DISABLE = ("ner",)
_COLOUR_WORDS = (
    "red orange yellow green blue purple violet pink brown black white gray grey silver gold golden beige tan "
    "maroon navy teal turquoise cyan magenta crimson ivory cream khaki olive lavender"
)
COLOURS = frozenset(_COLOUR_WORDS.split())
_VOWELS = frozenset("aeiou")
COMPOUND = hash_string("compound")
AMOD, NUMMOD = hash_string("amod"), hash_string("nummod")
_COLUMNS = [POS, DEP, HEAD, IS_PUNCT, IS_SPACE]
LINKING_POS = np.array([DET, ADP, AUX, VERB, PRON, PART, SCONJ], dtype=np.uint64)


def dependency_degrees(doc: Doc) -> tuple[np.ndarray, np.ndarray]:
    """The token attribute columns (uint64) and the degree of each token: children, plus 1 unless it is a root."""
    array = doc.to_array(_COLUMNS)
    positions = np.arange(len(doc))
    heads = positions + array[:, 2].astype(np.int64)  # relative offsets, stored as wrapped uint64
    has_head = heads != positions
    degrees = np.bincount(heads[has_head], minlength=len(doc)) + has_head
    return array, degrees


def _cvc(stem: str) -> bool:
    """Whether ``stem`` ends consonant-vowel-consonant (rid, hop, star), the shape that lost an "e"."""
    return (
        len(stem) >= 3
        and stem[-1] not in _VOWELS
        and stem[-1] not in "wxy"
        and stem[-2] in _VOWELS
        and stem[-3] not in _VOWELS
    )


def rule_lemmatizer(nlp: Language) -> Any:
    """The pipeline's lemmatizer when it is rule-based (the one :func:`verb_lemma` corrects), else None."""
    if "lemmatizer" not in nlp.pipe_names:
        return None
    lemmatizer = nlp.get_pipe("lemmatizer")
    return lemmatizer if getattr(lemmatizer, "mode", "") == "rule" else None


def verb_lemma(token: Token, lemmatizer: Any) -> str:
    """The verb's lemma, correcting spaCy's rule lemmatizer where it prefers the shorter form.

    spaCy 3's rule lemmatizer returns the last in-vocabulary candidate, so "rides" becomes "rid" and
    "bathes" "bath". Among its candidates we prefer the one made by stripping only "s", and for
    "-ing"/"-ed" the form with "e" restored after a consonant-vowel-consonant stem (riding -> ride,
    singing -> sing).
    """
    lemma = token.lemma_.lower()
    if lemmatizer is None:
        return lemma
    candidates = lemmatizer.rule_lemmatize(token)
    if len(candidates) < 2:
        return lemma
    text = token.lower_
    if text.endswith("s") and text[:-1] in candidates:
        return text[:-1]
    for suffix in ("ing", "ed"):
        stem = text[: -len(suffix)]
        if text.endswith(suffix) and stem + "e" in candidates and _cvc(stem):
            return stem + "e"
    return lemma


def _proper_noun(token: Token) -> str:
    """A proper noun with its compound proper-noun modifiers ("New York")."""
    start = token.i
    while start > 0 and token.doc[start - 1].dep == COMPOUND and token.doc[start - 1].pos == PROPN:
        start -= 1
    return token.doc[start : token.i + 1].text


def analyze_doc(doc: Doc, lemmatizer: Any = None, blacklist: Blacklist | None = None) -> TextAnalysis:
    """Measure one parsed text; noun phrases that ``blacklist`` matches are left out of ``noun_phrases``.
    ``lemmatizer``: the pipeline's rule lemmatizer (:func:`rule_lemmatizer`), to correct verb lemmas."""
    if len(doc) == 0:
        return TextAnalysis()
    array, degrees = dependency_degrees(doc)
    pos, dep, is_punct, is_space = array[:, 0], array[:, 1], array[:, 3], array[:, 4]
    nominal = (pos == NOUN) | (pos == PROPN)
    object_mask = (pos == NOUN) & (dep != COMPOUND)
    proper_mask = (pos == PROPN) & (dep != COMPOUND)
    action_mask = pos == VERB
    modifier = (dep == AMOD) | (dep == COMPOUND) | (dep == NUMMOD)
    attribute_mask = ~object_mask & ~(pos == PROPN) & ((pos == ADJ) | (pos == NUM) | modifier)
    attribute_mask &= (pos != VERB) & (pos != AUX)
    objects, attributes, actions, proper_nouns = [], [], [], []
    for i in np.flatnonzero(object_mask | attribute_mask | action_mask | nominal):
        token = doc[int(i)]
        if object_mask[i]:
            objects.append(token.lemma_.lower())
        elif proper_mask[i]:
            proper_nouns.append(_proper_noun(token))
        elif action_mask[i]:
            actions.append(verb_lemma(token, lemmatizer))
        elif attribute_mask[i] or token.lower_ in COLOURS:
            attributes.append(token.lemma_.lower())
    chunks = [c for c in doc.noun_chunks if blacklist is None or not blacklist.matches(c)]
    return TextAnalysis(
        num_tokens=int(np.count_nonzero((is_punct == 0) & (is_space == 0))),
        objects=objects,
        attributes=attributes,
        actions=actions,
        proper_nouns=proper_nouns,
        noun_phrases=[(c.start_char, c.end_char) for c in chunks],
        object_complexity=_mean(degrees, object_mask),
        action_complexity=_mean(degrees, action_mask),
        linking_words=int(np.count_nonzero(np.isin(pos, LINKING_POS))),
    )


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``values[mask]``, 0 when empty (plain sums: ndarray.mean costs more than the data on short texts)."""
    count = int(mask.sum())
    return float(values[mask].sum()) / count if count else 0.0


class TextAnalyzer:
    """Parses texts in batches and measures each; holds the spaCy pipeline (load once per worker)."""

    def __init__(self, nlp: Language | None = None, blacklist: Blacklist | None = None, batch_size: int = 256) -> None:
        self.nlp = nlp if nlp is not None else load_spacy(disable=ANALYSIS_DISABLE)
        self.blacklist = blacklist
        self.batch_size = batch_size
        self.lemmatizer = rule_lemmatizer(self.nlp)

    def analyze(self, texts: Sequence[str]) -> list[TextAnalysis]:
        docs = self.nlp.pipe(texts, batch_size=self.batch_size)
        return [analyze_doc(doc, self.lemmatizer, self.blacklist) for doc in docs]

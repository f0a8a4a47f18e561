"""The same matches as spaCy's ``attribute_ruler``, found without running all of its patterns on every text.

The English pipelines' attribute ruler holds ~180 rules: a tag map (one-token patterns on ``TAG``
only, which set POS and morphology) and exceptions, nearly all keyed on a word (``LOWER``) of their
first token. spaCy's Matcher tries every pattern at every token, a quarter of ``nlp.pipe``'s time on
short captions. Here a tag-map rule matches where a token has its tag (a dictionary lookup), an
exception keyed on words runs only when one of its words is in the text, and the rest run as before.
The matches, and their order (by rule), are the ruler's own, and the ruler's own ``set_annotations``
writes them, so the parse is unchanged (``tests/integration/test_filters_text.py`` compares both on captions).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

RULER = "attribute_ruler"


def _values(condition: Any) -> list[str] | None:
    """The strings a token attribute must equal (a string or ``{"IN": [...]}``), None for other conditions."""
    if isinstance(condition, str):
        return [condition]
    if isinstance(condition, dict) and set(condition) == {"IN"}:
        return [str(value) for value in condition["IN"]]
    return None


class FastRulerMatch:
    """A drop-in ``AttributeRuler.match``: (rule id, match id, start, end) for every match, sorted."""

    def __init__(self, ruler: Any) -> None:
        self.strings = ruler.vocab.strings
        self.tag_rules: dict[int, list[tuple[int, int]]] = defaultdict(list)  # tag hash -> (rule, key hash)
        self.word_rules: dict[str, set[int]] = defaultdict(set)
        self.matchers: dict[int, Matcher] = {}
        always = Matcher(ruler.vocab, validate=False)
        has_always = False
        for rule, entry in enumerate(ruler.patterns):
            key = str(rule)
            key_hash = self.strings.add(key)
            patterns = entry["patterns"]
            tags = [_values(p[0]["TAG"]) if len(p) == 1 and set(p[0]) == {"TAG"} else None for p in patterns]
            if all(t is not None for t in tags):
                for tag in {t for values in tags for t in values}:  # type: ignore[union-attr]
                    self.tag_rules[self.strings.add(tag)].append((rule, key_hash))
                continue
            words = [_values(p[0].get("LOWER")) for p in patterns]
            if all(w is not None for w in words):
                matcher = Matcher(ruler.vocab, validate=False)
                matcher.add(key, patterns)
                self.matchers[rule] = matcher
                for word in {w for values in words for w in values}:  # type: ignore[union-attr]
                    self.word_rules[word].add(rule)
            else:
                always.add(key, patterns)
                has_always = True
        self.always = always if has_always else None

    def __call__(self, doc: Doc) -> list[tuple[int, int, int, int]]:
        matches: list[tuple[int, int, int, int]] = []
        rules: set[int] = set()
        for i, token in enumerate(doc):
            for rule, key_hash in self.tag_rules.get(token.tag, ()):
                matches.append((rule, key_hash, i, i + 1))
            rules.update(self.word_rules.get(token.lower_, ()))
        found = []
        if self.always is not None:
            found += self.always(doc, allow_missing=True, as_spans=False)
        for rule in rules:
            found += self.matchers[rule](doc, allow_missing=True, as_spans=False)
        matches += [(int(self.strings[key]), key, start, end) for key, start, end in found]
        matches.sort()
        return matches


def speed_up_attribute_ruler(nlp: Language) -> None:
    """Give the pipeline's attribute ruler (if any) :class:`FastRulerMatch` as its ``match``."""
    if RULER in nlp.pipe_names:
        ruler = nlp.get_pipe(RULER)
        ruler.match = FastRulerMatch(ruler)

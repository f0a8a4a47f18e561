"""The text filter: rules per granularity over what spaCy measured in each image-level text.

Defaults are set against the paper's averages (Table 2: brief 7.95 tokens / 3.23 objects,
detailed 31.65 / 13.31, more detailed 70.53 / 28.06): a text is "excessive" at about 3.5x the
average object count and "too long" at about 5x the average length, so the rules cut the tail of
noisy outputs (run-on lists, hallucinated enumerations) and not ordinary texts. The minimum object
complexity (mean dependency degree of objects; paper 2.80 brief, 4.0 detailed) is set well below
the averages: at 1.0 for brief texts it drops texts whose nouns attach to nothing (bare labels) or that
have no object at all; detailed texts without a single verb (action complexity 0) are keyword lists
rather than descriptions. A word list is measured directly, since its nouns do attach to each other
("cat, dog, sofa, lamp, table": object complexity 2.4): a text of two or more objects, or of five or more
words, with fewer than one linking word (determiner, preposition, verb, pronoun, ...) per ten words is
dropped as ``word_list`` (descriptions have one per two to four words; "Black leather office chair", one
noun phrase, is kept). Boilerplate (URLs, markup, camera file names, stock-photo and shop phrases),
non-alphabetic noise and repetition are dropped at every granularity: web alt-text (source ``alt_text``)
goes through the same rules. Every measured value stays in ``Text.analysis`` for re-thresholding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from filters.base import Annotation, Filter, Verdict, above, below, first_drop
from filters.blacklist import Blacklist
from filters.spacy_model import spacy_model_id, spacy_weights_check
from schemas.bounds import Fraction, NonNegativeFloat, NonNegativeInt, PositiveInt
from schemas.records import ImageRecord, Text, TextAnalysis
from schemas.stage import WeightsCheck

BOILERPLATE = re.compile(
    r"https?://|\bwww\.|\b[\w-]+\.(?:com|net|org|io|co\.uk)\b"  # URLs
    r"|</?[a-zA-Z][^>]*>|&(?:amp|nbsp|quot|lt|gt|#\d+);"  # HTML tags and entities
    r"|\b[\w-]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic)\b"  # file names, and camera file names without extension
    r"|\b(?:IMG|DSC|DSCN|DSCF|PXL|GOPR|MVIMG|SAM)[_-]?\d{3,}"
    r"|\bstock (?:photo|image|picture|footage|illustration|vector)|\broyalty[- ]free\b|\bshutterstock\b"
    r"|\bgetty ?images\b|\bistock(?:photo)?\b|\balamy\b|\bdreamstime\b|\bdepositphotos\b|\b123rf\b"
    r"|\badobe stock\b|\bclick (?:here|to enlarge)\b|\bimage may contain\b|\bno description available\b"
    r"|\b(?:image|photo|picture) \d+ of \d+\b"  # gallery captions
    r"|\bbuy (?:it )?now\b|\bshop now\b|\border (?:it )?now\b|\bfree (?:shipping|delivery)\b|\badd to (?:cart|basket)\b"
    r"|\bin stock\b|\bbest price\b|\b\d+ ?% off\b|\bdiscount code\b",  # shop boilerplate
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")
_NORMALIZE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class TextRules:
    """Thresholds for texts of one granularity; None switches a rule off."""

    min_tokens: NonNegativeInt | None = None
    max_tokens: PositiveInt | None = None
    max_objects: NonNegativeInt | None = None
    min_object_complexity: NonNegativeFloat | None = None
    min_action_complexity: NonNegativeFloat | None = None
    max_non_alpha_fraction: Fraction | None = 0.5
    max_repeated_fraction: Fraction | None = 0.5
    drop_boilerplate: bool = True
    min_linking_fraction: Fraction | None = 0.1


@dataclass(frozen=True)
class BriefTextRules(TextRules):
    min_tokens: NonNegativeInt | None = 3
    max_tokens: PositiveInt | None = 40
    max_objects: NonNegativeInt | None = 12
    min_object_complexity: NonNegativeFloat | None = 1.0


@dataclass(frozen=True)
class DetailedTextRules(TextRules):
    min_tokens: NonNegativeInt | None = 10
    max_tokens: PositiveInt | None = 160
    max_objects: NonNegativeInt | None = 45
    min_object_complexity: NonNegativeFloat | None = 1.5
    min_action_complexity: NonNegativeFloat | None = 1.0
    max_repeated_fraction: Fraction | None = 0.6


@dataclass(frozen=True)
class MoreDetailedTextRules(TextRules):
    min_tokens: NonNegativeInt | None = 20
    max_tokens: PositiveInt | None = 320
    max_objects: NonNegativeInt | None = 90
    min_object_complexity: NonNegativeFloat | None = 1.5
    min_action_complexity: NonNegativeFloat | None = 1.0
    max_repeated_fraction: Fraction | None = 0.65


@dataclass(frozen=True)
class TextFilterOptions:
    """Rules per granularity; ``phrase_blacklists`` extend (or with ``replace_phrase_blacklist`` replace)
    the bundled phrase list used to leave meaningless noun phrases out of ``analysis.noun_phrases``."""

    brief: BriefTextRules = field(default_factory=BriefTextRules)
    detailed: DetailedTextRules = field(default_factory=DetailedTextRules)
    more_detailed: MoreDetailedTextRules = field(default_factory=MoreDetailedTextRules)
    drop_duplicates: bool = True
    batch_size: PositiveInt = 256
    phrase_blacklists: tuple[str, ...] = ()
    replace_phrase_blacklist: bool = False


def non_alpha_fraction(text: str) -> float:
    """Share of non-space characters that are not letters."""
    visible = [c for c in text if not c.isspace()]
    return sum(not c.isalpha() for c in visible) / len(visible) if visible else 1.0


def repeated_fraction(text: str, stop_words: frozenset[str] | set[str] = frozenset()) -> float:
    """Share of content words that repeat an earlier one (0 for texts of fewer than four content words)."""
    words = [w for w in (m.lower() for m in _WORD.findall(text)) if w not in stop_words]
    return 1.0 - len(set(words)) / len(words) if len(words) >= 4 else 0.0


# A text shaped like a list: this many objects, or this many words (the parser may chain a list of nouns into
# one compound, "man woman child dog park", leaving one object).
LIST_OBJECTS, LIST_WORDS = 2, 5


def linking_fraction(analysis: TextAnalysis) -> float | None:
    """Linking words per word, for a text shaped like a list (else None: a short noun phrase is no list)."""
    if analysis.linking_words is None or analysis.num_tokens == 0:
        return None
    if len(analysis.objects) < LIST_OBJECTS and analysis.num_tokens < LIST_WORDS:
        return None
    return analysis.linking_words / analysis.num_tokens


def normalized(text: str) -> str:
    """Lowercase words only, for duplicate detection."""
    return _NORMALIZE.sub(" ", text.lower()).strip()


def check_text(text: Text, rules: TextRules, stop_words: frozenset[str] | set[str] = frozenset()) -> Verdict | None:
    """The first rule of ``rules`` that ``text`` (already analysed) breaks, if any."""
    analysis = text.analysis
    assert analysis is not None, "check_text needs Text.analysis (run TextAnalyzer first)"
    boilerplate = len(BOILERPLATE.findall(text.text)) if rules.drop_boilerplate else 0
    return first_drop(
        above("boilerplate", boilerplate, 0) if rules.drop_boilerplate else None,
        above("non_alphabetic", non_alpha_fraction(text.text), rules.max_non_alpha_fraction),
        above("repeated_tokens", repeated_fraction(text.text, stop_words), rules.max_repeated_fraction),
        above("excessive_objects", len(analysis.objects), rules.max_objects),
        below("too_short", analysis.num_tokens, rules.min_tokens),
        above("too_long", analysis.num_tokens, rules.max_tokens),
        below("min_object_complexity", analysis.object_complexity, rules.min_object_complexity),
        below("min_action_complexity", analysis.action_complexity, rules.min_action_complexity),
        below("word_list", linking_fraction(analysis), rules.min_linking_fraction),
    )


class TextFilter(Filter):
    """spaCy text filter (FLD-5B phase 2): analyses every image-level text, then applies the rules."""

    backend: ClassVar[str] = "spacy_text"
    Options: ClassVar[type] = TextFilterOptions
    targets: ClassVar[tuple[str, ...]] = ("texts",)
    holds_model: ClassVar[bool] = True

    def load(self) -> None:
        options: TextFilterOptions = self.options
        from filters.text_analysis import TextAnalyzer  # imports spaCy: not needed to parse a profile

        self.analyzer = TextAnalyzer(batch_size=options.batch_size)
        self.analyzer.blacklist = Blacklist.configured(
            "phrases", options.phrase_blacklists, options.replace_phrase_blacklist, nlp=self.analyzer.nlp
        )
        self.stop_words = frozenset(self.analyzer.nlp.Defaults.stop_words)

    @property
    def model_id(self) -> str:
        return spacy_model_id()

    def check_weights(self) -> WeightsCheck:
        return spacy_weights_check(self.name, self.backend)

    def measure(self, records: list[ImageRecord]) -> None:
        # Analyses written before linking words were counted are redone (under today's definitions).
        pending = [
            text
            for record in records
            for text in record.texts
            if text.analysis is None or text.analysis.linking_words is None
        ]
        for text, analysis in zip(pending, self.analyzer.analyze([t.text for t in pending]), strict=True):
            text.analysis = analysis

    def check(self, annotation: Text, record: ImageRecord) -> Verdict | None:
        return check_text(annotation, getattr(self.options, annotation.granularity), self.stop_words)

    def decide(self, record: ImageRecord) -> Iterator[tuple[Annotation, Verdict]]:
        kept_by_text: dict[str, str] = {}
        for text in record.texts:
            verdict = self.check(text, record)
            if verdict is None and self.options.drop_duplicates:
                key = normalized(text.text)
                if key in kept_by_text:
                    verdict = Verdict("duplicate_text", 1.0, None, by=kept_by_text[key])
                else:
                    kept_by_text[key] = text.id
            if verdict is not None:
                yield text, verdict

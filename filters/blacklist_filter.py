"""Drops grounded phrases and region labels that a blacklist matches (no visual meaning).

OCR regions are never checked: their text is what is written in the image, whatever it says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from filters.base import Annotation, Filter, Verdict
from filters.blacklist import LEMMA_DISABLE, Blacklist
from filters.spacy_model import load_spacy, spacy_model_id, spacy_weights_check
from schemas.records import ImageRecord
from schemas.stage import WeightsCheck


@dataclass(frozen=True)
class BlacklistOptions:
    """Extra list files extend the bundled ``phrases``/``labels`` lists, or replace them with ``replace_defaults``."""

    phrase_files: tuple[str, ...] = ()
    label_files: tuple[str, ...] = ()
    replace_defaults: bool = False
    label_kinds: tuple[str, ...] = ("object", "proposal", "region_caption", "dense_caption")


class BlacklistFilter(Filter):
    backend: ClassVar[str] = "blacklist"
    Options: ClassVar[type] = BlacklistOptions
    holds_model: ClassVar[bool] = True

    def load(self) -> None:
        options: BlacklistOptions = self.options
        nlp = load_spacy(disable=LEMMA_DISABLE)
        self.phrases = Blacklist.configured("phrases", options.phrase_files, options.replace_defaults, nlp)
        self.labels = Blacklist.configured("labels", options.label_files, options.replace_defaults, nlp)

    @property
    def model_id(self) -> str:
        return spacy_model_id()

    def check_weights(self) -> WeightsCheck:
        return spacy_weights_check(self.name, self.backend)

    def measure(self, records: list[ImageRecord]) -> None:
        # One nlp.pipe pass over every new string of the batch; decide() then hits the caches.
        self.phrases.matches_many([p.phrase for r in records for p in r.phrases])
        self.labels.matches_many([g.text for r in records for g in r.regions if g.kind in self.options.label_kinds])

    def decide(self, record: ImageRecord) -> Iterator[tuple[Annotation, Verdict]]:
        for phrase in record.phrases:
            if self.phrases.matches(phrase.phrase):
                yield phrase, Verdict("blacklisted_phrase")
        for region in record.regions:
            if region.kind in self.options.label_kinds and self.labels.matches(region.text):
                yield region, Verdict("blacklisted_label")

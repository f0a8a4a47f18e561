"""Classes that break the stage contract, each in one way (the tests check the message names it)."""

from dataclasses import dataclass
from typing import ClassVar

from filters.base import Filter
from specialists.base import Specialist


@dataclass(frozen=True)
class NoOptions:
    pass


class NoAnnotate(Specialist):
    backend: ClassVar[str] = "no_annotate"
    Options: ClassVar[type] = NoOptions

    @property
    def model_id(self) -> str:
        return "x"

    def load(self) -> None:
        pass


class NoBackend(Filter):
    targets: ClassVar[tuple[str, ...]] = ("regions",)
    Options: ClassVar[type] = NoOptions

    def check(self, annotation, record):
        return None


class UndataclassedOptions(Filter):
    backend: ClassVar[str] = "plain_options"
    Options: ClassVar[type] = dict

    def decide(self, record):
        return iter(())


class NoDecision(Filter):
    backend: ClassVar[str] = "no_decision"
    Options: ClassVar[type] = NoOptions


class NotAStage:
    backend = "not_a_stage"
    Options = NoOptions

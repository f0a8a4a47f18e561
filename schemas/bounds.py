"""Ranges of setting values, written in the type: ``batch_size: PositiveInt = 4``.

A profile is validated into typed dataclasses (``engine/config/typed_config.py``); a field whose type is
``Annotated[<type>, Range(...)]`` or ``Annotated[<type>, NON_EMPTY]`` is checked there, at load, and a
value out of range fails with the key named. The aliases below cover the settings' common cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds of a number: each given bound must hold (``ge``: >=, ``gt``: >, ``le``: <=, ``lt``: <)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` (e.g. ``must be >= 1``), or None when it is in range."""
        checks = (
            (self.ge, value >= self.ge if self.ge is not None else True, ">="),
            (self.gt, value > self.gt if self.gt is not None else True, ">"),
            (self.le, value <= self.le if self.le is not None else True, "<="),
            (self.lt, value < self.lt if self.lt is not None else True, "<"),
        )
        broken = [f"{sign} {bound:g}" for bound, holds, sign in checks if bound is not None and not holds]
        return f"must be {' and '.join(broken)}" if broken else None


@dataclass(frozen=True, slots=True)
class NonEmpty:
    """A list or mapping that must hold at least one item."""

    def problem(self, value: Any) -> str | None:
        """``must not be empty`` for an empty collection, else None."""
        return None if len(value) else "must not be empty"


NON_EMPTY = NonEmpty()

PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0.0)]
NonNegativeFloat = Annotated[float, Range(ge=0.0)]
Fraction = Annotated[float, Range(ge=0.0, le=1.0)]

"""Fixed-size uniform samples of a stream (reservoir sampling), deterministic for a given seed."""

from __future__ import annotations

import random
from typing import Generic, TypeVar

T = TypeVar("T")


class Reservoir(Generic[T]):
    """Keeps a uniform sample of at most ``size`` items of everything added, and the number seen."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self.items: list[T] = []
        self._random = random.Random(seed)

    def add(self, item: T) -> None:
        slot = self.slot()
        if slot is not None:
            self.place(slot, item)

    def slot(self) -> int | None:
        """Count one more item; the index it takes in the sample, or None if it is not kept.

        Lets a caller build an expensive item only when it is kept (then call :meth:`place`).
        """
        self.seen += 1
        if len(self.items) < self.size:
            return len(self.items)
        slot = self._random.randrange(self.seen)
        return slot if slot < self.size else None

    def place(self, slot: int, item: T) -> None:
        if slot == len(self.items):
            self.items.append(item)
        else:
            self.items[slot] = item

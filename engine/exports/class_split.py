"""A train/val split for detection exports whose validation set can measure every class.

Images are first placed by image id (:func:`engine.exports.split.split_of`), then a few are moved,
deterministically (by their split position, then image id, never by stream order):

1. a class none of whose images is in train gets one back (the val image closest to the cut);
2. a class with at least two labelled images and none in val gets one (the train image closest to
   the cut), so the val split holds labels of every such class;
3. images without labels go to val only if train has some too; otherwise they all go to train.

A move never takes the last image of a class from a split that needs it. Memory is a few
candidates per class plus the unlabelled val images, not the version: the exporter writes each
image where the hash puts it and renames the moved few at the end (:meth:`ClassCoverageSplit.moves`).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from engine.exports.split import Split, split_position

CANDIDATES_PER_CLASS = 4
OTHER: dict[Split, Split] = {"train": "val", "val": "train"}


@dataclass(frozen=True)
class Placed:
    """One labelled image as the split saw it; ``key`` is how the caller finds its files again."""

    key: str
    image_id: str
    position: float
    classes: frozenset[int]
    split: Split


Candidates = list[tuple[float, str, Placed]]  # a min-heap of (how good a move it is, image id, image)


class ClassCoverageSplit:
    """Feed each image with :meth:`add` (which says where to write it), then apply :meth:`moves`."""

    def __init__(self, val_fraction: float) -> None:
        self.val_fraction = val_fraction
        self.images: dict[int, Counter[Split]] = {}
        self.unlabelled: Counter[Split] = Counter()
        self.unlabelled_val: list[str] = []
        # Per class and split, the images closest to the cut, the best to move to the other split:
        # train images with the smallest positions, val images with the largest.
        self._candidates: dict[Split, dict[int, Candidates]] = {"train": {}, "val": {}}

    def add(self, key: str, image_id: str, classes: frozenset[int]) -> Split:
        """Record an image with the classes of its labels; return the split it is written to first."""
        position = split_position(image_id)
        split: Split = "val" if position < self.val_fraction else "train"
        if not classes:
            self.unlabelled[split] += 1
            if split == "val":
                self.unlabelled_val.append(key)
            return split
        placed = Placed(key, image_id, position, classes, split)
        closeness = -position if split == "train" else position
        for class_id in classes:
            self.images.setdefault(class_id, Counter())[split] += 1
            heap = self._candidates[split].setdefault(class_id, [])
            entry = (closeness, image_id, placed)
            if len(heap) < CANDIDATES_PER_CLASS:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
        return split

    def _needs(self, class_id: int, split: Split) -> bool:
        total = sum(self.images[class_id].values())
        return total >= 1 if split == "train" else total >= 2 and self.val_fraction > 0

    def moves(self) -> dict[str, Split]:
        """The images to move (``key`` -> the split they belong in), decided once every image was added."""
        where: dict[str, Split] = {}
        original: dict[str, Split] = {}
        for by_class in self._candidates.values():
            for heap in by_class.values():
                for *_, placed in heap:
                    where[placed.key] = original[placed.key] = placed.split

        def movable(placed: Placed, to: Split) -> bool:
            source = OTHER[to]
            return where[placed.key] == source and not any(
                self.images[c][source] == 1 and self._needs(c, source) for c in placed.classes
            )

        for to in ("train", "val"):
            for class_id in sorted(self.images):
                if self.images[class_id][to] or not self._needs(class_id, to):
                    continue
                candidates = sorted(self._candidates[OTHER[to]].get(class_id, []), key=lambda e: e[:2], reverse=True)
                choice = next((placed for *_, placed in candidates if movable(placed, to)), None)
                if choice is None:
                    continue
                for c in choice.classes:
                    self.images[c][OTHER[to]] -= 1
                    self.images[c][to] += 1
                where[choice.key] = to
        moves = {key: split for key, split in where.items() if split != original[key]}
        if not self.unlabelled["train"]:
            moves.update(dict.fromkeys(self.unlabelled_val, "train"))
        return moves

"""What curation skipped in a version: images per rule, and the near-duplicate groups with their paths."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.version_diff import skipped_rows, source_paths

SHOWN_GROUPS = 10


@dataclass(frozen=True)
class DuplicateGroup:
    """A representative (annotated) and the paths of the copies skipped for it."""

    representative: str
    representative_uri: str
    copies: list[str]


@dataclass
class SkippedSummary:
    """Skipped images per rule, how many near-duplicate groups, and the largest few groups."""

    rules: Counter[str] = field(default_factory=Counter)
    groups: int = 0
    largest: list[DuplicateGroup] = field(default_factory=list)


def skipped_summary(root: Where, manifest: Manifest, shown: int = SHOWN_GROUPS) -> SkippedSummary:
    """Read ``manifest``'s skipped table: counts per rule and the ``shown`` largest near-duplicate groups
    (most copies first, then by representative id), each with its representative's path."""
    rows = skipped_rows(root, manifest)
    members: dict[str, list[str]] = {}
    for row in rows.values():
        if row["duplicate_of"]:
            members.setdefault(row["duplicate_of"], []).append(row["source_uri"])
    largest = sorted(members, key=lambda rep: (-len(members[rep]), rep))[:shown]
    paths = source_paths(root, manifest, largest)
    return SkippedSummary(
        rules=Counter(row["rule"] for row in rows.values()),
        groups=len(members),
        largest=[
            DuplicateGroup(rep, (paths.get(rep) or ["(not in this version)"])[0], sorted(members[rep]))
            for rep in largest
        ],
    )

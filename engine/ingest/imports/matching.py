"""Which image an imported entry labels: by its path relative to an input root, its full path, or its base name.

An entry's name (COCO's ``file_name``, a table's ``path``) is matched to an image's ``source_uri`` (and every
other place the same bytes were found) in this order:

1. the image's path relative to one of the run's inputs (``train2017/0001.jpg`` under ``--input coco/``), or
   its member path inside a WebDataset shard or table (``<uri>#a/0001.jpg``);
2. the image's full path or URI;
3. the base name (``0001.jpg``), when exactly one entry of the file has that base name.

Pure functions of strings: the run reports what matched before annotating, and the import stage looks up
each image the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from engine.ingest.imports.formats import ImportedEntry


def _clean(path: str) -> str:
    """A name as a comparable relative or absolute path: ``file://`` decoded, ``./`` and backslashes gone."""
    if path.startswith("file://"):
        path = unquote(urlparse(path).path)
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _root(root: str) -> str:
    cleaned = _clean(root)
    return cleaned if cleaned.endswith("/") else cleaned + "/"


def image_names(uri: str, roots: Sequence[str]) -> list[str]:
    """The paths ``uri`` may go by in an annotations file, most specific first (not its base name)."""
    container, _, member = uri.partition("#")
    path = _clean(container)
    names = []
    if member:
        names.append(_clean(member))
    for root in roots:
        prefix = _root(root)
        if path.startswith(prefix):
            names.append(path[len(prefix) :])
    names.append(path)
    return list(dict.fromkeys(names))


def base_name(uri: str) -> str:
    """The base name of an image (of its member inside a container)."""
    container, _, member = uri.partition("#")
    return _base(_clean(member or container))


@dataclass
class EntryIndex:
    """An annotations file's entries by name and by unique base name."""

    entries: list[ImportedEntry]
    by_name: dict[str, int] = field(default_factory=dict)
    by_base: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bases: dict[str, list[int]] = {}
        for index, entry in enumerate(self.entries):
            name = _clean(entry.name)
            self.by_name.setdefault(name, index)
            bases.setdefault(_base(name), []).append(index)
        self.by_base = {base: found[0] for base, found in bases.items() if len(found) == 1}

    def find(self, uris: Iterable[str], roots: Sequence[str]) -> int | None:
        """The index of the entry that labels the image found at ``uris``, or None."""
        uris = list(uris)
        for uri in uris:
            for name in image_names(uri, roots):
                if name in self.by_name:
                    return self.by_name[name]
        for uri in uris:
            if base_name(uri) in self.by_base:
                return self.by_base[base_name(uri)]
        return None


@dataclass(frozen=True)
class MatchReport:
    """What one file's entries matched: entries and images matched, entries matched by nothing."""

    entries: int
    matched_entries: int
    matched_images: int
    unmatched: tuple[str, ...]

    def to_dict(self, shown: int = 10) -> dict[str, object]:
        return {
            "entries": self.entries,
            "matched_entries": self.matched_entries,
            "matched_images": self.matched_images,
            "unmatched": len(self.unmatched),
            "unmatched_examples": list(self.unmatched[:shown]),
        }


def match_report(index: EntryIndex, images: Iterable[Sequence[str]], roots: Sequence[str]) -> MatchReport:
    """Match every image (the list of places each was found) against ``index``."""
    hit: set[int] = set()
    matched_images = 0
    for uris in images:
        found = index.find(uris, roots)
        if found is not None:
            hit.add(found)
            matched_images += 1
    unmatched = tuple(e.name for i, e in enumerate(index.entries) if i not in hit)
    return MatchReport(len(index.entries), len(hit), matched_images, unmatched)

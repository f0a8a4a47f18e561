"""What a run can vouch is gone: the images of the previous version it may tombstone, and those it keeps.

An image leaves a version (``source_removed``) only when its absence is positive: every path of it lies
under an input this run listed whole (a folder or prefix, a WebDataset shard, a Parquet table of image
bytes) and was not found there. An image whose paths lie elsewhere (an input left out of this run, an
entry of a path list or a Parquet table of paths, a file ``--limit`` left for a later run) is kept as the
previous version had it: a version never shrinks because an input was not looked at. ``--prune``
vouches for every path this run did not find, except those ``--limit`` left for later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.ingest.discover import LIST_SUFFIXES
from engine.store.location import location


@dataclass(frozen=True)
class InputScope:
    """The URIs a run listed whole (``roots``) and the listed files it left unprobed (``deferred``)."""

    roots: tuple[str, ...]
    deferred: frozenset[str] = frozenset()
    everything: bool = False

    def vouches_gone(self, uri: str) -> bool:
        """Whether ``uri``, not found among this run's probed files, is positively gone."""
        if uri in self.deferred:
            return False
        return self.everything or any(uri == root or uri.startswith((f"{root}/", f"{root}#")) for root in self.roots)


def input_scope(inputs: Iterable[str], deferred: Iterable[str] = (), everything: bool = False) -> InputScope:
    """The scope of a run's ``inputs``: each folder, prefix or container, never a list of paths (a list
    names files anywhere; a Parquet table of paths yields no URI under itself, so it vouches for none)."""
    roots = []
    for item in inputs:
        place = location(item)
        if place.suffix not in LIST_SUFFIXES:
            roots.append(place.uri.rstrip("/"))
    return InputScope(tuple(roots), frozenset(deferred), everything)


def kept_out_of_scope(
    previous: Mapping[str, Sequence[str]], seen_paths: Iterable[str], seen_ids: Iterable[str], scope: InputScope
) -> set[str]:
    """Images of the previous version (image_id -> paths) to keep as they were: none of their paths was
    probed this run, none of their content ids was found, and not every path is vouched gone."""
    seen_paths, seen_ids = set(seen_paths), set(seen_ids)
    return {
        image_id
        for image_id, uris in previous.items()
        if image_id not in seen_ids
        and not any(uri in seen_paths for uri in uris)
        and not all(scope.vouches_gone(uri) for uri in uris)
    }

"""What a run can vouch is gone: the images of the previous version it may tombstone, and those it keeps.

An image leaves a version (``source_removed``) only when its absence is positive: every path of it lies
under an input this run listed whole (a folder or prefix, a WebDataset shard, a Parquet table of image
bytes) and was not found there. An image whose paths lie elsewhere (an input left out of this run, an
entry of a path list or a Parquet table of paths, a file ``--limit`` left for a later run) is kept as the
previous version had it: a version never shrinks because an input was not looked at. ``--prune``
vouches for every path this run did not find, except those ``--limit`` left for later.

Everything per image here is Arrow and NumPy columns: no Python object per image or path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.discover import LIST_SUFFIXES
from engine.store.location import location

Strings = pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class InputScope:
    """The URIs a run listed whole (``roots``) and the listed files it left unprobed (``deferred``)."""

    roots: tuple[str, ...]
    deferred: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    everything: bool = False

    def vouches_gone(self, uri: str) -> bool:
        """Whether ``uri``, not found among this run's probed files, is positively gone."""
        return bool(self.vouches_gone_all(pa.array([uri], pa.string()))[0])

    def vouches_gone_all(self, uris: Strings) -> np.ndarray:
        """:meth:`vouches_gone` for each of ``uris`` (booleans)."""
        uris = one_array(uris)
        gone = np.full(len(uris), self.everything)
        if not self.everything:
            for root in self.roots:
                under = pc.or_(pc.starts_with(uris, f"{root}/"), pc.starts_with(uris, f"{root}#"))
                gone |= flags(pc.or_(pc.equal(uris, root), under))
        if len(self.deferred):
            gone &= ~flags(pc.is_in(uris, value_set=self.deferred))
        return gone


def input_scope(inputs: Iterable[str], deferred: Iterable[str] | Strings = (), everything: bool = False) -> InputScope:
    """The scope of a run's ``inputs``: each folder, prefix or container, never a list of paths (a list
    names files anywhere; a Parquet table of paths yields no URI under itself, so it vouches for none)."""
    roots = []
    for item in inputs:
        place = location(item)
        if place.suffix not in LIST_SUFFIXES:
            roots.append(place.uri.rstrip("/"))
    listed = deferred if isinstance(deferred, pa.Array | pa.ChunkedArray) else pa.array(list(deferred), pa.string())
    return InputScope(tuple(roots), one_array(listed), everything)


def unseen_and_not_gone(
    ids: Strings, places: Strings, seen_paths: Strings, seen_ids: Strings, scope: InputScope
) -> np.ndarray:
    """For each earlier image (``ids`` and their ``places``: lists of paths): whether to keep it as it was.
    It is kept when its content id was not found in this run (``seen_ids``), none of its paths was probed
    (``seen_paths``), and not every path is vouched gone (an image without paths counts as gone)."""
    places = one_array(places)
    paths = pc.list_flatten(places)
    owners = pc.list_parent_indices(places).to_numpy()
    count = len(places)
    seen_path = flags(pc.is_in(paths, value_set=one_array(seen_paths)))
    any_seen = np.bincount(owners, weights=seen_path, minlength=count) > 0
    gone_paths = np.bincount(owners, weights=scope.vouches_gone_all(paths), minlength=count)
    all_gone = gone_paths == pc.fill_null(pc.list_value_length(places), 0).to_numpy(zero_copy_only=False)
    id_seen = flags(pc.is_in(one_array(ids), value_set=one_array(seen_ids)))
    return ~id_seen & ~any_seen & ~all_gone


def kept_out_of_scope(previous: pa.Table, seen_paths: Strings, seen_ids: Strings, scope: InputScope) -> pa.Array:
    """The ids of the images of the previous version (``previous``: ``image_id``, ``source_uris``) to keep as
    they were: none of their paths was probed, none of their content ids was found, and not every path is
    vouched gone."""
    keep = unseen_and_not_gone(previous["image_id"], previous["source_uris"], seen_paths, seen_ids, scope)
    return one_array(previous["image_id"]).filter(pa.array(keep))


def one_array(values: Strings) -> pa.Array:
    """``values`` as one Arrow array (a chunked column's chunks combined)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def flags(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow column as NumPy, nulls False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool)

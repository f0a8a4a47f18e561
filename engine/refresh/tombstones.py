"""Tombstones: the images of the parent version that a new version no longer holds, and why.

``source_removed``: none of the image's paths is among the inputs any more.
``content_changed``: a path of the image now holds other bytes; ``replaced_by`` is the new content id.
``quarantined``: the file is still there but cannot be annotated now (e.g. a lower ``max_pixels``).
``skipped``: the image is still there but curation skips it now (a stricter gate, or a new copy of it
that an earlier version annotated too); its row in ``skipped/`` says why.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.curation import Ids, id_set
from engine.refresh.scope import flags
from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from schemas.arrow import TOMBSTONE_SCHEMA

PREVIOUS_IMAGES = pa.schema([pa.field("image_id", pa.string()), pa.field("source_uris", pa.list_(pa.string()))])
PATH_IDS = pa.schema([pa.field("source_uri", pa.string()), pa.field("image_id", pa.string())])


def find_tombstones(previous: pa.Table, kept: Ids, path_ids: pa.Table, skipped: Ids = ()) -> pa.Table:
    """Tombstone rows (:data:`TOMBSTONE_SCHEMA`, by image id) for the images of ``previous``
    (:data:`PREVIOUS_IMAGES`) that are not among the ``kept`` ids.

    ``path_ids`` (:data:`PATH_IDS`): every input path of this run and its content id (null when
    quarantined); ``skipped``: the ids of the images curation skipped in this run.
    """
    gone = previous.filter(pc.invert(pc.is_in(previous.column("image_id"), value_set=id_set(kept))))
    gone = gone.sort_by("image_id")
    ids = gone.column("image_id").combine_chunks() if gone.num_rows else pa.array([], pa.string())
    places = _lists(gone.column("source_uris"))
    paths, owners = pc.list_flatten(places), pc.cast(pc.list_parent_indices(places), pa.int64())
    at = pc.index_in(paths, value_set=path_ids.column("source_uri").combine_chunks())
    now = path_ids.column("image_id").combine_chunks().take(at)  # null: not found, or quarantined now
    other = pc.fill_null(pc.not_equal(now, ids.take(owners)), False)
    changed = (
        pa.table({"owner": owners.filter(other), "id": now.filter(other)})
        .group_by("owner")
        .aggregate(
            [("id", "min")]  # the first of the ids its paths hold now
        )
    )
    slots = pc.index_in(pa.array(np.arange(len(ids), dtype=np.int64)), value_set=changed.column("owner"))
    replaced_by = changed.column("id_min").take(slots)
    found = np.bincount(owners.to_numpy(), weights=flags(pc.is_valid(at)), minlength=len(ids)) > 0
    is_skipped = flags(pc.is_in(ids, value_set=id_set(skipped)))
    reason = np.select(
        [is_skipped, flags(pc.is_valid(replaced_by)), found],
        ["skipped", "content_changed", "quarantined"],
        "source_removed",
    )
    empty = pc.equal(pc.list_value_length(places), 0)
    first = pc.list_element(pc.if_else(empty, pa.scalar([""], places.type), places), 0)
    no_replacement = pa.nulls(len(ids), pa.string())
    return pa.Table.from_arrays(
        [ids, first, places, pa.array(reason, pa.string()), pc.if_else(is_skipped, no_replacement, replaced_by)],
        schema=TOMBSTONE_SCHEMA,
    )


def _lists(column: pa.ChunkedArray) -> pa.ListArray:
    """A ``source_uris`` column as one list array, a missing list as an empty one."""
    places = column.combine_chunks() if column.num_chunks else pa.array([], pa.list_(pa.string()))
    return pc.if_else(pc.is_null(places), pa.scalar([], pa.list_(pa.string())), places)


def tombstoned_ids(root: Where, manifest: Manifest) -> pa.Array:
    """The image ids a version tombstoned (images that left it)."""
    parts = [read_shard(root, shard, ["image_id"]).column(0) for shard in manifest.tombstones]
    return pa.concat_arrays([pa.array([], pa.string()), *(chunk for part in parts for chunk in part.chunks)])

"""Tombstones: the images of the parent version that a new version no longer holds, and why.

``source_removed``: none of the image's paths is among the inputs any more.
``content_changed``: a path of the image now holds other bytes; ``replaced_by`` is the new content id.
``quarantined``: the file is still there but cannot be annotated now (e.g. a lower ``max_pixels``).
``skipped``: the image is still there but curation skips it now (a stricter gate, or a new copy of it
that an earlier version annotated too); its row in ``skipped/`` says why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pyarrow as pa

from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from engine.store.writer import ShardInfo

TOMBSTONE_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("source_uris", pa.list_(pa.string())),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("replaced_by", pa.string()),
    ]
)


def find_tombstones(
    previous: Mapping[str, list[str]],
    kept: set[str],
    path_ids: Mapping[str, str | None],
    skipped: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Tombstone rows for the images of ``previous`` (image_id -> paths) that are not in ``kept``.

    ``path_ids`` maps every input path of this run to its content id (None when quarantined);
    ``skipped``: the image ids curation skipped in this run.
    """
    rows = []
    for image_id in sorted(set(previous) - kept):
        uris = list(previous[image_id])
        replaced = sorted({path_ids[u] for u in uris if path_ids.get(u) not in (None, image_id)})  # type: ignore[misc]
        if image_id in skipped:
            reason, replaced_by = "skipped", None
        elif replaced:
            reason, replaced_by = "content_changed", replaced[0]
        elif any(u in path_ids for u in uris):
            reason, replaced_by = "quarantined", None
        else:
            reason, replaced_by = "source_removed", None
        rows.append(
            {
                "image_id": image_id,
                "source_uri": uris[0] if uris else "",
                "source_uris": uris,
                "reason": reason,
                "replaced_by": replaced_by,
            }
        )
    return rows


def previous_paths(root: Where, shards: Sequence[ShardInfo]) -> dict[str, list[str]]:
    """image_id -> source paths of every row of a version's ``shards``."""
    paths: dict[str, list[str]] = {}
    for shard in shards:
        table = read_shard(root, shard, ["image_id", "source_uris"])
        for image_id, uris in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
            paths[image_id] = list(uris or [])
    return paths


def tombstoned_ids(root: Where, manifest: Manifest) -> set[str]:
    """The image ids a version tombstoned (images that left it)."""
    return {i for shard in manifest.tombstones for i in read_shard(root, shard, ["image_id"]).column(0).to_pylist()}

"""Carrying annotations over from the previous version, so a rerun never redoes or duplicates work.

An image is carried over when the previous version holds it and every stage fingerprint it
recorded equals the current pipeline's. A previous shard whose rows all carry over unchanged is
referenced as it is; otherwise the rows that carry over are rewritten into a new shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config import WriterConfig
from engine.errors import OutputError
from engine.ingest import WorkItem
from engine.manifest import Manifest
from engine.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA


@dataclass
class CarryOver:
    image_ids: set[str] = field(default_factory=set)
    shards: list[ShardInfo] = field(default_factory=list)


def _stages_of(value: object) -> dict[str, str]:
    items = value.items() if isinstance(value, dict) else (value or [])
    return {str(k): str(v) for k, v in items}  # type: ignore[union-attr]


def read_shard(root: Path, shard: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one shard listed by a manifest, with a clear error if it is missing or corrupt."""
    path = root / shard.path
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise OutputError(f"{root}: shard {shard.path} listed in the manifest is missing") from None
    except (OSError, pa.ArrowInvalid) as error:
        raise OutputError(f"{root}: shard {shard.path} is unreadable ({error})") from None


def plan_carry_over(
    root: Path,
    previous: Manifest | None,
    work: list[WorkItem],
    stage_fingerprints: dict[str, str],
    writer_config: WriterConfig,
    run_id: str,
) -> CarryOver:
    """Decide which images of ``work`` the previous version already holds, and the shards that keep them."""
    carry = CarryOver()
    if previous is None:
        return carry
    wanted = {item.image_id: list(item.source_uris) for item in work}
    writer = ShardWriter(root, "annotations", f"part-{run_id}-carried", ANNOTATION_SCHEMA, writer_config)
    for shard in previous.shards:
        keys = read_shard(root, shard, ["image_id", "source_uris", "stages"]).to_pylist()
        keep = [
            row["image_id"] in wanted
            and row["image_id"] not in carry.image_ids
            and _stages_of(row["stages"]) == stage_fingerprints
            for row in keys
        ]
        unchanged = all(keep) and all(list(row["source_uris"]) == wanted[row["image_id"]] for row in keys)
        carry.image_ids.update(row["image_id"] for row, kept in zip(keys, keep, strict=True) if kept)
        if unchanged:
            carry.shards.append(shard)
        elif any(keep):
            table = read_shard(root, shard).filter(pa.array(keep))
            uris = [wanted[i] for i in table.column("image_id").to_pylist()]
            index = table.schema.get_field_index("source_uris")
            table = table.set_column(index, "source_uris", pa.array(uris, type=pa.list_(pa.string())))
            table = table.set_column(
                table.schema.get_field_index("source_uri"), "source_uri", pa.array([u[0] for u in uris], pa.string())
            )
            writer.write(table)
    carry.shards.extend(writer.close())
    return carry

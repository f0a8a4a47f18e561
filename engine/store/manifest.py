"""Versioned output directories: each completed run publishes a manifest, written last and atomically.

Layout of an output directory::

    annotations/*.parquet      annotation shards (shared by the versions that list them)
    quarantine/*.parquet       inputs that could not be annotated, with the reason
    tombstones/*.parquet       images of the parent version that this version no longer has, and why
    probes/*.parquet           (path, size, mtime) -> content id of every probed file, to skip re-hashing
    versions/v000001.json      the manifest of each published version
    manifest.json              a copy of the latest version's manifest (replaced atomically)
    _runs/<run_id>/            journals of runs in progress or killed (see engine/store/journal.py)
    .lock                      the run writing here now (see engine/store/output_lock.py)

A version is exactly the shards its manifest lists; shards of an unfinished run are never listed.
``versions/vNNNNNN.json`` is the commit point: the latest version is the highest one there, even
if a run was killed before it refreshed ``manifest.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import OutputError
from engine.store.counts import Counts, merge_counts
from engine.store.writer import ShardInfo
from schemas.arrow import SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"
VERSIONS_DIR = "versions"


@dataclass
class Manifest:
    """What one published version of a dataset holds, and how it was made."""

    version: int
    run_id: str
    created_at: str
    schema_version: str
    config_fingerprint: str
    profile: str
    stages: dict[str, str]
    models: dict[str, str]
    shards: list[ShardInfo]
    quarantine: list[ShardInfo]
    counts: Counts
    parent: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tombstones: list[ShardInfo] = field(default_factory=list)
    probe_index: ShardInfo | None = None
    stage_kinds: dict[str, str] = field(default_factory=dict)

    @classmethod
    def next(
        cls,
        previous: Manifest | None,
        *,
        run_id: str,
        config_fingerprint: str,
        profile: str,
        stages: dict[str, str],
        stage_kinds: dict[str, str],
        models: dict[str, str],
        shards: list[ShardInfo],
        quarantine: list[ShardInfo],
        tombstones: list[ShardInfo],
        probe_index: ShardInfo | None,
        extra: dict[str, Any],
    ) -> Manifest:
        """The version after ``previous`` (the first one when None), holding what the caller lists.

        Its number, parent, creation time, schema version and counts are set here, the same way for
        every writer of versions (a run, a refinement round).
        """
        counts = merge_counts(s.counts for s in shards)
        counts["quarantined"] = merge_counts(s.counts for s in quarantine)
        return cls(
            version=(previous.version if previous else 0) + 1,
            run_id=run_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            schema_version=SCHEMA_VERSION,
            config_fingerprint=config_fingerprint,
            profile=profile,
            stages=stages,
            models=models,
            shards=shards,
            quarantine=quarantine,
            counts=counts,
            parent=previous.version if previous else None,
            extra=extra,
            tombstones=tombstones,
            probe_index=probe_index,
            stage_kinds=stage_kinds,
        )

    def files(self) -> list[str]:
        """Every file this version lists, relative to the output directory."""
        listed = self.shards + self.quarantine + self.tombstones + ([self.probe_index] if self.probe_index else [])
        return [s.path for s in listed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "fld-engine",
            "version": self.version,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            "config_fingerprint": self.config_fingerprint,
            "profile": self.profile,
            "stages": self.stages,
            "models": self.models,
            "shards": [s.to_dict() for s in self.shards],
            "quarantine": [s.to_dict() for s in self.quarantine],
            "counts": self.counts,
            "parent": self.parent,
            "extra": self.extra,
            "tombstones": [s.to_dict() for s in self.tombstones],
            "probe_index": None if self.probe_index is None else self.probe_index.to_dict(),
            "stage_kinds": self.stage_kinds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            version=int(data["version"]),
            run_id=data["run_id"],
            created_at=data["created_at"],
            schema_version=data["schema_version"],
            config_fingerprint=data["config_fingerprint"],
            profile=data.get("profile", ""),
            stages=dict(data.get("stages", {})),
            models=dict(data.get("models", {})),
            shards=[ShardInfo.from_dict(s) for s in data["shards"]],
            quarantine=[ShardInfo.from_dict(s) for s in data.get("quarantine", [])],
            counts=data.get("counts", {}),
            parent=data.get("parent"),
            extra=data.get("extra", {}),
            tombstones=[ShardInfo.from_dict(s) for s in data.get("tombstones", [])],
            probe_index=ShardInfo.from_dict(data["probe_index"]) if data.get("probe_index") else None,
            stage_kinds=dict(data.get("stage_kinds", {})),
        )


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temp file, fsync it, and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def version_path(root: Path, version: int) -> Path:
    return root / VERSIONS_DIR / f"v{version:06d}.json"


def publish(root: Path, manifest: Manifest) -> None:
    """Publish a version: its own manifest first, then the top-level pointer, each atomically."""
    write_json_atomically(version_path(root, manifest.version), manifest.to_dict())
    write_json_atomically(root / MANIFEST_NAME, manifest.to_dict())


def list_versions(root: Path) -> list[int]:
    folder = root / VERSIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(int(p.stem[1:]) for p in folder.glob("v*.json") if p.stem[1:].isdigit())


def read_manifest(root: Path, version: int | None = None) -> Manifest | None:
    """The manifest of ``version`` (latest when None), or None if the directory has no version yet."""
    if version is None:
        version = (list_versions(root) or [None])[-1]
    path = root / MANIFEST_NAME if version is None else version_path(root, version)
    if not path.exists():
        if version is not None:
            raise OutputError(f"{root}: version {version} does not exist (versions: {list_versions(root) or 'none'})")
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise OutputError(f"{path}: unreadable manifest ({type(error).__name__}: {error})") from None


def require_manifest(root: Path, version: int | None = None) -> Manifest:
    manifest = read_manifest(root, version)
    if manifest is None:
        raise OutputError(f"{root}: no published version (no {MANIFEST_NAME}); run `fld-engine run` first")
    return manifest


def all_manifests(root: Path) -> list[Manifest]:
    """Every published version's manifest, oldest first."""
    return [require_manifest(root, version) for version in list_versions(root)]

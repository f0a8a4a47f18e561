"""Versioned datasets: each completed run publishes a manifest, written last, under a number never used before.

Layout of a dataset (a local folder or an object-store prefix such as ``s3://bucket/corpus``)::

    annotations/*.parquet      annotation shards (shared by the versions that list them)
    quarantine/*.parquet       inputs that could not be annotated, with the reason
    skipped/*.parquet          good images curation did not annotate (near-duplicates, image gates), with the rule
    tombstones/*.parquet       images of the parent version that this version no longer has, and why
    probes/*.parquet           every probed file's size and change key -> content id, to skip re-hashing
    versions/v000001.json      the manifest of each published version
    manifest.json              a copy of the latest version's manifest
    _runs/<run_id>/            journals of runs in progress or killed (see engine/store/journal.py)
    .lock                      the run writing here now (see engine/store/output_lock.py)

A version is exactly the files its manifest lists (each with its size and SHA-256); files of an
unfinished run are never listed. Publishing creates ``versions/vNNNNNN.json`` only if it does not
exist (a hard link locally, ``If-None-Match: *`` on S3): that is the commit point. Then
``manifest.json`` is replaced. The latest version is the highest number in ``versions/`` or in
``manifest.json``, so a deleted ``vN.json`` is still read from ``manifest.json`` (a run restores
it) and its number is never given to another version.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.errors import OutputError
from engine.execute.stage_timing import StageTiming
from engine.store.counts import Counts, merge_counts
from engine.store.location import Location, Where, location
from engine.store.writer import ShardInfo
from schemas.arrow import SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"
VERSIONS_DIR = "versions"
VERSION_FILE = re.compile(r"v(\d+)\.json")


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
    # The probe index's parts (``probes/*.parquet``, each sorted by URI); one part in versions written before
    # the index was written in parts, none in versions written before it existed.
    probe_index: list[ShardInfo] = field(default_factory=list)
    stage_kinds: dict[str, str] = field(default_factory=dict)
    # What each stage did in the run that made this version (images, busy seconds, load seconds, errors);
    # empty in versions written before it was recorded, and when nothing was annotated.
    stage_timings: list[StageTiming] = field(default_factory=list)
    skipped: list[ShardInfo] = field(default_factory=list)

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
        probe_index: list[ShardInfo] | None,
        extra: dict[str, Any],
        number: int | None = None,
        stage_timings: list[StageTiming] | None = None,
        skipped: list[ShardInfo] | None = None,
    ) -> Manifest:
        """The version after ``previous`` (the first one when None), holding what the caller lists.

        Its number (``number``, by default the one after ``previous``; see :func:`next_version_number`),
        parent, creation time, schema version and counts are set here, the same way for every writer of
        versions (a run, a refinement round).
        """
        counts = merge_counts(s.counts for s in shards)
        counts["quarantined"] = merge_counts(s.counts for s in quarantine)
        counts["skipped"] = merge_counts(s.counts for s in skipped or [])
        return cls(
            version=number if number is not None else (previous.version if previous else 0) + 1,
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
            probe_index=list(probe_index or []),
            stage_kinds=stage_kinds,
            stage_timings=list(stage_timings or []),
            skipped=list(skipped or []),
        )

    def files(self) -> list[str]:
        """Every file this version lists, relative to the output directory."""
        listed = self.shards + self.quarantine + self.skipped + self.tombstones
        listed += self.probe_index
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
            "probe_index": [s.to_dict() for s in self.probe_index],
            "stage_kinds": self.stage_kinds,
            "stage_timings": [t.to_dict() for t in self.stage_timings],
            "skipped": [s.to_dict() for s in self.skipped],
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
            probe_index=_probe_parts(data.get("probe_index")),
            stage_kinds=dict(data.get("stage_kinds", {})),
            stage_timings=[StageTiming.from_dict(t) for t in data.get("stage_timings", [])],
            skipped=[ShardInfo.from_dict(s) for s in data.get("skipped", [])],
        )


def _probe_parts(listed: list[dict[str, Any]] | dict[str, Any] | None) -> list[ShardInfo]:
    """A manifest's probe index parts: a list of them, one (versions before parts), or none."""
    if not listed:
        return []
    return [ShardInfo.from_dict(s) for s in ([listed] if isinstance(listed, dict) else listed)]


def write_json(target: Location, data: dict[str, Any]) -> None:
    """Write JSON to ``target``, whole or absent."""
    target.write_bytes(_json_bytes(data))


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode()


def version_path(root: Where, version: int) -> Location:
    return location(root) / VERSIONS_DIR / f"v{version:06d}.json"


def publish(root: Where, manifest: Manifest) -> None:
    """Publish a version: create its own manifest only if that number is free (the commit point), then
    replace the top-level copy."""
    root = location(root)
    data = _json_bytes(manifest.to_dict())
    if not version_path(root, manifest.version).create_exclusive(data):
        raise OutputError(
            f"{root}: version {manifest.version} was published by another writer meanwhile; "
            "this run published nothing (its shards are journaled: run it again to finish)"
        )
    (root / MANIFEST_NAME).write_bytes(data)


def list_versions(root: Where) -> list[int]:
    """The numbers of the version files in ``versions/``, ascending."""
    folder = location(root) / VERSIONS_DIR
    numbers = []
    for entry in folder.iter_files(recursive=False):
        match = VERSION_FILE.fullmatch(entry.uri.rsplit("/", 1)[-1])
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def _parse(target: Location) -> Manifest:
    try:
        return Manifest.from_dict(json.loads(target.read_bytes()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise OutputError(f"{target}: unreadable manifest ({type(error).__name__}: {error})") from None


def _pointer(root: Location, strict: bool = False) -> Manifest | None:
    """The manifest in ``manifest.json`` (a copy of the latest version's), or None if there is none.

    Unless ``strict``, an unreadable copy is ignored with a warning: the version files are the record.
    """
    target = root / MANIFEST_NAME
    if not target.exists():
        return None
    try:
        return _parse(target)
    except OutputError as error:
        if strict:
            raise
        warnings.warn(f"{error}; ignored, the {VERSIONS_DIR}/ files are read instead", stacklevel=3)
        return None


def _unlisted_pointer(root: Location, listed: list[int]) -> Manifest | None:
    """``manifest.json``'s version when its ``versions/`` file is missing (deleted), else None."""
    pointer = _pointer(root, strict=not listed)
    if pointer is None or pointer.version in listed:
        return None
    warnings.warn(
        f"{root}: {VERSIONS_DIR}/v{pointer.version:06d}.json is missing; version {pointer.version} is read "
        f"from {MANIFEST_NAME}",
        stacklevel=3,
    )
    return pointer


def read_manifest(root: Where, version: int | None = None) -> Manifest | None:
    """The manifest of ``version`` (latest when None), or None if the dataset has no version yet."""
    root = location(root)
    listed = list_versions(root)
    if version is not None and version in listed:
        return _parse(version_path(root, version))
    unlisted = _unlisted_pointer(root, listed)
    if version is None:
        if unlisted is not None and unlisted.version > max(listed, default=0):
            return unlisted
        return _parse(version_path(root, listed[-1])) if listed else None
    if unlisted is not None and unlisted.version == version:
        return unlisted
    raise OutputError(f"{root}: version {version} does not exist (versions: {listed or 'none'})")


def require_manifest(root: Where, version: int | None = None) -> Manifest:
    manifest = read_manifest(root, version)
    if manifest is None:
        raise OutputError(f"{location(root)}: no published version (no {MANIFEST_NAME}); run `fld-engine run` first")
    return manifest


def all_manifests(root: Where) -> list[Manifest]:
    """Every published version's manifest, oldest first (one missing from ``versions/`` read from
    ``manifest.json``)."""
    root = location(root)
    listed = list_versions(root)
    manifests = [_parse(version_path(root, version)) for version in listed]
    pointer = _unlisted_pointer(root, listed)
    if pointer is not None:
        manifests.append(pointer)
    return sorted(manifests, key=lambda m: m.version)


def next_version_number(root: Where, history: list[Manifest]) -> int:
    """The number of the next version: one above every number used before (the version files, the
    ``manifest.json`` copy and ``history``), so a deleted version file never lets a number repeat."""
    root = location(root)
    pointer = _pointer(root)
    used = [*list_versions(root), *(m.version for m in history), *([pointer.version] if pointer else [])]
    return max(used, default=0) + 1


def restore_missing_version(root: Where) -> int | None:
    """Recreate ``versions/vN.json`` from ``manifest.json`` when it was deleted (the writer does this,
    holding the lock); return N, or None when nothing was missing."""
    root = location(root)
    pointer = _pointer(root)
    if pointer is None or pointer.version in list_versions(root):
        return None
    if version_path(root, pointer.version).create_exclusive(_json_bytes(pointer.to_dict())):
        restored = f"{VERSIONS_DIR}/v{pointer.version:06d}.json"
        warnings.warn(f"{root}: restored the deleted {restored} from {MANIFEST_NAME}", stacklevel=2)
    return pointer.version

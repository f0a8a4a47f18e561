"""The engine's configuration: YAML profiles (safe_load) into typed, validated objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import yaml

from curation.settings import CurationSettings
from engine.registry import FILTER_BACKENDS, SPECIALIST_BACKENDS, stage_class
from engine.typed_config import ConfigError, build
from refine.merge import MergeSettings
from refine.settings import TrainSettings
from schemas.fingerprint import canonical_hash
from schemas.florence_tasks import REFINE_TASKS
from schemas.stage import Resources

DEFAULT_PROFILE = "offline"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True)
class IngestConfig:
    """``max_pixels`` guards against decompression bombs; larger images are quarantined."""

    max_pixels: int = 89_478_485
    max_bytes: int = 256 * 1024 * 1024
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS


@dataclass(frozen=True)
class StageConfig:
    """One configured stage: a name, a registered backend, its resources and validated options."""

    name: str
    backend: str
    resources: Resources
    options: Any

    def create(self, kind: str) -> Any:
        return stage_class(kind, self.backend)(self.name, self.options, self.resources)


@dataclass(frozen=True)
class WriterConfig:
    rows_per_shard: int = 1000
    row_group_rows: int = 256
    compression: str = "zstd"
    compression_level: int = 3


@dataclass(frozen=True)
class RayConfig:
    """``address``: a cluster to join (``auto`` or ``ray://...``); None starts a local Ray.
    ``fuse_cpu_stages``: consecutive CPU-only stages share a Ray Data step (see
    ``engine/stage_groups.py``); false gives every stage its own actor pool or tasks."""

    address: str | None = None
    num_cpus: int | None = None
    object_store_memory_mb: int | None = None
    decode_batch_size: int = 8
    fuse_cpu_stages: bool = True


@dataclass(frozen=True)
class RefineConfig:
    """Phase 3: ``checkpoint`` is the Florence-2 model refinement starts from (a local directory or an
    HF id in the cache); ``task_weights`` gives each training task's keep probability; ``rounds`` is the
    default for ``run`` (0: no refinement) and ``fld-engine refine``."""

    checkpoint: str | None = None
    rounds: int = 0
    task_weights: dict[str, float] = field(default_factory=lambda: {task: 1.0 for task in REFINE_TASKS})
    train: TrainSettings = field(default_factory=TrainSettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    num_workers: int = 1
    use_gpu: bool = False
    annotate_batch_size: int = 4
    annotate_num_gpus: float = 0.0
    max_new_tokens: int = 256
    num_beams: int = 3


@dataclass(frozen=True)
class EngineConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    curation: CurationSettings = field(default_factory=CurationSettings)
    specialists: tuple[StageConfig, ...] = ()
    filters: tuple[StageConfig, ...] = ()
    writer: WriterConfig = field(default_factory=WriterConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    profile: str = DEFAULT_PROFILE

    def fingerprint(self) -> str:
        """A stable hash of everything that decides what the engine computes (how it is written does not count)."""
        return canonical_hash({"specialists": self.specialists, "filters": self.filters})


def _stage(kind: str, data: Any, where: str) -> StageConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name and backend")
    unknown = sorted(set(data) - {"name", "backend", "resources", "options"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: backend, name, options, resources)")
    backend = data.get("backend")
    backends = SPECIALIST_BACKENDS if kind == "specialists" else FILTER_BACKENDS
    if backend not in backends:
        raise ConfigError(f"{where}.backend: {backend!r} is not one of {', '.join(sorted(backends))}")
    name = data.get("name", backend)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: expected a non-empty string")
    options_class = stage_class(kind, backend).Options
    return StageConfig(
        name=name,
        backend=backend,
        resources=build(Resources, data.get("resources"), f"{where}.resources"),
        options=build(options_class, data.get("options"), f"{where}.options"),
    )


def parse_config(data: Any, profile: str = "custom") -> EngineConfig:
    """Validate a profile mapping into an :class:`EngineConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: expected a mapping at the top level")
    sections = {"ingest", "curation", "specialists", "filters", "writer", "ray", "refine"}
    unknown = sorted(set(data) - sections)
    if unknown:
        raise ConfigError(f"config: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(sections))})")
    stages: dict[str, tuple[StageConfig, ...]] = {}
    for kind in ("specialists", "filters"):
        items = data.get(kind) or []
        if not isinstance(items, list):
            raise ConfigError(f"{kind}: expected a list of stages")
        stages[kind] = tuple(_stage(kind, item, f"{kind}[{i}]") for i, item in enumerate(items))
        names = [s.name for s in stages[kind]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{kind}: stage name {duplicates[0]!r} is used twice")
    return EngineConfig(
        ingest=build(IngestConfig, data.get("ingest"), "ingest"),
        curation=build(CurationSettings, data.get("curation"), "curation"),
        specialists=stages["specialists"],
        filters=stages["filters"],
        writer=build(WriterConfig, data.get("writer"), "writer"),
        ray=build(RayConfig, data.get("ray"), "ray"),
        refine=build(RefineConfig, data.get("refine"), "refine"),
        profile=profile,
    )


def load_config(path: str | Path | None = None) -> EngineConfig:
    """Load a profile: a YAML file path, a bundled profile name (``offline``, ``fld5b``), or the default."""
    if path is None:
        path = DEFAULT_PROFILE
    candidate = Path(path)
    if candidate.suffix not in {".yaml", ".yml"} and not candidate.exists():
        bundled = package_files.files("engine") / "profiles" / f"{path}.yaml"
        if not bundled.is_file():
            raise ConfigError(f"config: no profile file or bundled profile named {str(path)!r}")
        return parse_config(yaml.safe_load(bundled.read_text()), profile=str(path))
    if not candidate.is_file():
        raise ConfigError(f"config: file {str(candidate)!r} does not exist")
    try:
        data = yaml.safe_load(candidate.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config: {candidate} is not valid YAML: {error}") from None
    return parse_config(data, profile=candidate.stem)

"""The engine's settings: typed, frozen dataclasses that a profile (``engine/config/profile.py``) is validated into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from engine.config.registry import FILTERS, SPECIALISTS, stage_class
from filters.curation.settings import CurationSettings
from refine.merge import MergeSettings
from refine.settings import TrainSettings
from schemas.fingerprint import NOT_IDENTITY, canonical_hash
from schemas.florence_tasks import REFINE_TASKS
from schemas.pixel_limits import PixelLimits
from schemas.stage import Resources, StageKind

DEFAULT_PROFILE = "offline"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True)
class IngestConfig:
    """``max_pixels`` guards against decompression bombs; larger images are quarantined.
    ``caption_granularity``: the granularity of the captions that come with the inputs (alt text)."""

    max_pixels: int = 89_478_485
    max_bytes: int = 256 * 1024 * 1024
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    caption_granularity: Literal["brief", "detailed", "more_detailed"] = "brief"

    def limits(self) -> dict[str, int]:
        """The limits that decide quarantine: a probe made under other limits is not reused."""
        return {"max_pixels": self.max_pixels, "max_bytes": self.max_bytes}


@dataclass(frozen=True)
class StageConfig:
    """One configured stage: a name, a registered backend, its resources and validated options.

    A profile's sections make :class:`SpecialistConfig` and :class:`FilterConfig`, whose ``kind`` is a class
    attribute: the section says it, so it is no setting (nor part of the plain data or a fingerprint).
    ``limits`` overrides the backend's pixel limits (``schemas/pixel_limits.py``) value by value; they decide
    which images the stage refuses, not what it computes, so they are no part of a fingerprint.
    """

    kind: ClassVar[StageKind]
    name: str
    backend: str
    resources: Resources
    options: Any
    limits: PixelLimits | None = field(default=None, metadata=NOT_IDENTITY)
    # What the stage is given, from its place in the run order (set when the stages are planned, see
    # ``engine/refresh/incremental.py`` stage_inputs); derived, so neither a setting nor part of a fingerprint.
    inputs: str = field(default="", metadata={"derived": True})

    def create(self) -> Any:
        """A new, not yet set up, instance of the stage."""
        stage = stage_class(self.kind, self.backend)(self.name, self.options, self.resources)
        stage.inputs = self.inputs
        stage.limits = stage.pixel_limits.overridden_by(self.limits)
        return stage


@dataclass(frozen=True)
class SpecialistConfig(StageConfig):
    kind: ClassVar[StageKind] = SPECIALISTS


@dataclass(frozen=True)
class FilterConfig(StageConfig):
    kind: ClassVar[StageKind] = FILTERS


STAGE_CONFIGS: dict[str, type[StageConfig]] = {SPECIALISTS: SpecialistConfig, FILTERS: FilterConfig}


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
    ``engine/execute/stage_groups.py``); false gives every stage its own actor pool or tasks."""

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
    # Stage names in run order, where the profile interleaves specialists and filters (its ``stages:`` list);
    # empty: the specialists, then the filters.
    order: tuple[str, ...] = ()

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        """Every configured stage in run order: as ``order`` lists them, or the specialists, then the filters."""
        if not self.order:
            return self.specialists + self.filters
        by_name = {stage.name: stage for stage in self.specialists + self.filters}
        return tuple(by_name[name] for name in self.order)

    def fingerprint(self) -> str:
        """A stable hash of everything that decides what the engine computes (how it is written does not count)."""
        plain: dict[str, Any] = {"specialists": self.specialists, "filters": self.filters}
        if self.order:
            plain["order"] = self.order
        return canonical_hash(plain)

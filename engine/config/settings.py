"""The engine's settings: typed, frozen dataclasses that a profile (``engine/config/profile.py``) is validated into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa

from engine.config.registry import FILTERS, SPECIALISTS, stage_class
from filters.curation.settings import CurationSettings
from refine.merge import MergeSettings
from refine.settings import TrainSettings
from schemas.bounds import NON_EMPTY, Fraction, NonNegativeFloat, NonNegativeInt, PositiveInt
from schemas.fingerprint import NOT_IDENTITY, canonical_hash
from schemas.florence_tasks import REFINE_TASKS
from schemas.pixel_limits import PixelLimits
from schemas.stage import Resources, StageKind

DEFAULT_PROFILE = "offline"
# The codecs Parquet writes (pyarrow's names); ``none`` writes uncompressed pages.
ParquetCompression = Literal["none", "snappy", "gzip", "brotli", "lz4", "zstd"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MIN_OBJECT_STORE_MB = 75  # Ray refuses a smaller object store


@dataclass(frozen=True)
class IngestConfig:
    """``max_pixels`` guards against decompression bombs; larger images are quarantined.
    ``caption_granularity``: the granularity of the captions that come with the inputs (alt text)."""

    max_pixels: PositiveInt = 89_478_485
    max_bytes: PositiveInt = 256 * 1024 * 1024
    extensions: Annotated[tuple[str, ...], NON_EMPTY] = IMAGE_EXTENSIONS
    caption_granularity: Literal["brief", "detailed", "more_detailed"] = "brief"

    def __post_init__(self) -> None:
        bad = [extension for extension in self.extensions if not extension.startswith(".") or len(extension) < 2]
        if bad:
            raise ValueError(f"extensions are written with their dot, like '.jpg': {bad[0]!r}")

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
    """A shard closes at ``rows_per_shard`` rows or once its first row has waited ``max_shard_seconds``
    (what a ``kill -9`` can lose); ``workers``: shard-writing actors of a run (0: one per 8 CPUs of the
    cluster, at least one)."""

    rows_per_shard: PositiveInt = 1000
    row_group_rows: PositiveInt = 256
    compression: ParquetCompression = "zstd"
    compression_level: int | None = 3
    max_shard_seconds: NonNegativeFloat = 120.0
    workers: NonNegativeInt = 0

    def __post_init__(self) -> None:
        if self.compression != "none" and not pa.Codec.is_available(self.compression):
            raise ValueError(f"compression {self.compression!r} is not available in this pyarrow build")
        level = self.level()
        if level is not None:
            low = pa.Codec.minimum_compression_level(self.compression)
            high = pa.Codec.maximum_compression_level(self.compression)
            if not low <= level <= high:
                raise ValueError(f"compression_level for {self.compression} must be in [{low}, {high}], got {level}")

    def level(self) -> int | None:
        """The level to write with: None for a codec without levels (snappy, lz4), whatever was set."""
        if self.compression == "none" or not pa.Codec.supports_compression_level(self.compression):
            return None
        return self.compression_level


@dataclass(frozen=True)
class RefreshConfig:
    """``max_stage_retries``: how often a stage that failed on an image (a stage error) is tried again on later
    runs before its error stands (``engine/refresh/incremental.py``); 0: never (only ``--full`` recomputes)."""

    max_stage_retries: int = 3

    def __post_init__(self) -> None:
        if self.max_stage_retries < 0:
            raise ValueError(f"max_stage_retries must be >= 0, got {self.max_stage_retries}")


@dataclass(frozen=True)
class RayConfig:
    """``address``: a cluster to join (``auto`` or ``ray://...``); None starts a local Ray.
    ``fuse_cpu_stages``: consecutive CPU-only stages share a Ray Data step (see
    ``engine/execute/stage_groups.py``); false gives every stage its own actor pool or tasks.
    ``worker_death_retries``: how often a batch whose model worker died (out of memory, segfault) is sent
    again whole before its images are isolated one by one (``engine/execute/worker_deaths.py``)."""

    address: str | None = None
    num_cpus: PositiveInt | None = None
    object_store_memory_mb: PositiveInt | None = None
    decode_batch_size: PositiveInt = 8
    fuse_cpu_stages: bool = True
    # For long runs (README "Ray settings for long runs"); a started local Ray takes all of them, a joined
    # cluster the Ray Data ones (its nodes were started with their own store size and spill directory).
    spill_dir: str | None = None
    max_errored_blocks: int = 0
    map_retries: int = 0
    actor_init_retries: int = 3
    target_max_block_size_mb: int = 128
    op_reservation_ratio: float = 0.5
    object_store_fraction: float | None = None
    downstream_backpressure_ratio: float | None = 2.0
    worker_death_retries: int = 1
    # Planning in parts (``engine/execute/probe_phase.py``): listing rows per range, and about as many images
    # per id partition; more than one part runs the parts as Ray tasks. Parts grow with the corpus so that the
    # pieces they exchange keep at least ``plan_min_piece_rows`` rows (``engine.partitions.keys.part_rows_for``).
    plan_part_rows: PositiveInt = 262_144
    plan_min_piece_rows: NonNegativeInt = 1024  # 0: parts of plan_part_rows whatever the corpus

    def __post_init__(self) -> None:
        checks = [
            (self.num_cpus is None or self.num_cpus >= 1, "num_cpus must be at least 1"),
            (
                self.object_store_memory_mb is None or self.object_store_memory_mb >= MIN_OBJECT_STORE_MB,
                f"object_store_memory_mb must be at least {MIN_OBJECT_STORE_MB} (Ray's minimum)",
            ),
            (self.spill_dir is None or self.spill_dir.strip() != "", "spill_dir must be a directory, not empty"),
            (self.max_errored_blocks >= -1, "max_errored_blocks must be -1 (unlimited), 0 or more"),
            (self.map_retries >= 0, "map_retries must be 0 or more"),
            (self.worker_death_retries >= 0, "worker_death_retries must be 0 or more"),
            (self.actor_init_retries >= 0, "actor_init_retries must be 0 or more"),
            (self.target_max_block_size_mb >= 1, "target_max_block_size_mb must be at least 1"),
            (0 < self.op_reservation_ratio <= 1, "op_reservation_ratio must be in (0, 1]"),
            (
                self.object_store_fraction is None or 0 < self.object_store_fraction <= 1,
                "object_store_fraction must be in (0, 1]",
            ),
            (
                self.downstream_backpressure_ratio is None or self.downstream_backpressure_ratio > 0,
                "downstream_backpressure_ratio must be above 0 (or null: off)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True)
class RefineConfig:
    """Phase 3: ``checkpoint`` is the Florence-2 model refinement starts from (a local directory or an
    HF id in the cache); ``task_weights`` gives each training task's keep probability; ``rounds`` is the
    default for ``run`` (0: no refinement) and ``fld-engine refine``."""

    checkpoint: str | None = None
    rounds: NonNegativeInt = 0
    # Cross-fitting (refine/folds.py): k models per round, each trained without its fold and annotating only it.
    # 1: one model trains on and annotates everything (today's cheaper way, for huge corpora).
    folds: PositiveInt = 2
    task_weights: dict[str, Fraction] = field(default_factory=lambda: {task: 1.0 for task in REFINE_TASKS})
    train: TrainSettings = field(default_factory=TrainSettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    num_workers: PositiveInt = 1
    use_gpu: bool = False
    annotate_batch_size: PositiveInt = 4
    annotate_num_gpus: NonNegativeFloat = 0.0
    max_new_tokens: PositiveInt = 256
    num_beams: PositiveInt = 3


@dataclass(frozen=True)
class EngineConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    curation: CurationSettings = field(default_factory=CurationSettings)
    specialists: tuple[StageConfig, ...] = ()
    filters: tuple[StageConfig, ...] = ()
    writer: WriterConfig = field(default_factory=WriterConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
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

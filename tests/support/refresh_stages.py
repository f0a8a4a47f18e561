"""Cheap test-only stages for the refresh tests. Each logs the image ids it processes, so a test can
count exactly which images a run sent through which stage (Ray workers write the same log files)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from engine.config import registry
from schemas.records import ImageRecord, Region, Text
from schemas.stage import BaseStage, StageKind
from specialists.base import Specialist
from tests.support.local_ray import local_ray

SPECIALIST = "test_halves"
FILTER = "test_min_score"
CONSUMER = "test_region_labels"
REPO = Path(__file__).resolve().parents[2]
# Ray workers register the test backends at start; the hook runs before the driver's sys.path is applied.
RUNTIME_ENV = {
    "worker_process_setup_hook": "tests.support.refresh_stages.register",
    "env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
}


def log_processed(log_dir: str, stage: str, records: list[ImageRecord]) -> None:
    """Append one line per image; a single O_APPEND write per batch keeps lines whole across processes."""
    if not log_dir or not records:
        return
    fd = os.open(Path(log_dir) / f"{stage}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(f"{r.image_id}\n" for r in records).encode())
    finally:
        os.close(fd)


def processed(log_dir: Path, stage: str) -> list[str]:
    path = log_dir / f"{stage}.log"
    return path.read_text().split() if path.exists() else []


@dataclass(frozen=True)
class HalvesOptions:
    """``seconds_per_image`` slows the stage down so a test can kill a run in the middle."""

    log_dir: str = ""
    seconds_per_image: float = 0.0
    caption_prefix: str = "mean color"


class HalvesSpecialist(Specialist):
    """A brief text with the mean color, and one box per image half scored by the half's brightness."""

    backend: ClassVar[str] = SPECIALIST
    produces: ClassVar[frozenset[str]] = frozenset({"texts", "regions"})
    Options: ClassVar[type] = HalvesOptions

    @property
    def model_id(self) -> str:
        return "test-halves/1"

    def load(self) -> None:
        pass

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        provenance = self.provenance()
        for image, record in zip(images, records, strict=True):
            height, width = image.shape[:2]
            red, green, blue = (int(v) for v in image.reshape(-1, 3).mean(axis=0))
            record.texts.append(Text("brief", f"{self.options.caption_prefix} {red} {green} {blue}", provenance))
            for label, (x0, x1) in (("left", (0, width // 2)), ("right", (width // 2, width))):
                score = float(image[:, x0:x1].mean()) / 255.0
                record.regions.append(Region("object", (x0, 0, x1, height), label, provenance, score=score))
        time.sleep(self.options.seconds_per_image * len(records))
        log_processed(self.options.log_dir, self.name, records)


@dataclass(frozen=True)
class RegionLabelsOptions:
    log_dir: str = ""
    suffix: str = "half"


class RegionLabels(Specialist):
    """A region caption on every object box it is given ("left half"), scored as the box: it consumes the
    regions the filters before it kept, so a refresh must rerun it when one of them changes."""

    backend: ClassVar[str] = CONSUMER
    requires: ClassVar[frozenset[str]] = frozenset({"regions"})
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    needs_pixels: ClassVar[bool] = False
    Options: ClassVar[type] = RegionLabelsOptions

    @property
    def model_id(self) -> str:
        return "test-region-labels/1"

    def load(self) -> None:
        pass

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        provenance = self.provenance()
        for record in records:
            for box in [r for r in record.regions if r.kind == "object"]:
                caption = f"{box.text} {self.options.suffix}"
                record.regions.append(Region("region_caption", box.bbox, caption, provenance, score=box.score))
        log_processed(self.options.log_dir, self.name, records)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        self.process(records, None)


@dataclass(frozen=True)
class MinScoreOptions:
    min_score: float = 0.5
    log_dir: str = ""


class MinScoreFilter(BaseStage):
    """Drops regions scored below ``min_score``; needs no pixels."""

    kind: ClassVar[StageKind] = "filters"
    backend: ClassVar[str] = FILTER
    Options: ClassVar[type] = MinScoreOptions

    def fingerprint(self) -> str:
        return f"{FILTER}:{self.options.min_score}"

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        threshold = self.options.min_score
        for record in records:
            for region in [r for r in record.regions if r.score is not None and r.score < threshold]:
                record.drop(region, stage=self.name, rule="min_score", value=region.score, threshold=threshold)
        log_processed(self.options.log_dir, self.name, records)


def register() -> None:
    """Add the test backends to the registry (also a Ray ``worker_process_setup_hook``)."""
    registry.SPECIALIST_BACKENDS.setdefault(SPECIALIST, "tests.support.refresh_stages:HalvesSpecialist")
    registry.FILTER_BACKENDS.setdefault(FILTER, "tests.support.refresh_stages:MinScoreFilter")
    registry.SPECIALIST_BACKENDS.setdefault(CONSUMER, "tests.support.refresh_stages:RegionLabels")


def unregister() -> None:
    registry.SPECIALIST_BACKENDS.pop(SPECIALIST, None)
    registry.FILTER_BACKENDS.pop(FILTER, None)
    registry.SPECIALIST_BACKENDS.pop(CONSUMER, None)


@contextmanager
def local_ray_with_stages() -> Iterator[None]:
    """A local two-CPU Ray whose workers know the test stages (registered here too), shut down after."""
    register()
    try:
        with local_ray(RUNTIME_ENV):
            yield
    finally:
        unregister()


def write_images(folder: Path, count: int, start: int = 0, age_s: float = 60.0) -> list[Path]:
    """Tiny PNGs with distinct content, dated ``age_s`` in the past (so the probe cache may trust them)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    stamp = time.time() - age_s
    for index in range(start, start + count):
        rng = np.random.default_rng(index)
        pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        pixels[:, :16] //= 1 + index % 3  # a darker left half on some images, so scores spread out
        path = folder / f"img_{index:03d}.png"
        Image.fromarray(pixels).save(path)
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


def run_cli(argv: list[str]) -> int:
    """``fld-engine`` with the test backends registered here and in every Ray worker (for subprocess tests)."""
    import ray

    from engine.cli import main

    register()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR", runtime_env=RUNTIME_ENV)
    return main(argv)

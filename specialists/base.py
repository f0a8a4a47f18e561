"""The specialist interface: a model that adds annotations of one or more types to images."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.records import ImageRecord, Provenance
from schemas.stage import Resources


class WeightsNotFound(FileNotFoundError):
    """A specialist's weights are not where it looked (the message lists each place)."""


@dataclass(frozen=True, slots=True)
class WeightsCheck:
    """Where a specialist looks for its weights, and whether they are there (without loading them)."""

    specialist: str
    backend: str
    model: str
    looked_in: tuple[str, ...]
    found: bool
    detail: str = ""


class Specialist(ABC):
    """Base class of every specialist.

    Subclasses set ``backend``, ``produces`` (annotation types it adds: "texts", "regions",
    "phrases", "masks"), ``requires`` (types that must exist before it runs) and ``Options``
    (a dataclass validated from the profile), and implement ``load`` and ``annotate``.
    """

    backend: ClassVar[str]
    produces: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset()
    Options: ClassVar[type]

    def __init__(self, name: str, options: Any, resources: Resources | None = None) -> None:
        self.name = name
        self.options = options
        self.resources = resources or Resources()
        self._loaded = False

    @property
    def needs_pixels(self) -> bool:
        return True

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Model identity for provenance: id and revision, or a weights file hash."""

    def provenance(self, round_: int = 0) -> Provenance:
        return Provenance(source=self.name, model=self.model_id, round=round_)

    def check_weights(self) -> WeightsCheck:
        """Where weights are looked for; the default is that the backend needs none beyond its package."""
        return WeightsCheck(self.name, self.backend, self.model_id, (), True, "bundled with the package")

    def fingerprint(self) -> str:
        options = asdict(self.options) if is_dataclass(self.options) else self.options
        payload = repr((self.backend, self.model_id, sorted(options.items()) if isinstance(options, dict) else options))
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    def setup(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        assert images is not None, f"{self.name} needs decoded images"
        self.setup()
        self.annotate(images, records)

    @abstractmethod
    def load(self) -> None:
        """Load the model (once per worker)."""

    @abstractmethod
    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        """Add this specialist's annotations to ``records`` (aligned with ``images``) in place."""


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache this process would use."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def resolve_hf_model(specialist: str, backend: str, model: str) -> WeightsCheck:
    """Find a transformers checkpoint: a local directory, or a hub id already in the local cache.

    Nothing is downloaded; a missing model is reported with every place that was looked in.
    """
    local = Path(model).expanduser()
    looked = [str(local.resolve())]
    if local.is_dir():
        found = (local / "config.json").is_file()
        return WeightsCheck(specialist, backend, model, tuple(looked), found, "" if found else "no config.json")
    cache = hf_cache_dir() / ("models--" + model.replace("/", "--"))
    looked.append(str(cache))
    snapshots = sorted((cache / "snapshots").glob("*/config.json")) if cache.is_dir() else []
    if snapshots:
        return WeightsCheck(specialist, backend, model, tuple(looked), True, str(snapshots[-1].parent))
    return WeightsCheck(specialist, backend, model, tuple(looked), False, "not a local directory nor in the HF cache")


def hf_snapshot_path(check: WeightsCheck) -> str:
    """The directory to load from once :func:`resolve_hf_model` found the model, else raise clearly."""
    if not check.found:
        raise WeightsNotFound(
            f"{check.specialist} ({check.backend}): weights for {check.model!r} not found; looked in "
            + ", ".join(check.looked_in)
        )
    local = Path(check.model).expanduser()
    return str(local) if local.is_dir() else check.detail


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """sha256 of a weights file (first ``limit`` bytes when given), for provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = limit
        while chunk := handle.read(1 << 20 if remaining is None else min(1 << 20, remaining)):
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    break
    return digest.hexdigest()

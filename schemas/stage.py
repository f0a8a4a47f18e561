"""What a pipeline stage is: the contract between the engine and specialists, filters and refine.

A stage is a plain object. The engine creates it once per worker, calls ``setup()`` once (load
models there), then ``process()`` on batches of records. Stages know nothing of Ray.

:class:`Stage` is what the engine runs; :class:`BaseStage` is what a profile configures: a backend
registered under its ``kind``, with its ``Options``, the annotation types it needs and adds, whether it
needs pixels or holds a model, its model identity, fingerprint and weights check, each with a default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from schemas.bounds import NonNegativeFloat, PositiveInt
from schemas.fingerprint import canonical_hash
from schemas.pixel_limits import PixelLimits
from schemas.records import ImageRecord

# The registry's and the profile's name for each family of stages.
StageKind = Literal["specialists", "filters"]


@dataclass(frozen=True, slots=True)
class Resources:
    """What one worker of a stage needs, and how the engine batches and pools it."""

    num_cpus: NonNegativeFloat = 1.0
    num_gpus: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 4
    pool_size: PositiveInt = 1

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError("num_cpus and num_gpus must be >= 0")
        if self.batch_size < 1 or self.pool_size < 1:
            raise ValueError("batch_size and pool_size must be >= 1")
        if self.num_gpus > 1 and not float(self.num_gpus).is_integer():
            # Ray packs fractions of one GPU; more than one must be whole GPUs.
            raise ValueError(f"num_gpus above 1 must be a whole number, got {self.num_gpus}")


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline over batches of :class:`ImageRecord`."""

    name: str
    resources: Resources

    @property
    def needs_pixels(self) -> bool:
        """Whether ``process`` needs the decoded RGB images."""
        ...

    def fingerprint(self) -> str:
        """Identity of what this stage computes (model identity and settings), for provenance and refresh."""
        ...

    def setup(self) -> None:
        """Load models; called once per worker before the first batch."""
        ...

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        """Add, change or drop annotations of ``records`` in place. ``images`` are (H, W, 3) uint8 RGB."""
        ...


class WeightsNotFound(FileNotFoundError):
    """A stage's weights are not where it looked (the message lists each place)."""


class UntrustedWeights(ValueError):
    """A stage's weights are a pickle (which runs code when loaded) that the profile neither trusts nor pins."""


@dataclass(frozen=True, slots=True)
class WeightsCheck:
    """Where a stage looks for its weights, and whether they are there (without loading them).

    ``specialist`` is the stage's name (a filter's too, for filters that hold a model). ``pickle`` is "" for
    weights that load without unpickling, else how the profile vouches for the pickle: ``trusted``
    (``trust_pickle_weights``), ``pinned`` (its ``weights_sha256`` matches), ``pin mismatch`` or ``untrusted``."""

    specialist: str
    backend: str
    model: str
    looked_in: tuple[str, ...]
    found: bool
    detail: str = ""
    pickle: str = ""

    @property
    def trusted(self) -> bool:
        """Whether the weights may be loaded: no pickle, or one the profile trusts or pins."""
        return self.pickle in ("", "trusted", "pinned")


class BaseStage(ABC):
    """What every configured stage declares, with defaults; :class:`Specialist` and :class:`Filter` derive from it.

    Subclasses set ``backend`` (the registry key) and ``Options`` (a frozen dataclass validated from the
    profile). ``requires`` and ``produces`` name annotation types ("texts", "regions", "phrases",
    "masks") that must exist before the stage runs and that it adds. ``holds_model`` stages run in actor
    pools that load once per worker. ``pixel_limits`` is the backend's default cap on the image its model is
    given (:meth:`model_input_size`), which a profile overrides per stage (``limits``, see
    ``schemas/pixel_limits.py``); it decides which images the stage refuses, not what it computes, so it is no
    part of the fingerprint. The fingerprint hashes backend, model identity and options
    canonically (:func:`schemas.fingerprint.canonical_hash`), so how the options were written does not count.
    """

    kind: ClassVar[StageKind]
    backend: ClassVar[str]
    Options: ClassVar[type]
    # What the stage is given where that depends on its place in the profile's order (set by the engine, see
    # :func:`stage_fingerprint`): "" when its place tells nothing (no filter before a specialist).
    inputs: str = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    produces: ClassVar[frozenset[str]] = frozenset()
    needs_pixels: ClassVar[bool] = False
    holds_model: ClassVar[bool] = False
    pixel_limits: ClassVar[PixelLimits] = PixelLimits()

    def __init__(self, name: str, options: Any, resources: Resources | None = None) -> None:
        self.name = name
        self.options = options
        self.resources = resources or Resources()
        self.limits = self.pixel_limits
        self._loaded = False

    def model_input_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the stage's model is given for an image of this size: the image's own by
        default; a stage that resizes before its model, in a way that can enlarge, says how."""
        return width, height

    @property
    def model_id(self) -> str:
        """Model identity for provenance and the fingerprint: id and revision, or a weights hash ("" for none)."""
        return ""

    def fingerprint(self) -> str:
        """Identity of what this stage computes, for provenance and refresh."""
        return canonical_hash({"backend": self.backend, "model": self.model_id, "options": self.options})

    def check_weights(self) -> WeightsCheck:
        """Where weights are looked for; the default is that the backend needs none beyond its package."""
        return WeightsCheck(self.name, self.backend, self.model_id, (), True, "bundled with the package")

    def load(self) -> None:  # noqa: B027 - optional hook: most filters load nothing
        """Load models or lists; called once per worker."""

    def setup(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    @abstractmethod
    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        """Add, change or drop annotations of ``records`` in place (see :class:`Stage`)."""


def stage_fingerprint(stage: Any) -> str:
    """The fingerprint a row records for ``stage``: what it computes (:meth:`BaseStage.fingerprint`) and, where
    its ``inputs`` are set, what it was given. So a specialist placed after filters records which filters fed it,
    and a changed, added, removed or moved filter changes the recorded fingerprint of the stages that saw its
    output (``engine/refresh/incremental.py``). Any object with ``fingerprint()`` works (test stages too)."""
    own = stage.fingerprint()
    inputs = getattr(stage, "inputs", "")
    return canonical_hash({"stage": own, "inputs": inputs}) if inputs else own

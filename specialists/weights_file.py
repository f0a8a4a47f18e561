"""Specialists whose model is one local weights file (ultralytics ``.pt``), never downloaded at run time.

An ultralytics ``.pt`` is a pickle: loading it runs whatever code the file holds (ultralytics cannot load
it ``weights_only``). So such a file loads only when the profile vouches for it, per stage: either
``trust_pickle_weights: true`` or a ``weights_sha256:`` pin that the file matches. Neither changes what
the stage computes, so neither is part of its fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from schemas.fingerprint import NOT_IDENTITY
from schemas.stage import UntrustedWeights, WeightsCheck, WeightsNotFound
from specialists.base import Specialist, file_sha256

# File endings torch saves pickles under (ultralytics loads them with ``torch.load(weights_only=False)``).
PICKLE_SUFFIXES = (".pt", ".pth")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
TRUST_DETAIL = {"trusted": "trusted (trust_pickle_weights)", "pinned": "pinned (weights_sha256 matches)"}


@dataclass(frozen=True)
class PickledWeightsOptions:
    """``trust_pickle_weights``: load a pickled weights file as it is (only for files you trust).
    ``weights_sha256``: the file's sha256 (64 hex digits); a file that matches loads without the opt-in,
    one that does not is refused."""

    trust_pickle_weights: bool = field(default=False, metadata=NOT_IDENTITY)
    weights_sha256: str | None = field(default=None, metadata=NOT_IDENTITY)

    def __post_init__(self) -> None:
        pin = self.weights_sha256
        if pin is not None:
            if not SHA256_HEX.fullmatch(pin.lower()):
                raise ValueError(f"weights_sha256: {pin!r} is not a sha256 (64 hex digits)")
            object.__setattr__(self, "weights_sha256", pin.lower())


class WeightsFileSpecialist(Specialist):
    """Reads ``options.weights``; provenance is the file's name and the first 12 hex digits of its sha256."""

    _model_id: str | None = None
    _sha256: str | None = None

    @property
    def weights_path(self) -> Path:
        return Path(self.options.weights).expanduser().resolve()

    @property
    def loads_pickle(self) -> bool:
        return self.weights_path.suffix.lower() in PICKLE_SUFFIXES

    def weights_sha256(self) -> str:
        """The full sha256 of the weights file (read once)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.weights_path)
        return self._sha256

    def pickle_trust(self) -> str:
        """How the profile vouches for the weights (see :class:`schemas.stage.WeightsCheck`); the file exists."""
        if not self.loads_pickle:
            return ""
        pin = self.options.weights_sha256
        if pin is not None:
            return "pinned" if self.weights_sha256() == pin else "pin mismatch"
        return "trusted" if self.options.trust_pickle_weights else "untrusted"

    def check_weights(self) -> WeightsCheck:
        path = self.weights_path
        found = path.is_file()
        detail = "" if found else "no such file (ultralytics weights are never downloaded at run time)"
        pickle = self.pickle_trust() if found else ""
        if pickle and pickle not in ("trusted", "pinned"):
            detail = untrusted_message(self.name, self.backend, path, pickle, self.weights_sha256())
        elif pickle:
            detail = "a pickle, " + TRUST_DETAIL[pickle]
        return WeightsCheck(self.name, self.backend, self.options.weights, (str(path),), found, detail, pickle)

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            path = self.weights_path
            digest = self.weights_sha256()[:12] if path.is_file() else "missing"
            self._model_id = f"{path.name}@sha256:{digest}"
        return self._model_id

    def require_weights(self) -> Path:
        """The weights file, once it exists and the profile vouches for it: else :class:`WeightsNotFound`
        naming where it was looked for, or :class:`UntrustedWeights` saying how to vouch for it."""
        check = self.check_weights()
        if not check.found:
            raise WeightsNotFound(f"{self.name} ({self.backend}): weights file not found: {check.looked_in[0]}")
        if not check.trusted:
            raise UntrustedWeights(check.detail)
        return self.weights_path


def untrusted_message(stage: str, backend: str, path: Path, pickle: str, actual_sha256: str) -> str:
    """One line: which stage's pickle is refused, why, and the two ways to allow it."""
    where = f"{stage} ({backend}): {path}"
    if pickle == "pin mismatch":
        return (
            f"{where} does not match options.weights_sha256 (the file's sha256 is {actual_sha256}); refusing to load it"
        )
    return (
        f"{where} is a pickle, which runs code when loaded; set options.trust_pickle_weights: true for a file "
        f"you trust, or pin it with options.weights_sha256: {actual_sha256}"
    )

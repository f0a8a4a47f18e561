"""Specialists whose model is one local weights file (ultralytics ``.pt``), never downloaded at run time."""

from __future__ import annotations

from pathlib import Path

from schemas.stage import WeightsCheck, WeightsNotFound
from specialists.base import Specialist, file_sha256


class WeightsFileSpecialist(Specialist):
    """Reads ``options.weights``; provenance is the file's name and the first 12 hex digits of its sha256."""

    _model_id: str | None = None

    @property
    def weights_path(self) -> Path:
        return Path(self.options.weights).expanduser().resolve()

    def check_weights(self) -> WeightsCheck:
        path = self.weights_path
        found = path.is_file()
        detail = "" if found else "no such file (ultralytics weights are never downloaded at run time)"
        return WeightsCheck(self.name, self.backend, self.options.weights, (str(path),), found, detail)

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            path = self.weights_path
            digest = file_sha256(path)[:12] if path.is_file() else "missing"
            self._model_id = f"{path.name}@sha256:{digest}"
        return self._model_id

    def require_weights(self) -> Path:
        """The weights file, or :class:`WeightsNotFound` naming where it was looked for."""
        check = self.check_weights()
        if not check.found:
            raise WeightsNotFound(f"{self.name} ({self.backend}): weights file not found: {check.looked_in[0]}")
        return self.weights_path

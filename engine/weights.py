"""Where each configured specialist looks for its weights, checked without loading any model."""

from __future__ import annotations

from engine.config import EngineConfig
from schemas.stage import WeightsCheck, WeightsNotFound


def weights_checks(config: EngineConfig) -> list[WeightsCheck]:
    """One check per configured specialist, in profile order."""
    return [stage.create("specialists").check_weights() for stage in config.specialists]


def describe_missing(missing: list[WeightsCheck]) -> str:
    return "weights missing for " + "; ".join(
        f"{c.specialist} ({c.backend}) {c.model!r}: looked in {', '.join(c.looked_in) or '-'}" for c in missing
    )


def require_weights(config: EngineConfig) -> None:
    """Raise :class:`WeightsNotFound` listing every specialist whose weights are missing."""
    missing = [check for check in weights_checks(config) if not check.found]
    if missing:
        raise WeightsNotFound(describe_missing(missing))

"""Run a profile's specialists one after another in this process (no Ray), timing each: for tests and benches."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.config.registry import stage_class
from engine.config.settings import EngineConfig
from schemas.records import ImageRecord


def build_specialists(config: EngineConfig) -> list[Any]:
    return [stage_class("specialists", s.backend)(s.name, s.options, s.resources) for s in config.specialists]


def run_chain(
    specialists: list[Any], records: list[ImageRecord], images: list[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Process ``records`` through each specialist in order; name -> load seconds and seconds per image."""
    times: dict[str, dict[str, float]] = {}
    for specialist in specialists:
        start = time.perf_counter()
        specialist.setup()
        loaded = time.perf_counter()
        specialist.process(records, images if specialist.needs_pixels else None)
        done = time.perf_counter()
        times[specialist.name] = {"load_s": loaded - start, "s_per_image": (done - loaded) / max(len(records), 1)}
    return times

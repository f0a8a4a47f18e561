"""One local Ray for a test module: two CPUs, quiet, no dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def local_ray(runtime_env: dict[str, Any] | None = None) -> Iterator[None]:
    """A local two-CPU Ray (its workers set up by ``runtime_env``), shut down after."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR", runtime_env=runtime_env)
    try:
        yield
    finally:
        ray.shutdown()

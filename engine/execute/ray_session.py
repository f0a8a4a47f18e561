"""Starting or joining Ray: local Ray is the embedded default; an address joins a cluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from engine.config.settings import RayConfig

PACKAGES = ("engine", "schemas", "specialists", "filters", "refine")


def _package_dirs() -> list[str]:
    import importlib

    return [str(Path(importlib.import_module(name).__file__).parent) for name in PACKAGES]  # type: ignore[arg-type]


@contextmanager
def ray_session(config: RayConfig, address: str | None = None, progress: bool = True) -> Iterator[None]:
    """Initialise Ray for one engine run (reusing an already initialised Ray) and shut it down after.

    ``address`` (or ``RAY_ADDRESS``, or ``config.address``) joins a running cluster and ships
    fld-engine's packages to it; otherwise a local Ray starts with ``config.num_cpus`` CPUs.
    """
    import ray
    from ray.data import DataContext

    address = address or os.environ.get("RAY_ADDRESS") or config.address
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, runtime_env={"py_modules": _package_dirs()}, log_to_driver=False)
        else:
            object_store = None if config.object_store_memory_mb is None else config.object_store_memory_mb * 1024**2
            ray.init(
                num_cpus=config.num_cpus or os.cpu_count(),
                num_gpus=None,
                object_store_memory=object_store,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=True,
                logging_level="ERROR",
            )
        started = True
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = DataContext.get_current()
    context.enable_progress_bars = progress
    context.print_on_execution_start = False
    try:
        yield
    finally:
        if started:
            ray.shutdown()


class LazyRay:
    """Starts Ray on first need (entered into ``stack``), so a refresh with nothing to probe or annotate
    never starts it; ``on_start`` runs once Ray is up (the run checks its stages fit)."""

    def __init__(
        self,
        stack: ExitStack,
        config: RayConfig,
        address: str | None,
        progress: bool,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.stack, self.config, self.address, self.progress, self.on_start = stack, config, address, progress, on_start
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.stack.enter_context(ray_session(self.config, self.address, self.progress))
            self.on_start()
            self.started = True

"""Starting or joining Ray: local Ray is the embedded default; an address joins a cluster."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.settings import RayConfig
from engine.config.typed_config import ConfigError
from engine.errors import RunFailure
from engine.execute.ray_logs import RayLogRouting, session_log_folder
from engine.interrupt import keep_signal_handlers

CONNECT_TIMEOUT_S = 5.0
PACKAGES = ("engine", "schemas", "specialists", "filters", "refine")
MIB = 1024**2


LOG = logging.getLogger(__name__)


def local_init_options(config: RayConfig) -> dict[str, Any]:
    """``ray.init`` options for a local Ray started by this run: CPUs, object store size, spill directory."""
    options: dict[str, Any] = {
        "num_cpus": config.num_cpus or os.cpu_count(),
        "num_gpus": None,
        "object_store_memory": None if config.object_store_memory_mb is None else config.object_store_memory_mb * MIB,
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": True,
        "logging_level": "ERROR",
    }
    if config.spill_dir:
        options["object_spilling_directory"] = str(Path(config.spill_dir).expanduser().resolve())
    return options


def apply_data_context(context: Any, config: RayConfig) -> None:
    """Set Ray Data's error budget, retries and backpressure from ``config`` on ``context`` (a ``DataContext``)."""
    context.max_errored_blocks = config.max_errored_blocks
    # Stage errors are caught per image (engine/execute/stage_runner.py): what reaches Ray is a read or a
    # write that failed, retried only when the profile asks (a retry redoes the whole block).
    context.max_map_retries = config.map_retries
    context.retried_map_errors = config.map_retries > 0
    context.actor_init_max_retries = config.actor_init_retries
    context.target_max_block_size = config.target_max_block_size_mb * MIB
    context.op_resource_reservation_ratio = config.op_reservation_ratio
    context.override_object_store_memory_limit_fraction = config.object_store_fraction
    context.downstream_capacity_backpressure_ratio = config.downstream_backpressure_ratio


def _package_dirs() -> list[str]:
    import importlib

    return [str(Path(importlib.import_module(name).__file__).parent) for name in PACKAGES]  # type: ignore[arg-type]


def cluster_address(config: RayConfig, address: str | None = None) -> str | None:
    """The cluster a run joins: ``address``, else ``RAY_ADDRESS``, else the profile's; None for local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or config.address


def check_ray_early(config: RayConfig, address: str | None = None, dashboard: bool = False) -> None:
    """Before a run creates anything: fail in one line when it is to join a cluster that does not answer, or
    to start a local Ray with its dashboard whose packages are missing (nothing to check when Ray is
    already up in this process)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return
    joining = cluster_address(config, address)
    if joining:
        check_cluster(joining)
    elif dashboard:
        check_dashboard_installed()


def check_cluster(address: str) -> None:
    """Fail in one line unless a Ray cluster answers at ``address`` (``auto``: the one found on this host);
    ``ray.init`` would otherwise retry an unreachable address for minutes, or print a long traceback."""
    from ray._private.services import get_ray_address_from_environment

    try:
        resolved = get_ray_address_from_environment(address, None)
    except ConnectionError:
        raise RunFailure(f"--address {address}: no running Ray cluster was found on this host") from None
    host, _, port = str(resolved).rpartition("://")[2].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error) or "no answer"
        raise RunFailure(f"--address {address}: no Ray cluster answers at {resolved} ({reason})") from None


@dataclass(frozen=True)
class RayOutput:
    """What Ray shows of itself. ``route_logs``: Ray's and Ray Data's own log lines go to the session's log
    folder, not the terminal (``engine/execute/ray_logs.py``); ``dashboard``: start Ray's dashboard. Where
    they are is said once through ``announce``."""

    route_logs: bool = False
    dashboard: bool = False
    announce: Callable[[str], None] = lambda _: None


def check_dashboard_installed() -> None:
    """Fail in one line when Ray's dashboard cannot start (its packages come with ``ray[default]``)."""
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f"--dashboard needs Ray's dashboard packages ({error.name or error} is missing): "
            "pip install 'fld-engine[dashboard]' (or 'ray[default]')"
        ) from None


def _announce_dashboard(context: Any, announce: Callable[[str], None]) -> None:
    from ray._private import worker

    url = getattr(context, "dashboard_url", None)
    node = worker._global_node
    port = getattr(node, "metrics_export_port", None) if node is not None else None
    metrics = f" (Prometheus metrics: http://{node.node_ip_address}:{port}/metrics)" if port else ""
    announce(f"Ray dashboard: http://{url}{metrics}" if url else "Ray dashboard: not available on this cluster")


@contextmanager
def ray_session(
    config: RayConfig, address: str | None = None, progress: bool = True, output: RayOutput | None = None
) -> Iterator[None]:
    """Initialise Ray for one engine run (reusing an already initialised Ray) and shut it down after.

    ``address`` (or ``RAY_ADDRESS``, or ``config.address``) joins a running cluster and ships
    fld-engine's packages to it; otherwise a local Ray starts with ``config.num_cpus`` CPUs. ``output``:
    see :class:`RayOutput` (it applies when this session starts Ray).
    """
    import ray
    from ray.data import DataContext

    output = output or RayOutput()
    address = cluster_address(config, address)
    started = False
    routing: RayLogRouting | None = None
    if not ray.is_initialized():
        if output.dashboard:
            check_dashboard_installed()
        routing = RayLogRouting() if output.route_logs else None
        try:
            ray_context = _init(ray, config, address, output.dashboard)
        except BaseException:
            if routing is not None:
                routing.restore()
            raise
        started = True
        folder = session_log_folder()
        if routing is not None and folder is not None:
            routing.into_folder(folder)
            output.announce(f"Ray logs: {folder}")
        if output.dashboard:
            _announce_dashboard(ray_context, output.announce)
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = DataContext.get_current()
    apply_data_context(context, config)
    context.enable_progress_bars = progress
    context.print_on_execution_start = False
    try:
        yield
    finally:
        try:
            if started:
                ray.shutdown()
        finally:
            if routing is not None:
                routing.restore()


def _init(ray: Any, config: RayConfig, address: str | None, dashboard: bool) -> Any:
    """``ray.init`` joining ``address`` or starting a local Ray; the caller's signal handlers kept."""
    if address:
        if config.spill_dir or config.object_store_memory_mb:
            LOG.warning(
                "ray.spill_dir and ray.object_store_memory_mb apply to a Ray this run starts; a cluster's "
                "nodes take them from `ray start --object-spilling-directory ... --object-store-memory ...`"
            )
        check_cluster(address)
        with keep_signal_handlers():
            return ray.init(
                address=address, runtime_env={"py_modules": _package_dirs()}, log_to_driver=False, logging_level="ERROR"
            )
    options = local_init_options(config)
    if dashboard:
        options.update(include_dashboard=True, dashboard_host="127.0.0.1")
    with keep_signal_handlers():
        return ray.init(**options)


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
        output: RayOutput | None = None,
    ) -> None:
        self.stack, self.config, self.address, self.progress, self.on_start = stack, config, address, progress, on_start
        self.output = output
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.stack.enter_context(ray_session(self.config, self.address, self.progress, self.output))
            self.on_start()
            self.started = True

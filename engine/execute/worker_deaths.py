"""A model step whose worker process dies (out-of-memory kill, segfault) retries a bounded number of times,
then isolates the image, and the stage that killed it, instead of retrying forever.

Ray Data restarts a dead actor and resubmits its batch with no limit (``max_restarts`` and
``max_task_retries`` of -1), so one image that always kills its worker (a thin banner rapidocr enlarges
to 51 MP) stalls the run for ever. Here the Ray Data actor of a model step is a light guard that owns
the real worker as an inner Ray actor (``max_restarts=-1``, ``max_task_retries=0``: the guard counts):

1. the batch is sent whole, and again after each death up to ``ray.worker_death_retries`` times;
2. then image by image, each with the whole chain of the step;
3. an image that kills the worker then runs stage by stage: the stage that dies gets a stage error
   ``worker_died: out_of_memory`` (Ray's memory monitor killed it) or ``worker_died: crashed`` (anything
   else: a segfault, ``kill -9``, ``os._exit``, the kernel's OOM killer; Ray reports no signal), and the
   image goes on to the next stage as it was.

So the run goes on and publishes; the stage error is retried on a later run (``refresh.max_stage_retries``).
The inner worker holds the step's CPUs and GPUs; the guard asks for none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from engine.config.settings import StageConfig
from engine.execute.stage_runner import StageChainWorker, run_step
from engine.ingest.image_bytes import attach_image_bytes
from schemas.arrow import IN_FLIGHT_SCHEMA
from schemas.records import ImageRecord, StageError
from schemas.stage import Resources, stage_fingerprint

WORKER_DIED = "worker_died"
OUT_OF_MEMORY = "out_of_memory"
CRASHED = "crashed"
# What Ray writes where its memory monitor killed a worker (exception texts, the worker table's exit type).
OOM_MARKERS = ("running low on memory", "OUT_OF_MEMORY")


class IsolatingStageChain(StageChainWorker):
    """The inner worker: the step's stage chain, which also runs one stage alone and says who it is."""

    def ready(self) -> tuple[int, list[tuple[str, str]]]:
        """This process's pid, and each stage's name and recorded fingerprint."""
        import os

        return os.getpid(), [(stage.name, stage_fingerprint(stage)) for stage in self.stages]

    def run(self, batch: pa.Table, only: int | None, read_bytes: bool | None) -> pa.Table:
        stages = self.stages if only is None else [self.stages[only]]
        return run_step(stages, batch, self.max_pixels, read_bytes, self.loads)


def is_worker_death(error: BaseException) -> bool:
    """Whether ``error`` says the worker process died (rather than code raising, or an actor failing to start)."""
    from ray.exceptions import NodeDiedError, OutOfMemoryError, RayActorError, WorkerCrashedError

    if isinstance(error, RayActorError):
        return not error.actor_init_failed
    return isinstance(error, (OutOfMemoryError, WorkerCrashedError, NodeDiedError))


def death_reason(error: BaseException, exit_type: str = "") -> str:
    """``out_of_memory`` when Ray's memory monitor killed the worker (by the exception or the worker's recorded
    ``exit_type``), else ``crashed``."""
    from ray.exceptions import OutOfMemoryError

    text = f"{error} {exit_type}"
    if isinstance(error, OutOfMemoryError) or any(marker in text for marker in OOM_MARKERS):
        return OUT_OF_MEMORY
    return CRASHED


def recorded_exit_type(pid: int) -> str:
    """The exit type Ray's worker table records for the dead worker process ``pid`` ("" when none is known)."""
    from ray._private.state import state
    from ray.core.generated import common_pb2, gcs_pb2

    with contextlib.suppress(Exception):  # a private table: classification falls back to the exception alone
        for entry in state._connect_and_get_accessor().get_worker_table():
            worker = gcs_pb2.WorkerTableData.FromString(entry)
            if worker.pid == pid and not worker.is_alive:
                return str(common_pb2.WorkerExitType.Name(worker.exit_type))
    return ""


def with_stage_error(row: pa.Table, stage: str, fingerprint: str, message: str) -> pa.Table:
    """``row`` (one in-flight row) with a :class:`StageError` of ``stage`` and its fingerprint recorded, as the
    stage runner records a stage that failed on an image."""
    (values,) = row.to_pylist()
    record = ImageRecord.from_row(values)
    record.errors.append(StageError(stage, message))
    record.stages[stage] = fingerprint
    out = record.to_row()
    out["image_bytes"] = values["image_bytes"]
    return pa.Table.from_pylist([out], schema=IN_FLIGHT_SCHEMA)


class DeathGuardedChain:
    """The Ray Data callable of a model step: runs each batch on an inner :class:`IsolatingStageChain` actor
    and turns its deaths into bounded retries, then stage errors (see the module docstring)."""

    def __init__(
        self,
        stages: Sequence[StageConfig],
        max_pixels: int,
        read_bytes: bool | None,
        resources: Resources,
        retries: int,
        name: str = "StageChain",
    ) -> None:
        import ray

        worker = type(name, (IsolatingStageChain,), {"__qualname__": name})
        options: dict[str, Any] = {"num_cpus": resources.num_cpus, "max_restarts": -1, "max_task_retries": 0}
        if resources.num_gpus:
            options["num_gpus"] = resources.num_gpus
        self.worker = ray.remote(worker).options(**options).remote(list(stages), max_pixels)
        self.read_bytes, self.retries = read_bytes, retries
        self.pid, self.identities = self._ready()

    def _ready(self) -> tuple[int, list[tuple[str, str]]]:
        """Wait for the inner worker to be up (again, after a death: Ray restarts it and reloads its models)."""
        import ray

        return ray.get(self.worker.ready.options(max_task_retries=-1).remote())

    def _run(self, batch: pa.Table, only: int | None, read_bytes: bool | None) -> pa.Table:
        import ray

        return ray.get(self.worker.run.remote(batch, only, read_bytes))

    def _died(self, error: BaseException) -> str:
        """After a death: the reason, once the worker is back up."""
        if not is_worker_death(error):
            raise error
        dead_pid = self.pid
        self.pid, _ = self._ready()
        return death_reason(error, recorded_exit_type(dead_pid))

    def __call__(self, batch: pa.Table) -> pa.Table:
        for _ in range(self.retries + 1):
            try:
                return self._run(batch, None, self.read_bytes)
            except Exception as error:  # _died re-raises what is not a worker death
                self._died(error)
        if self.read_bytes is not None:  # isolated rows carry their bytes from here on
            batch = attach_image_bytes(batch, self.read_bytes)
        # A row a stage killed is rebuilt without the stage timings column: promote fills it with nulls.
        rows = [self._isolated(batch.slice(i, 1)) for i in range(batch.num_rows)]
        return pa.concat_tables(rows, promote_options="default")

    def _isolated(self, row: pa.Table) -> pa.Table:
        """One image through the chain; if it kills the worker, stage by stage, the killing stage erred."""
        try:
            return self._run(row, None, None)
        except Exception as error:  # as above
            self._died(error)
        for position, (stage, fingerprint) in enumerate(self.identities):
            try:
                row = self._run(row, position, None)
            except Exception as error:  # as above
                row = with_stage_error(row, stage, fingerprint, f"{WORKER_DIED}: {self._died(error)}")
        return row

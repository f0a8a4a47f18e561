"""How a dead worker is told apart and recorded (Ray's exception types, no cluster needed)."""

from __future__ import annotations

import pyarrow as pa
from ray.exceptions import ActorDiedError, ActorUnavailableError, OutOfMemoryError, RayActorError, WorkerCrashedError

from engine.execute.worker_deaths import death_reason, is_worker_death, with_stage_error
from schemas.arrow import IN_FLIGHT_SCHEMA
from schemas.records import ImageRecord, StageError


def test_deaths_are_the_errors_of_a_dead_process_not_of_code_or_of_a_failed_start() -> None:
    assert is_worker_death(ActorDiedError())
    assert is_worker_death(ActorUnavailableError("The actor was restarted", None))
    assert is_worker_death(WorkerCrashedError())
    assert is_worker_death(OutOfMemoryError("Task was killed due to the node running low on memory."))
    assert not is_worker_death(RayActorError(actor_init_failed=True))  # its __init__ raised: a real error
    assert not is_worker_death(ValueError("a bug"))


def test_a_memory_monitor_kill_is_out_of_memory_by_the_exception_or_the_workers_exit_type() -> None:
    assert death_reason(OutOfMemoryError("Task was killed due to the node running low on memory.")) == "out_of_memory"
    restarted = ActorUnavailableError("The actor was restarted", None)  # what an actor task sees: no cause
    assert death_reason(restarted, "NODE_OUT_OF_MEMORY") == "out_of_memory"
    assert death_reason(restarted, "SYSTEM_ERROR") == "crashed"
    assert death_reason(WorkerCrashedError()) == "crashed"


def test_the_stage_that_killed_its_worker_is_recorded_like_a_failed_stage() -> None:
    row = ImageRecord("a" * 64, "/a.png", 2, 200, "png", stages={"haar": "h1"}).to_row() | {"image_bytes": b"png"}
    out = with_stage_error(pa.Table.from_pylist([row], schema=IN_FLIGHT_SCHEMA), "ocr", "o1", "worker_died: crashed")
    (values,) = out.to_pylist()
    record = ImageRecord.from_row(values)
    assert record.errors == [StageError("ocr", "worker_died: crashed")]
    assert record.stages == {"haar": "h1", "ocr": "o1"} and values["image_bytes"] == b"png"

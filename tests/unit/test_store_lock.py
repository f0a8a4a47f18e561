"""The local lock records its holder's process start time: a reused pid does not keep a dead run's lock."""

from __future__ import annotations

import json
import os
import socket

import psutil
import pytest

from engine.errors import OutputError
from engine.store.output_lock import OutputLock, read_holder


def _lock_file(root, pid: int, process_start: float | None) -> None:
    holder = {"host": socket.gethostname(), "pid": pid, "started_at": "2026-01-01T00:00:00+00:00", "run_id": "old"}
    if process_start is not None:
        holder["process_start"] = process_start
    (root / ".lock").write_text(json.dumps(holder))


def test_the_lock_records_the_holders_process_start_time(tmp_path) -> None:
    with OutputLock(tmp_path, "mine"):
        holder = read_holder(tmp_path / ".lock")
    assert holder.pid == os.getpid() and holder.process_start == psutil.Process().create_time()


def test_a_lock_naming_a_live_pid_that_started_later_is_taken_over(tmp_path) -> None:
    """The recorded run died and its pid now belongs to another process (here: this one)."""
    _lock_file(tmp_path, os.getpid(), psutil.Process().create_time() - 3600)
    lock = OutputLock(tmp_path, "mine")
    with pytest.warns(UserWarning, match=f"taking over a stale lock .*pid {os.getpid()}, .*run old"):
        lock.acquire()
    assert read_holder(tmp_path / ".lock") == lock.holder
    lock.release()
    assert not (tmp_path / ".lock").exists()


def test_a_lock_of_a_live_process_with_its_start_time_is_refused(tmp_path) -> None:
    _lock_file(tmp_path, os.getpid(), psutil.Process().create_time())
    with pytest.raises(OutputError, match=f"another fld-engine run holds the lock .*pid {os.getpid()},"):
        OutputLock(tmp_path, "mine").acquire()


def test_a_lock_taken_from_a_run_is_noticed_before_it_publishes(tmp_path) -> None:
    with OutputLock(tmp_path, "mine") as lock:
        _lock_file(tmp_path, 1, None)
        with pytest.raises(OutputError, match="this run no longer holds the lock"):
            lock.check()

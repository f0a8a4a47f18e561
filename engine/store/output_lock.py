"""One writer at a time per dataset: ``.lock`` names its holder (host, pid, process start time, run).

Local folders: the lock file is created atomically (a private file hard-linked into place), so two
runs cannot both create it. A lock whose holder is gone is stale and taken over with a warning:
on the same host, its pid is not alive, or the pid now belongs to another process (its start time
differs from the recorded one: pids are reused). A lock held from another host cannot be checked
from here; the message says which host and how to clear it once that run is known dead.

Object stores: the lock is a lease (:mod:`engine.store.lease`), created only if absent, renewed by a
heartbeat while the run holds it, taken over once it has expired (or at once when its holder is a
dead process on this host), released with a conditional delete. A run whose lease was taken from it
publishes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import TracebackType

from engine.errors import OutputError
from engine.store.location import Location, Where, location

LOCK_NAME = ".lock"
# Process start times are whole clock ticks apart from what psutil reports at another moment.
START_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock. ``process_start`` (seconds since the epoch) tells a reused pid from the holder;
    ``lease_seconds`` and ``renewed_at`` are set for object-store leases."""

    host: str
    pid: int
    started_at: str
    run_id: str = ""
    process_start: float | None = None
    lease_seconds: float | None = None
    renewed_at: float | None = None

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        lease = ""
        if self.expires_at is not None:
            lease = f", lease until {datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec='seconds')}"
        return f"host {self.host}, pid {self.pid}, since {self.started_at}{run}{lease}"

    @property
    def expires_at(self) -> float | None:
        if self.lease_seconds is None or self.renewed_at is None:
            return None
        return self.renewed_at + self.lease_seconds

    def to_bytes(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LockHolder:
        raw = json.loads(data)
        return cls(
            str(raw["host"]),
            int(raw["pid"]),
            str(raw["started_at"]),
            str(raw.get("run_id", "")),
            _optional_float(raw.get("process_start")),
            _optional_float(raw.get("lease_seconds")),
            _optional_float(raw.get("renewed_at")),
        )


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if there is no such process."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # alive, owned by another user, start time hidden
        return float("nan")


def holder_is_gone(holder: LockHolder) -> bool:
    """Whether the holder is a process of this host that no longer runs (dead, or its pid reused)."""
    if holder.host != socket.gethostname():
        return False
    started = process_start(holder.pid)
    if started is None:
        return True
    if holder.process_start is None or started != started:  # not recorded, or hidden (NaN): pid alive
        return False
    return abs(started - holder.process_start) > START_TIME_TOLERANCE_S


def current_holder(run_id: str, lease_seconds: float | None = None) -> LockHolder:
    return LockHolder(
        socket.gethostname(),
        os.getpid(),
        datetime.now(UTC).isoformat(timespec="seconds"),
        run_id,
        process_start(os.getpid()),
        lease_seconds,
        time.time() if lease_seconds is not None else None,
    )


def read_holder(path: Where) -> LockHolder | None:
    """The holder recorded in a lock file; None if the file is gone or unreadable (a torn write)."""
    try:
        return LockHolder.from_bytes(location(path).read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        return None


class OutputLock:
    """A context manager holding ``root/.lock`` for one run: a lock file locally, a lease in object stores."""

    def __init__(self, root: Where, run_id: str = "", lease_seconds: float | None = None) -> None:
        self.root = location(root)
        self.path = self.root / LOCK_NAME
        self._lease = None
        if not self.root.is_local:
            from engine.store.lease import LEASE_SECONDS, Lease

            self._lease = Lease(self.path, current_holder(run_id, lease_seconds or LEASE_SECONDS))
        self.holder = self._lease.holder if self._lease else current_holder(run_id)
        self._held = False

    def acquire(self) -> None:
        if self._lease is not None:
            self._lease.acquire()
            self._held = True
            return
        for _ in range(3):
            if self.path.create_exclusive(self.holder.to_bytes()):
                self._held = True
                return
            current = read_holder(self.path)
            if current is None:
                if not self.path.exists():  # released between our attempt and the read
                    continue
                raise OutputError(f"{self.path}: lock file is unreadable; delete it if no run is writing here")
            if holder_is_gone(current):
                warnings.warn(
                    f"{self.path}: taking over a stale lock left by a dead process ({current.describe()})",
                    stacklevel=2,
                )
                self._remove_if_unchanged(current)
                continue
            raise OutputError(refusal(self.root, self.path, current))
        raise OutputError(f"{self.root}: could not take the lock {self.path} (contended); try again")

    def check(self) -> None:
        """Raise if this run no longer holds the lock (call before publishing)."""
        if self._lease is not None:
            self._lease.check()
            return
        if read_holder(self.path) != self.holder:
            raise OutputError(f"{self.root}: this run no longer holds the lock {self.path}; nothing was published")

    def _remove_if_unchanged(self, expected: LockHolder | None) -> None:
        if read_holder(self.path) == expected:
            self.path.delete()

    def release(self) -> None:
        if self._lease is not None:
            if self._held:
                self._lease.release()
        elif self._held and read_holder(self.path) == self.holder:
            self.path.delete()
        self._held = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def refusal(root: Location, path: Location, holder: LockHolder) -> str:
    """The one line a second writer gets: who holds the lock, and what to do."""
    if holder.expires_at is not None:
        hint = "wait for it to finish (a lease that is not renewed expires and is taken over)"
    elif holder.host == socket.gethostname():
        hint = "wait for it to finish"
    else:
        hint = f"if that run is dead, delete {path}"
    return f"{root}: another fld-engine run holds the lock ({holder.describe()}); {hint}"


def renewed(holder: LockHolder) -> LockHolder:
    return replace(holder, renewed_at=time.time())

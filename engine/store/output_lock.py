"""One writer at a time per output directory: ``OUT/.lock`` names its holder (host, pid, start time).

The lock file is created with ``O_EXCL``, so two runs cannot both create it. A second run fails
fast with a message naming the holder. A lock left by a process that died (same host, pid no
longer alive) is stale: it is taken over with a warning. A lock held from another host cannot be
checked from here; the message says which host and how to clear it once that run is known dead.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from engine.errors import OutputError

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    started_at: str
    run_id: str = ""

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return f"host {self.host}, pid {self.pid}, since {self.started_at}{run}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in a lock file; None if the file is gone or unreadable (a torn write)."""
    try:
        data = json.loads(path.read_text())
        return LockHolder(str(data["host"]), int(data["pid"]), str(data["started_at"]), str(data.get("run_id", "")))
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class OutputLock:
    """A context manager holding ``root/.lock`` for one run."""

    def __init__(self, root: Path, run_id: str = "") -> None:
        self.path = root / LOCK_NAME
        self.holder = LockHolder(
            socket.gethostname(), os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"), run_id
        )
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._try_create():
                return
            current = read_holder(self.path)
            if current is None:
                if not self.path.exists():  # released between our attempt and the read
                    continue
                raise OutputError(f"{self.path}: lock file is unreadable; delete it if no run is writing here")
            if current.host == self.holder.host and not _pid_alive(current.pid):
                warnings.warn(
                    f"{self.path}: taking over a stale lock left by a dead process ({current.describe()})",
                    stacklevel=2,
                )
                self._remove_if_unchanged(current)
                continue
            hint = (
                "wait for it to finish"
                if current.host == self.holder.host
                else f"if that run is dead, delete {self.path}"
            )
            raise OutputError(
                f"{self.path.parent}: another fld-engine run holds the lock ({current.describe()}); {hint}"
            )
        raise OutputError(f"{self.path.parent}: could not take the lock {self.path} (contended); try again")

    def _try_create(self) -> bool:
        """Write the holder to a private file, then hard-link it into place: the lock is never half-written."""
        private = self.path.with_name(f"{LOCK_NAME}.{self.holder.host}.{self.holder.pid}.tmp")
        with open(private, "w") as handle:
            json.dump(asdict(self.holder), handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(private, self.path)
        except FileExistsError:
            return False
        finally:
            private.unlink()
        self._held = True
        return True

    def _remove_if_unchanged(self, expected: LockHolder | None) -> None:
        if read_holder(self.path) == expected:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self._held and read_holder(self.path) == self.holder:
            self.path.unlink()
        self._held = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

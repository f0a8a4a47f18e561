"""Keeping the terminal to the engine's own lines: Ray's and Ray Data's log lines go to Ray's log folder.

Ray's C++ core worker in this process writes its errors and warnings straight to file descriptor 2 (an
``E`` line about actor constructor arguments on every run, which reads as a failure), and Ray Data logs
``Dataset ... execution finished`` and hints through Python loggers bound to the same stream. While Ray
runs, descriptor 2 points at ``fld-engine-driver.log`` in the session's log folder and ``sys.stderr``
at a copy of the terminal, so everything the engine prints (progress, warnings, errors) still shows.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

DRIVER_LOG = "fld-engine-driver.log"


def _python_stderr_is_fd2() -> bool:
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


class RayLogRouting:
    """Descriptor 2 into a file while Ray runs (see the module docstring); :meth:`restore` undoes it."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.terminal_fd = os.dup(2)
        self.swap_stderr = _python_stderr_is_fd2()
        self.saved_stderr: TextIO = sys.stderr
        handle, self.pending = tempfile.mkstemp(prefix="fld-engine-ray-", suffix=".log")
        os.dup2(handle, 2)  # what Ray prints while it starts, until its log folder is known
        os.close(handle)
        if self.swap_stderr:
            terminal = os.fdopen(
                os.dup(self.terminal_fd),
                "w",
                buffering=1,
                encoding=self.saved_stderr.encoding,
                errors=self.saved_stderr.errors,
            )
            sys.stderr = terminal
        self.log_file: Path | None = None

    def into_folder(self, folder: Path) -> Path:
        """Move what was captured so far into ``folder/fld-engine-driver.log`` and write there from now on."""
        target = folder / DRIVER_LOG
        with open(target, "ab") as out, open(self.pending, "rb") as captured:
            out.write(captured.read())
        handle = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(handle, 2)
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(self.pending)
        self.log_file = target
        return target

    def restore(self) -> None:
        if self.swap_stderr and sys.stderr is not self.saved_stderr:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
                sys.stderr.close()
            sys.stderr = self.saved_stderr
        os.dup2(self.terminal_fd, 2)
        os.close(self.terminal_fd)
        if self.log_file is None:  # Ray never said where its logs are: keep what it printed beside the temp dir
            with contextlib.suppress(OSError):
                if os.path.getsize(self.pending) == 0:
                    os.unlink(self.pending)


def session_log_folder() -> Path | None:
    """The log folder of the Ray session this process is connected to (None if it cannot be told)."""
    try:
        from ray._private import worker

        node = worker._global_node
        return Path(node.get_logs_dir_path()) if node is not None else None
    except Exception:
        return None


@contextlib.contextmanager
def ray_logs_routed() -> Iterator[RayLogRouting]:
    routing = RayLogRouting()
    try:
        yield routing
    finally:
        routing.restore()

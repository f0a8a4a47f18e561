"""Killing a run for the crash-resume tests: its Ray processes too, found by their private temp dir."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def kill_ray_processes_under(folder: Path) -> None:
    """SIGKILL the Ray processes the killed run started (their command lines name its private temp dir)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)

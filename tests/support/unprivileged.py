"""Running the CLI as tests need it: capturing its stderr, and as a user whom folder permissions stop."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.cli import build_parser
from engine.cli import main as cli

NOBODY = 65534


def run(args: list[str]) -> tuple[int, str]:
    """The CLI's exit code and its stderr (stdout discarded)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = cli(args)
    return code, stderr.getvalue()


def run_unprivileged(args: list[str]) -> tuple[int, str]:
    """Run the CLI as a user that folder permissions stop: this one, or for root (whom they do not stop)
    a forked child that becomes 'nobody' first (modules are imported before the fork)."""
    if os.geteuid() != 0:
        return run(args)
    build_parser()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, run, report back, never return into pytest
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(run(args)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    code, err = json.loads(data)
    return code, err


@contextmanager
def read_only_folder() -> Iterator[Path]:
    """A folder nobody may write, inside one everybody may enter (the ``read_only_folder`` fixture)."""
    base = Path(tempfile.mkdtemp(prefix="fld-readonly-"))
    base.chmod(0o755)
    folder = base / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base)

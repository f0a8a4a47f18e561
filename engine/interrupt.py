"""Stopping a run cleanly on Ctrl-C (SIGINT) or a scheduler's SIGTERM.

Both signals raise :class:`Interrupted` in the main thread, so the run unwinds like any error: Ray
shuts down, the lock is released and the journaled shards stay for the next run to resume. Once one
signal arrived, further ones are ignored so that this cleanup is not cut short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# The shell's convention: 128 + the signal number.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``exit_code`` is 130 for SIGINT, 143 for SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signal.Signals(signum), 128 + signum)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    for handled in EXIT_CODES:
        signal.signal(handled, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` inside the block (main thread only); restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in EXIT_CODES}
    for signum in EXIT_CODES:
        signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Put back the SIGINT and SIGTERM handlers that the block replaced (``ray.init`` installs a SIGTERM
    handler that exits with a low-level dump)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in EXIT_CODES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)

"""What a run shows while it works: a progress bar per step with its rate and time left (``tqdm``, on a
terminal), or, in a log, a line every few seconds with the same numbers; and at the end a table of the
stages: images, busy seconds, images per second, errors and model load time."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.execute.stage_timing import StageTiming

Progress = Callable[[str], None]
LINE_INTERVAL_S = 10.0
MODEL_CHARS = 60
# Always images per second (tqdm turns a rate under 1 into "3.68s/ images"); ? until the first images are done.
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}]"
BAR_COLUMNS, BAR_ROWS = 100, 24  # a terminal that reports no size gets bars for this size


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def rate_line(label: str, done: int, total: int, seconds: float) -> str:
    """``annotated 9/150 images, 3.1 images/s, 0:45 left`` (rate and time left once one image is done)."""
    line = f"{label} {done}/{total} images"
    if done and seconds > 0:
        rate = done / seconds
        line += f", {rate:.3g} images/s"
        if done < total:
            line += f", {_clock((total - done) / rate)} left"
        else:
            line += f", in {_clock(seconds)}"
    return line


class Meter:
    """Counts one step's images: a ``tqdm`` bar when ``bars``, else a :func:`rate_line` through
    ``progress`` at most every ``interval`` seconds, and always at the end."""

    def __init__(
        self, label: str, total: int, progress: Progress, bars: bool = False, interval: float = LINE_INTERVAL_S
    ) -> None:
        self.label, self.total, self.progress, self.interval = label, total, progress, interval
        self.done = 0
        self.started = self.last_line = time.perf_counter()
        self.bar: Any = None
        if bars:
            from tqdm import tqdm

            size = bar_size(sys.stderr)
            self.bar = tqdm(total=total, desc=label, unit=" images", bar_format=BAR_FORMAT, file=sys.stderr, **size)

    def advance(self, images: int) -> None:
        self.done += images
        if self.bar is not None:
            self.bar.update(images)
            return
        now = time.perf_counter()
        if now - self.last_line >= self.interval and self.done < self.total:
            self.last_line = now
            self.progress(rate_line(self.label, self.done, self.total, now - self.started))

    def abort(self) -> None:
        """Stop showing progress without a last line (the step was interrupted or failed)."""
        if self.bar is not None:
            self.bar.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self.progress(rate_line(self.label, self.done, self.total, time.perf_counter() - self.started))


def bar_size(stream: Any) -> dict[str, Any]:
    """tqdm's size settings: follow the terminal's size, or a fixed size when it reports none (a pty of 0 x 0,
    as under ``script`` or some CI runners: tqdm would then hide the bar as if it were below the screen)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        size = None
    if size is not None and size.columns and size.lines:
        return {"dynamic_ncols": True}
    return {"ncols": BAR_COLUMNS, "nrows": BAR_ROWS}


def loading_line(stage: str, model: str) -> str:
    """``loading ocr (rapidocr-onnxruntime==1.4.4/PP-OCRv4...) ...``: said before a stage's first result."""
    if not model:
        return f"loading {stage} ..."
    shown = model if len(model) <= MODEL_CHARS else model[: MODEL_CHARS - 3] + "..."
    return f"loading {stage} ({shown}) ..."


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def stage_table(timings: Sequence[StageTiming]) -> str:
    """The per-stage table printed after a run (busy seconds are summed over a stage's workers)."""
    header = f"{'stage':<16} {'images':>8} {'seconds':>9} {'images/s':>9} {'errors':>7} {'load s':>7}"
    lines = [header]
    for t in timings:
        lines.append(
            f"{t.stage:<16} {t.images:>8} {t.seconds:>9.2f} {_rate(t.images_per_second):>9} "
            f"{t.errors:>7} {t.load_seconds:>7.1f}"
        )
    return "\n".join(lines)

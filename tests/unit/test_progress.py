"""What a run shows: rate lines, the loading line, the per-stage table, and stage timings summed from the
column workers attach to their rows (pure functions, no Ray)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

import pyarrow as pa
import pytest

from engine.execute.stage_timing import (
    TIMINGS_COLUMN,
    BatchTimer,
    StageTiming,
    StageTotals,
    split_timings,
    with_timings,
)
from engine.progress import BAR_COLUMNS, Meter, loading_line, rate_line, stage_table
from engine.store.manifest import Manifest
from schemas.arrow import STAGE_ERROR


def test_a_rate_line_gives_the_rate_and_the_time_left() -> None:
    assert rate_line("annotated", 0, 150, 3.0) == "annotated 0/150 images"
    assert rate_line("annotated", 30, 150, 10.0) == "annotated 30/150 images, 3 images/s, 0:40 left"
    assert rate_line("annotated", 150, 150, 3725.0) == "annotated 150/150 images, 0.0403 images/s, in 1:02:05"


def test_lines_come_at_most_every_interval_and_always_at_the_end() -> None:
    lines: list[str] = []
    meter = Meter("annotated", 10, lines.append, interval=3600)
    for _ in range(10):
        meter.advance(1)
    meter.close()
    assert len(lines) == 1 and lines[0].startswith("annotated 10/10 images, ")


@pytest.mark.parametrize(("rows", "columns"), [(0, 0), (24, 0), (24, 80)])
def test_a_bar_on_a_terminal_shows_its_count_even_when_the_terminal_reports_no_size(monkeypatch, rows, columns) -> None:
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    with os.fdopen(terminal, "w", buffering=1) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        meter = Meter("annotated", 10, print, bars=True)
        time.sleep(0.05)
        meter.bar.start_t -= 20  # 4 images in about 20 s: a rate under one image per second
        meter.advance(4)
        meter.close()
    shown = b""
    with contextlib.suppress(OSError):  # EIO: everything written has been read and the terminal is closed
        while select.select([controller], [], [], 0.2)[0]:
            shown += os.read(controller, 65536)
    os.close(controller)
    shown = shown.decode()
    last = shown.split("\r")[-2].strip()  # the last state drawn, before the newline that leaves it
    assert last.startswith("annotated:  40%|") and "4/10" in last and " 0.20 images/s]" in last
    assert len(last) <= (columns or BAR_COLUMNS)


def test_the_loading_line_shortens_long_model_ids() -> None:
    assert loading_line("ocr", "rapidocr==1.4") == "loading ocr (rapidocr==1.4) ..."
    assert loading_line("text", "") == "loading text ..."
    long = loading_line("haar", "x" * 200)
    assert long == f"loading haar ({'x' * 57}...) ..."


def test_timings_are_shared_over_the_rows_a_stage_processed_and_summed_back() -> None:
    timer = BatchTimer()
    timer.add("ocr", [0, 1, 2, 3], 2.0)
    timer.add("nms", [1, 3], 0.5)
    timer.add("nms", [3], 0.1)  # the same row again (a batch rerun image by image): counted once
    column = timer.column(4, {"ocr": 7.5}, None)
    table = with_timings(pa.table({"x": [1, 2, 3, 4]}), column)
    # Ray Data may split blocks: the totals do not depend on how the rows are grouped.
    halves = [table.slice(0, 1), table.slice(1, 3)]
    totals = StageTotals(["ocr", "nms", "unused"])
    for half in halves:
        rest, timings = split_timings(half)
        assert rest.column_names == ["x"]
        errors = pa.array([[{"stage": "nms", "message": "boom"}]] * half.num_rows, type=pa.list_(STAGE_ERROR))
        totals.add(timings, pa.chunked_array([errors]))
    ocr, nms = totals.timings()
    assert (ocr.stage, ocr.images, round(ocr.seconds, 6), ocr.load_seconds, ocr.errors) == ("ocr", 4, 2.0, 7.5, 0)
    # nms errors count only on the rows nms processed (1 and 3), not on rows it never saw.
    assert (nms.stage, nms.images, round(nms.seconds, 6), nms.errors) == ("nms", 2, 0.6, 2)


def test_timings_of_an_earlier_step_ride_along() -> None:
    first = BatchTimer()
    first.add("ocr", [0, 1], 1.0)
    table = with_timings(pa.table({"x": [1, 2]}), first.column(2, {}, None))
    rest, earlier = split_timings(table)
    second = BatchTimer()
    second.add("blip", [1], 4.0)
    cells = second.column(2, {}, earlier).to_pylist()
    assert [[e["stage"] for e in cell] for cell in cells] == [["ocr"], ["ocr", "blip"]]
    assert TIMINGS_COLUMN not in rest.column_names


def test_the_stage_table_lists_images_seconds_rate_errors_and_load_time() -> None:
    table = stage_table([StageTiming("ocr", 150, 50.0, 3.25, 2), StageTiming("nms", 150, 0.01, 0.0, 0)])
    lines = table.splitlines()
    assert lines[0].split() == ["stage", "images", "seconds", "images/s", "errors", "load", "s"]
    assert lines[1].split() == ["ocr", "150", "50.00", "3.00", "2", "3.2"]
    assert lines[2].split() == ["nms", "150", "0.01", "15,000", "0", "0.0"]


def test_manifests_keep_stage_timings_and_old_manifests_still_read() -> None:
    manifest = Manifest.next(
        None,
        run_id="r",
        config_fingerprint="c",
        profile="p",
        stages={},
        stage_kinds={},
        models={},
        shards=[],
        quarantine=[],
        tombstones=[],
        probe_index=None,
        extra={},
        stage_timings=[StageTiming("ocr", 3, 1.5, 0.25, 1)],
    )
    data = manifest.to_dict()
    assert data["stage_timings"] == [{"stage": "ocr", "images": 3, "seconds": 1.5, "load_seconds": 0.25, "errors": 1}]
    assert Manifest.from_dict(data).stage_timings == [StageTiming("ocr", 3, 1.5, 0.25, 1)]
    del data["stage_timings"]  # a manifest written before timings were recorded
    assert Manifest.from_dict(data).stage_timings == []

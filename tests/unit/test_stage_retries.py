"""Stage errors retried on later runs, as pure rules: which stages a failed row reruns, which errors it keeps,
and how the stage runner counts failures on the row (no Ray)."""

from __future__ import annotations

import pyarrow as pa

from engine.execute.stage_runner import run_stages_on_table
from engine.refresh.incremental import Level, StagePlan, StageSpec, failure_counts
from schemas.records import ImageRecord, StageError
from tests.unit.test_stage_runner import BoxEveryImage, in_flight

CAPTION = StageSpec("caption", "specialists", "c1", produces=frozenset({"texts"}))
GROUNDING = StageSpec("grounding", "specialists", "g1", frozenset({"texts"}), frozenset({"phrases"}))
OCR = StageSpec("ocr", "specialists", "o1", produces=frozenset({"regions"}))
NMS = StageSpec("nms", "filters", "n1")
PLAN = StagePlan([CAPTION, GROUNDING, OCR, NMS], max_stage_retries=2)
CURRENT = {"caption": "c1", "grounding": "g1", "ocr": "o1", "nms": "n1"}


def test_a_stage_that_failed_reruns_with_what_depends_on_it_and_the_filters_after() -> None:
    row_plan = PLAN.classify(CURRENT, {"caption": 1})
    assert row_plan.level == Level.REANNOTATE
    assert (row_plan.stale, row_plan.retried, row_plan.refilter) == ({"caption", "grounding"}, {"caption"}, {"nms"})


def test_a_stage_that_failed_more_than_max_stage_retries_times_is_left_as_it_is() -> None:
    assert PLAN.classify(CURRENT, {"ocr": 2}).stale == {"ocr"}
    assert PLAN.classify(CURRENT, {"ocr": 3}).level == Level.EXACT
    assert StagePlan(PLAN.stages, max_stage_retries=0).classify(CURRENT, {"ocr": 1}).level == Level.EXACT


def test_a_failure_under_an_old_fingerprint_is_no_retry_but_a_change() -> None:
    row_plan = PLAN.classify({**CURRENT, "ocr": "o0"}, {"ocr": 3})
    assert row_plan.stale == {"ocr"} and row_plan.retried == frozenset()


def test_errors_of_removed_or_unknown_stages_retry_nothing() -> None:
    assert PLAN.classify(CURRENT, {"ingest": 1, "input_check": 1}).level == Level.EXACT


def test_strip_keeps_the_earlier_errors_of_a_retried_stage_only() -> None:
    record = ImageRecord("a" * 64, "/a.png", 10, 10, "png", stages=dict(CURRENT))
    record.errors = [StageError("ocr", "timeout"), StageError("caption", "boom"), StageError("ingest", "x")]
    counts = failure_counts([{"stage": e.stage, "message": e.message} for e in record.errors])
    PLAN.strip(record, PLAN.classify(CURRENT, counts))
    assert record.errors == [StageError("ocr", "timeout"), StageError("caption", "boom")]
    assert record.stages == {}  # every stage reruns: both failed specialists, grounding after caption, nms after


def _with_earlier_errors(table: pa.Table, errors: list[dict[str, str]]) -> pa.Table:
    index = table.schema.get_field_index("errors")
    column = pa.array([errors] * table.num_rows, type=table.schema.field("errors").type)
    return table.set_column(index, "errors", column)


def test_the_runner_keeps_earlier_errors_of_a_stage_that_fails_again_and_drops_them_when_it_succeeds() -> None:
    earlier = [{"stage": "boxer", "message": "ValueError: cannot box a 13 pixel wide image"}]
    out = run_stages_on_table([BoxEveryImage()], _with_earlier_errors(in_flight([40, 13]), earlier), 10**8)
    records = [ImageRecord.from_row(row) for row in out.to_pylist()]
    assert records[0].errors == [] and len(records[0].regions) == 1  # succeeded: the earlier error is gone
    assert records[1].errors == [StageError("boxer", "ValueError: cannot box a 13 pixel wide image")] * 2
    assert failure_counts(out.column("errors").to_pylist()[1]) == {"boxer": 2}

"""Planned stages record what their place in the order gives them: a specialist the filters before it."""

from __future__ import annotations

from engine.config.profile import parse_config
from engine.execute.plan_stages import plan_stages
from engine.refresh.incremental import Level, StagePlan


def profile(min_object: float = 0.3, nms_object: float = 0.5) -> dict:
    return {
        "stages": [
            {"name": "ocr", "backend": "rapidocr"},
            {"name": "haar", "backend": "haar"},
            {"name": "confidence", "backend": "confidence", "options": {"min_score_by_kind": {"object": min_object}}},
            {"name": "grabcut", "backend": "grabcut"},
            {"name": "nms", "backend": "nms", "options": {"iou": {"object": nms_object}}},
        ]
    }


def fingerprints(**settings: float) -> dict[str, str]:
    return {s.name: s.fingerprint for s in plan_stages(parse_config(profile(**settings)))}


def test_a_specialist_after_a_filter_records_it_and_the_workers_record_the_same() -> None:
    planned = {s.name: s for s in plan_stages(parse_config(profile()))}
    grabcut = planned["grabcut"]
    assert grabcut.config.inputs != "" and planned["ocr"].config.inputs == ""
    own = parse_config(profile()).stages[3].create().fingerprint()
    assert grabcut.fingerprint != own  # folded with the confidence filter that feeds it
    from schemas.stage import stage_fingerprint

    assert stage_fingerprint(grabcut.config.create()) == grabcut.fingerprint  # what a worker writes in rows


def test_changing_a_filter_changes_the_specialists_after_it_not_those_before() -> None:
    before, after = fingerprints(), fingerprints(min_object=0.4)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"confidence", "grabcut"}  # nms judges grabcut's masks but records only the specialists
    plan = StagePlan([s.spec() for s in plan_stages(parse_config(profile(min_object=0.4)))])
    row_plan = plan.classify(before)
    assert (row_plan.level, row_plan.stale, row_plan.refilter) == (Level.REANNOTATE, {"grabcut"}, {"confidence", "nms"})


def test_changing_the_final_filter_changes_only_its_own_fingerprint_and_refilters() -> None:
    before, after = fingerprints(), fingerprints(nms_object=0.6)
    assert {name for name in before if before[name] != after[name]} == {"nms"}
    plan = StagePlan([s.spec() for s in plan_stages(parse_config(profile(nms_object=0.6)))])
    assert plan.classify(before).level == Level.REFILTER and plan.classify(before).refilter == {"nms"}


def test_planned_stages_say_whether_they_need_pixels() -> None:
    planned = {s.name: s.needs_pixels for s in plan_stages(parse_config(profile()))}
    assert planned == {"ocr": True, "haar": True, "confidence": False, "grabcut": True, "nms": False}

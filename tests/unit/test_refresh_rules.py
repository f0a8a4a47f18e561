"""The refresh rules as pure functions: which stages rerun, what is undone first, tombstones, journals,
the probe cache and the output lock (no Ray)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from engine.config.settings import WriterConfig
from engine.errors import OutputError
from engine.ingest.listing import listing_sources
from engine.ingest.probe_cache import RACY_NS, ProbeCache, split_by_cache
from engine.ingest.sources import Source, SourceKind
from engine.refresh.incremental import Level, StagePlan, StageSpec, stage_inputs
from engine.refresh.tombstones import PATH_IDS, PREVIOUS_IMAGES, find_tombstones
from engine.store.journal import RunJournal, clean_up_runs, unfinished_runs
from engine.store.output_lock import OutputLock, read_holder
from engine.store.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import GroundedRegion, ImageRecord, Mask, Phrase, Provenance, Region, StageError, Text

CAPTION = StageSpec("caption", "specialists", "c1", produces=frozenset({"texts"}))
GROUNDING = StageSpec("grounding", "specialists", "g1", frozenset({"texts"}), frozenset({"phrases"}))
OCR = StageSpec("ocr", "specialists", "o1", produces=frozenset({"regions"}))
THRESHOLD = StageSpec("threshold", "filters", "t1")
PLAN = StagePlan([CAPTION, GROUNDING, OCR, THRESHOLD])
CURRENT = {"caption": "c1", "grounding": "g1", "ocr": "o1", "threshold": "t1"}


def test_a_row_with_the_current_fingerprints_is_exact() -> None:
    assert PLAN.classify(CURRENT).level == Level.EXACT


def test_a_changed_filter_reruns_only_filters() -> None:
    row_plan = PLAN.classify({**CURRENT, "threshold": "t0"})
    assert row_plan.level == Level.REFILTER and row_plan.stale == frozenset()


def test_a_changed_specialist_reruns_it_and_those_that_need_its_output() -> None:
    assert PLAN.classify({**CURRENT, "caption": "c0"}).stale == {"caption", "grounding"}
    assert PLAN.classify({**CURRENT, "grounding": "g0"}).stale == {"grounding"}
    assert PLAN.classify({**CURRENT, "ocr": "o0"}).stale == {"ocr"}
    assert PLAN.classify({k: v for k, v in CURRENT.items() if k != "ocr"}).stale == {"ocr"}


def test_a_removed_stage_of_unknown_kind_makes_dependent_specialists_stale() -> None:
    row_plan = PLAN.classify({**CURRENT, "old_detector": "d1"})
    assert row_plan.level == Level.REANNOTATE and row_plan.stale == {"grounding"}
    assert row_plan.removed == {"old_detector"}
    known = StagePlan(PLAN.stages, known_filters={"old_nms"}).classify({**CURRENT, "old_nms": "n1"})
    assert known.level == Level.REFILTER and known.removed == {"old_nms"}


def _annotated_record() -> ImageRecord:
    caption, grounding, ocr = (Provenance(n, "m") for n in ("caption", "grounding", "ocr"))
    record = ImageRecord("id", "/a.png", 100, 80, "png")
    text = Text("brief", "a dog on grass", caption)
    record.texts.append(text)
    record.phrases.append(Phrase(text.id, 2, 5, "dog", [GroundedRegion((1, 2, 30, 40), 0.9)], grounding))
    low, high = Region("ocr_line", (0, 0, 10, 10), "low", ocr, 0.2), Region("ocr_line", (0, 0, 50, 10), "hi", ocr, 0.9)
    record.regions.extend([low, high])
    record.drop(low, stage="threshold", rule="min_score", value=0.2, threshold=0.5)
    record.errors.append(StageError("threshold", "boom"))
    record.stages = dict(CURRENT)
    return record


def test_refilter_restores_filter_drops_and_forgets_filter_results() -> None:
    record = _annotated_record()
    PLAN.strip(record, PLAN.classify({**CURRENT, "threshold": "t0"}))
    assert sorted(r.text for r in record.regions) == ["hi", "low"] and record.dropped == []
    assert record.errors == [] and record.stages == {"caption": "c1", "grounding": "g1", "ocr": "o1"}
    assert len(record.texts) == 1 and len(record.phrases) == 1


def test_reannotate_removes_stale_specialists_output_and_what_depends_on_it() -> None:
    record = _annotated_record()
    PLAN.strip(record, PLAN.classify({**CURRENT, "caption": "c0"}))
    assert record.texts == [] and record.phrases == []
    assert sorted(r.text for r in record.regions) == ["hi", "low"]
    assert record.stages == {"ocr": "o1"}
    row = record.to_row()
    assert ImageRecord.from_row(row).to_row() == row


def test_restored_annotations_of_a_stale_specialist_are_not_brought_back() -> None:
    record = _annotated_record()
    PLAN.strip(record, PLAN.classify({**CURRENT, "ocr": "o0"}))
    assert record.regions == [] and record.dropped == [] and record.stages == {"caption": "c1", "grounding": "g1"}


def _previous(images: dict[str, list[str] | None]) -> pa.Table:
    return pa.Table.from_pylist([{"image_id": i, "source_uris": u} for i, u in images.items()], PREVIOUS_IMAGES)


def _path_ids(paths: dict[str, str | None]) -> pa.Table:
    return pa.Table.from_pylist([{"source_uri": p, "image_id": i} for p, i in paths.items()], PATH_IDS)


def test_tombstones_name_removed_changed_and_quarantined_images() -> None:
    previous = _previous({"gone": ["/a.png"], "old": ["/b.png", "/x.png"], "bad": ["/c.png"], "kept": ["/d.png"]})
    paths = _path_ids({"/b.png": "new", "/x.png": "another", "/c.png": None, "/d.png": "kept"})
    rows = find_tombstones(previous, ["kept", "new"], paths).to_pylist()
    assert [(r["image_id"], r["reason"], r["replaced_by"], r["source_uri"]) for r in rows] == [
        ("bad", "quarantined", None, "/c.png"),
        ("gone", "source_removed", None, "/a.png"),
        ("old", "content_changed", "another", "/b.png"),  # the first of the ids its paths hold now
    ]


def test_an_image_curation_now_skips_is_tombstoned_as_skipped() -> None:
    rows = find_tombstones(_previous({"copy": ["/e.png"]}), [], _path_ids({"/e.png": "copy"}), skipped=["copy"])
    assert [(r["image_id"], r["reason"], r["replaced_by"]) for r in rows.to_pylist()] == [("copy", "skipped", None)]


def test_an_image_without_paths_is_tombstoned_as_removed_and_none_when_all_are_kept() -> None:
    previous = _previous({"bare": None, "kept": ["/k.png"]})
    rows = find_tombstones(previous, ["kept"], _path_ids({}))
    assert rows.to_pylist() == [
        {"image_id": "bare", "source_uri": "", "source_uris": [], "reason": "source_removed", "replaced_by": None}
    ]
    assert find_tombstones(previous, ["kept", "bare"], _path_ids({})).num_rows == 0


def _shard(root: Path, run_id: str, ids: list[str], journal: RunJournal) -> None:
    writer = ShardWriter(root, "annotations", f"part-{run_id}", ANNOTATION_SCHEMA, WriterConfig(), journal.record)
    rows = [ImageRecord(i, f"/{i}.png", 4, 4, "png").to_row() for i in ids]
    writer.write(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA))
    writer.close()


def test_a_journal_lists_whole_shards_and_ignores_an_unreadable_record(tmp_path) -> None:
    journal = RunJournal(tmp_path, "run1")
    journal.start({"full": False})
    _shard(tmp_path, "run1", ["a", "b"], journal)
    (journal.folder / "shards" / "annotations--part-run1-00001.parquet.json").write_text(
        '{"shard": {"path": "annotations/part-run1-00001.parq'
    )
    (run,) = unfinished_runs(tmp_path, published_run_ids=set())
    assert run.run_id == "run1" and [s.rows for s in run.shards] == [2] and run.meta["full"] is False
    assert unfinished_runs(tmp_path, published_run_ids={"run1"}) == []


def test_clean_up_deletes_only_unlisted_files_of_unpublished_runs(tmp_path) -> None:
    for run_id in ("dead", "done"):
        journal = RunJournal(tmp_path, run_id)
        journal.start({})
        _shard(tmp_path, run_id, ["a"], journal)
    (tmp_path / "annotations" / "part-dead-00001.parquet.partial").write_bytes(b"half")
    (tmp_path / "annotations" / "part-dead-00002.parquet").write_bytes(b"unjournaled")
    deleted = clean_up_runs(tmp_path, {"done"}, referenced={"annotations/part-dead-00000.parquet"})
    assert sorted(deleted) == ["annotations/part-dead-00001.parquet.partial", "annotations/part-dead-00002.parquet"]
    left = sorted(p.name for p in (tmp_path / "annotations").iterdir())
    assert left == ["part-dead-00000.parquet", "part-done-00000.parquet"] and not list((tmp_path / "_runs").iterdir())


def test_probe_cache_trusts_only_unchanged_files_checked_well_after_their_mtime(tmp_path) -> None:
    old, racy, changed = (tmp_path / n for n in ("old.png", "racy.png", "changed.png"))
    for path in (old, racy, changed):
        path.write_bytes(b"x" * 10)
    past = time.time_ns() - 10 * RACY_NS
    os.utime(old, ns=(past, past))
    os.utime(changed, ns=(past, past))

    def entry(path: Path, checked_ns: int) -> dict:
        stat = path.stat()
        return {"source_uri": str(path), "size_bytes": stat.st_size, "object_size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "etag": None, "checked_ns": checked_ns,
                "image_id": "id-" + path.stem, "width": 1, "height": 1, "format": "png",
                "reason": None, "detail": None, "locator": None}  # fmt: skip

    cache = ProbeCache.from_rows([entry(p, time.time_ns()) for p in (old, racy, changed)])
    changed.write_bytes(b"y" * 11)
    sources = [Source(SourceKind.FILE, str(p)) for p in (old, racy, changed, tmp_path / "new.png")]
    split = split_by_cache(sources, cache)
    assert split.hits.column("image_id").to_pylist() == ["id-old"]
    assert split.misses.column("uri").to_pylist() == [str(racy), str(changed), str(tmp_path / "new.png")]


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path) -> None:
    holder = rf"holds the lock \(host {socket.gethostname()}, pid {os.getpid()},"
    with OutputLock(tmp_path, "first"), pytest.raises(OutputError, match=holder):
        OutputLock(tmp_path, "second").acquire()
    assert not (tmp_path / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(
        f'{{"host": "{socket.gethostname()}", "pid": {dead.pid}, "started_at": "2026-01-01T00:00:00+00:00"}}'
    )
    lock = OutputLock(tmp_path, "mine")
    with pytest.warns(UserWarning, match=f"stale lock left by a dead process \\(host .*, pid {dead.pid},"):
        lock.acquire()
    assert read_holder(tmp_path / ".lock") == lock.holder
    lock.release()


def test_a_lock_held_from_another_host_is_not_taken_over(tmp_path) -> None:
    (tmp_path / ".lock").write_text('{"host": "elsewhere", "pid": 1, "started_at": "2026-01-01T00:00:00+00:00"}')
    with pytest.raises(OutputError, match=r"host elsewhere, pid 1.*if that run is dead, delete"):
        OutputLock(tmp_path).acquire()


# The paper's order: a captioner and a detector, a text filter, grounding on the kept texts, a final NMS.
DETECT = StageSpec("detect", "specialists", "d1", produces=frozenset({"regions"}))
TEXT_FILTER = StageSpec("text", "filters", "x1")
FINAL_NMS = StageSpec("nms", "filters", "n1")
ORDERED = StagePlan([CAPTION, DETECT, TEXT_FILTER, GROUNDING, FINAL_NMS])
ORDERED_CURRENT = {"caption": "c1", "detect": "d1", "text": "x1", "grounding": "g1", "nms": "n1"}


def test_a_changed_filter_that_feeds_a_later_specialist_makes_it_stale() -> None:
    row_plan = ORDERED.classify({**ORDERED_CURRENT, "text": "x0"})
    assert row_plan.level == Level.REANNOTATE
    assert (row_plan.stale, row_plan.refilter) == ({"grounding"}, {"text", "nms"})


def test_a_changed_final_filter_is_only_a_refilter() -> None:
    row_plan = ORDERED.classify({**ORDERED_CURRENT, "nms": "n0"})
    assert (row_plan.level, row_plan.stale, row_plan.refilter) == (Level.REFILTER, frozenset(), {"nms"})


def test_a_stale_specialist_reruns_the_filters_after_it_and_the_specialists_they_feed() -> None:
    row_plan = ORDERED.classify({**ORDERED_CURRENT, "detect": "d0"})
    assert (row_plan.stale, row_plan.refilter) == ({"detect", "grounding"}, {"text", "nms"})


def test_a_removed_known_filter_reruns_the_final_filters() -> None:
    plan = StagePlan(ORDERED.stages, known_filters={"old_blacklist"})
    row_plan = plan.classify({**ORDERED_CURRENT, "old_blacklist": "b1"})
    assert (row_plan.level, row_plan.stale, row_plan.refilter) == (Level.REFILTER, frozenset(), {"nms"})


def test_a_specialist_records_the_filters_before_it_and_a_filter_the_specialists_before_it() -> None:
    order = [("caption", "specialists", "c1"), ("text", "filters", "x1"), ("grounding", "specialists", "g1")]
    inputs = stage_inputs(order)
    assert inputs["caption"] == "" and inputs["text"] != "" and inputs["grounding"] != ""
    assert stage_inputs([*order[:1], ("text", "filters", "x2"), order[2]])["grounding"] != inputs["grounding"]
    moved = stage_inputs([order[0], order[2], order[1]])  # the text filter after grounding: both see otherwise
    assert moved["grounding"] == "" and moved["text"] != inputs["text"]
    assert stage_inputs([("caption", "specialists", "c1")]) == {"caption": ""}  # nothing before: nothing folded


def _ordered_record() -> ImageRecord:
    """A caption, a detector box, a junk caption the text filter dropped, grounding on the kept caption, and a
    box the final NMS suppressed."""
    caption, detect, grounding = (Provenance(n, "m") for n in ("caption", "detect", "grounding"))
    record = ImageRecord("id", "/a.png", 100, 80, "png")
    kept, junk = Text("brief", "a dog on grass", caption), Text("brief", "IMG_0001.JPG", caption)
    box, duplicate = (
        Region("object", (1, 2, 30, 40), "dog", detect, 0.9),
        Region("object", (1, 2, 31, 40), "dog", detect, 0.5),
    )
    record.texts += [kept, junk]
    record.regions += [box, duplicate]
    record.drop(junk, stage="text", rule="boilerplate")
    record.phrases.append(Phrase(kept.id, 2, 5, "dog", [GroundedRegion((1, 2, 30, 40), 0.9)], grounding))
    record.drop(duplicate, stage="nms", rule="nms", by=box.id)
    record.stages = dict(ORDERED_CURRENT)
    return record


def test_refilter_of_a_final_filter_keeps_the_earlier_filters_drops() -> None:
    record = _ordered_record()
    ORDERED.strip(record, ORDERED.classify({**ORDERED_CURRENT, "nms": "n0"}))
    assert [t.text for t in record.texts] == ["a dog on grass"] and len(record.regions) == 2
    assert [(d.stage, d.rule) for d in record.dropped] == [("text", "boilerplate")]
    assert len(record.phrases) == 1 and "nms" not in record.stages and record.stages["text"] == "x1"


def test_reannotate_after_a_changed_text_filter_restores_its_drops_and_removes_grounding() -> None:
    record = _ordered_record()
    ORDERED.strip(record, ORDERED.classify({**ORDERED_CURRENT, "text": "x0"}))
    assert sorted(t.text for t in record.texts) == ["IMG_0001.JPG", "a dog on grass"]
    assert record.phrases == [] and record.dropped == [] and len(record.regions) == 2
    assert record.stages == {"caption": "c1", "detect": "d1"}


def test_a_restored_text_brings_back_its_phrases_when_grounding_is_fresh() -> None:
    caption, grounding = Provenance("caption", "m"), Provenance("grounding", "m")
    record = ImageRecord("id", "/a.png", 100, 80, "png")
    text = Text("brief", "a dog on grass", caption)
    record.texts.append(text)
    record.phrases.append(Phrase(text.id, 2, 5, "dog", [GroundedRegion((1, 2, 30, 40), 0.9)], grounding))
    record.drop(text, stage="threshold", rule="too_short")  # a final filter dropped the text and its phrase
    record.stages = dict(CURRENT)
    PLAN.strip(record, PLAN.classify({**CURRENT, "threshold": "t0"}))
    assert [t.id for t in record.texts] == [text.id] and [p.phrase for p in record.phrases] == ["dog"]
    assert record.dropped == []


def test_a_dropped_mask_is_restored_onto_its_region_when_its_filter_reruns() -> None:
    ocr = Provenance("ocr", "m")
    region = Region("ocr_line", (0, 0, 50, 10), "hi", ocr, 0.9, mask=Mask((80, 100), "abc"), polygon=(0, 0, 5, 0, 5, 5))
    record = ImageRecord("id", "/a.png", 100, 80, "png", regions=[region])
    record.drop_mask(region, stage="threshold", rule="tiny_mask", value=0.0, threshold=1e-4)
    record.stages = dict(CURRENT)
    PLAN.strip(record, PLAN.classify({**CURRENT, "threshold": "t0"}))
    assert record.regions[0].mask == Mask((80, 100), "abc") and record.dropped == []


DETECTOR = StageSpec("detector", "specialists", "d1", produces=frozenset({"regions"}))
GRABCUT = StageSpec("grabcut", "specialists", "gc1", frozenset({"regions"}), frozenset({"masks"}))
SAM = StageSpec("sam", "specialists", "s1", frozenset({"regions"}), frozenset({"masks"}))
MASK_PLAN = StagePlan([DETECTOR, GRABCUT, SAM, THRESHOLD])
MASK_CURRENT = {"detector": "d1", "grabcut": "gc1", "sam": "s1", "threshold": "t1"}


def test_a_stale_mask_stage_clears_every_mask_and_reruns_every_mask_stage() -> None:
    row_plan = MASK_PLAN.classify({**MASK_CURRENT, "sam": "s0"})
    assert (row_plan.stale, row_plan.refilter) == ({"grabcut", "sam"}, {"threshold"})
    detector = Provenance("detector", "m")
    masked = Region("object", (0, 0, 50, 50), "dog", detector, 0.9, mask=Mask((80, 100), "abc"),
                    polygon=(0, 0, 5, 0, 5, 5), metrics={"predicted_iou": 0.9, "clip_similarity": 0.3})  # fmt: skip
    record = ImageRecord("id", "/a.png", 100, 80, "png", regions=[masked])
    record.stages = dict(MASK_CURRENT)
    MASK_PLAN.strip(record, row_plan)
    (region,) = record.regions
    assert (region.mask, region.polygon, region.metrics) == (None, None, {"clip_similarity": 0.3})
    assert record.stages == {"detector": "d1"}


def test_the_probe_cache_gives_back_a_containers_rows_together_in_member_order(tmp_path) -> None:
    shard, loose = tmp_path / "a.tar", tmp_path / "z.png"
    for path in (shard, loose):
        path.write_bytes(b"x" * 10)
    past = time.time_ns() - 10 * RACY_NS
    for path in (shard, loose):
        os.utime(path, ns=(past, past))

    def row(uri: str, container: Path | None, member: int) -> dict:
        stat = (container or Path(uri)).stat()
        locator = None if container is None else {"container": str(container), "offset": member * 512}
        return {"source_uri": uri, "object_size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "checked_ns": time.time_ns(), "image_id": f"id-{Path(uri).name}", "locator": locator}  # fmt: skip

    members = [row(f"{shard}#{name}", shard, k) for k, name in enumerate(("c.png", "a.png", "b.png"))]
    cache = ProbeCache.from_rows([members[2], row(str(loose), None, 0), members[0], members[1]])
    assert cache.rows == 4 and cache.positions(str(shard)).tolist() == [0, 2, 3]
    assert cache.positions(str(loose)).tolist() == [1] and cache.positions(str(tmp_path / "other.tar")) is None
    sources = [Source(SourceKind.TAR, str(shard)), Source(SourceKind.FILE, str(loose))]
    split = split_by_cache(sources, cache)
    assert split.hits.column("image_id").to_pylist() == [
        "id-a.tar#b.png",
        "id-a.tar#c.png",
        "id-a.tar#a.png",
        "id-z.png",
    ]
    assert split.misses.num_rows == 0 and listing_sources(split_by_cache(sources, None).misses) == sources

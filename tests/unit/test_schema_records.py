"""The annotation schema: records round-trip through Arrow and Parquet, and validation names the bad field."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from schemas.arrow import (
    ANNOTATION_SCHEMA,
    SCHEMA_VERSION,
    conform,
    records_to_table,
    schema_version_of,
    table_to_rows,
)
from schemas.records import Drop, GroundedRegion, ImageRecord, Mask, Phrase, Provenance, Region, StageError, Text
from schemas.validation import SchemaError, validate_record

OCR = Provenance("ocr", "rapidocr==1.4.4", 0)
DET = Provenance("haar", "opencv-4.14/haarcascade_frontalface_default.xml", 0)
IMAGE_ID = "ab" * 32


def full_record() -> ImageRecord:
    caption = Text("brief", "A woman rides a red bicycle", Provenance("florence2", "microsoft/Florence-2-large@main"))
    record = ImageRecord(IMAGE_ID, "/data/a.jpg", 640, 480, "jpeg", source_uris=["/data/a.jpg", "/data/copy/a.jpg"])
    record.texts.append(caption)
    record.regions += [
        Region("ocr_line", (10, 20, 110, 40), "EXIT", OCR, score=0.98, quad=(10, 20, 110, 21, 109, 40, 11, 39)),
        Region(
            "object",
            (100, 100, 300, 400),
            "face",
            DET,
            score=0.7,
            mask=Mask((480, 640), "PPYo0"),
            polygon=(100, 100, 300, 100, 300, 400),
            metrics={"predicted_iou": 0.91, "stability_score": 0.96},
        ),
    ]
    record.phrases.append(
        Phrase(caption.id, 2, 7, "woman", [GroundedRegion((100, 100, 300, 400), 0.8)], Provenance("gdino", "g@1"), 0.8)
    )
    dropped = Region("object", (0, 0, 5, 5), "it", DET, score=0.1)
    record.dropped.append(Drop.of(dropped, stage="region_filter", rule="min_score", value=0.1, threshold=0.3))
    record.errors.append(StageError("sam", "RuntimeError: out of memory"))
    record.stages = {"ocr": "f1", "haar": "f2"}
    return record


def test_record_round_trips_through_an_arrow_row() -> None:
    record = full_record()
    row = record.to_row()
    assert ImageRecord.from_row(row).to_row() == row


def test_record_round_trips_through_parquet_and_pandas(tmp_path) -> None:
    record = full_record()
    pq.write_table(records_to_table([record]), tmp_path / "shard.parquet")
    table = pq.read_table(tmp_path / "shard.parquet")
    back = ImageRecord.from_row(table_to_rows(table)[0])
    assert [r.id for r in back.regions] == [r.id for r in record.regions]
    assert back.regions[0].score == pytest.approx(0.98)  # stored as float32
    assert back.regions[1].metrics == pytest.approx({"predicted_iou": 0.91, "stability_score": 0.96})
    assert back.regions[0].quad == (10, 20, 110, 21, 109, 40, 11, 39)
    assert back.regions[1].mask == Mask((480, 640), "PPYo0")
    assert back.phrases[0].regions[0].bbox == (100, 100, 300, 400)
    assert back.dropped[0].rule == "min_score" and back.dropped[0].threshold == 0.3
    assert back.stages == {"haar": "f2", "ocr": "f1"}
    frame = pd.read_parquet(tmp_path / "shard.parquet")
    assert frame.loc[0, "source_uris"].tolist() == ["/data/a.jpg", "/data/copy/a.jpg"]
    assert len(frame.loc[0, "regions"]) == 2


def test_input_metadata_round_trips_through_parquet(tmp_path) -> None:
    record = full_record()
    record.metadata = '{"url":"https://example.com/a.jpg","key":"000000001","width":640}'
    pq.write_table(records_to_table([record]), tmp_path / "s.parquet")
    back = ImageRecord.from_row(table_to_rows(pq.read_table(tmp_path / "s.parquet"))[0])
    assert back.metadata == record.metadata
    assert pq.read_schema(tmp_path / "s.parquet").field("metadata").type == "string"


def test_a_shard_of_the_previous_schema_version_reads_with_null_metadata() -> None:
    old = records_to_table([full_record()]).drop_columns(["metadata"])
    conformed = conform(old)
    assert conformed.schema.names == ANNOTATION_SCHEMA.names
    assert conformed.column("metadata").to_pylist() == [None]
    assert {k: v for k, v in table_to_rows(conformed)[0].items() if k != "metadata"} == table_to_rows(old)[0]


def test_schema_version_is_stamped_in_shard_metadata(tmp_path) -> None:
    pq.write_table(records_to_table([full_record()]), tmp_path / "s.parquet")
    assert schema_version_of(pq.read_schema(tmp_path / "s.parquet")) == SCHEMA_VERSION
    assert schema_version_of(ANNOTATION_SCHEMA) == SCHEMA_VERSION


def test_drop_keeps_the_whole_annotation_and_restores_it() -> None:
    record = full_record()
    face = record.regions[1]
    record.drop(face, stage="nms", rule="nms_iou", value=0.83, threshold=0.7, by="kept-id")
    assert face not in record.regions
    drop = record.dropped[-1]
    assert (drop.annotation_type, drop.rule, drop.by, drop.value) == ("region", "nms_iou", "kept-id", 0.83)
    assert drop.restore().to_dict() == face.to_dict()


def test_annotation_ids_are_stable_and_content_based() -> None:
    a = Region("object", (1, 2, 3, 4), "cat", DET)
    b = Region("object", (1, 2, 3, 4), "cat", DET)
    c = Region("object", (1, 2, 3, 5), "cat", DET)
    assert a.id == b.id != c.id


def test_valid_record_passes_validation() -> None:
    validate_record(full_record())


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((-5, 0, 10, 10), "negative coordinate"),
        ((50, 10, 20, 30), "inverted"),
        ((600, 400, 700, 470), "outside the 640x480 image"),
        ((0, 0, 10), "4 values"),
    ],
)
def test_validation_rejects_bad_boxes(box, message) -> None:
    record = full_record()
    record.regions[0].bbox = box
    with pytest.raises(SchemaError, match=message):
        validate_record(record)


def test_validation_rejects_a_phrase_span_outside_its_text() -> None:
    record = full_record()
    record.phrases[0].end = 400
    with pytest.raises(SchemaError, match=r"span \[2, 400\) lies outside its text of length 27"):
        validate_record(record)


def test_validation_rejects_a_phrase_that_differs_from_its_span() -> None:
    record = full_record()
    record.phrases[0].phrase = "bicycle"
    with pytest.raises(SchemaError, match="differs from its span 'woman'"):
        validate_record(record)


def test_validation_rejects_unknown_kind_and_mask_of_wrong_size() -> None:
    record = full_record()
    record.regions[0].kind = "blob"  # type: ignore[assignment]
    with pytest.raises(SchemaError, match=r"regions\[0\].kind 'blob'"):
        validate_record(record)
    record = full_record()
    record.regions[1].mask = Mask((10, 10), "0")
    with pytest.raises(SchemaError, match="mask size"):
        validate_record(record)


def test_dropping_a_text_drops_its_phrases_naming_the_text_drop() -> None:
    record = full_record()
    caption, phrase = record.texts[0], record.phrases[0]
    record.drop(caption, stage="text", rule="too_short", value=2, threshold=3)
    assert record.texts == [] and record.phrases == []
    text_drop, phrase_drop = record.dropped[-2:]
    assert (text_drop.annotation_type, text_drop.annotation_id) == ("text", caption.id)
    assert (phrase_drop.annotation_type, phrase_drop.annotation_id, phrase_drop.stage) == ("phrase", phrase.id, "text")
    assert (phrase_drop.rule, phrase_drop.by, phrase_drop.value) == ("text_dropped:too_short", caption.id, 2.0)
    validate_record(record)  # no phrase points at a text that is gone


def test_restoring_a_text_drop_restores_its_phrases() -> None:
    record = full_record()
    caption, phrase = record.texts[0], record.phrases[0]
    record.drop(caption, stage="text", rule="too_short")
    drops, record.dropped = record.dropped[-2:], record.dropped[:-2]
    record.restore(drops)
    assert [t.id for t in record.texts] == [caption.id] and [p.to_dict() for p in record.phrases] == [phrase.to_dict()]
    validate_record(record)


def test_a_mask_drop_keeps_the_region_and_takes_the_mask_polygon_and_mask_metrics() -> None:
    record = full_record()
    face = record.regions[1]
    face.metrics["clip_similarity"] = 0.3
    record.drop_mask(face, stage="confidence", rule="min_predicted_iou", value=0.86, threshold=0.88)
    assert face in record.regions and (face.mask, face.polygon) == (None, None)
    assert face.metrics == {"clip_similarity": 0.3}  # a box measure stays; the mask's measures leave with it
    drop = record.dropped[-1]
    assert (drop.annotation_type, drop.annotation_id, drop.rule, drop.value) == (
        "mask", face.id, "min_predicted_iou", 0.86)  # fmt: skip
    with pytest.raises(ValueError, match="mask drop is restored onto its region"):
        drop.restore()


def test_restoring_a_mask_drop_puts_mask_polygon_and_metrics_back_after_its_region() -> None:
    record = full_record()
    face = record.regions[1]
    before = face.to_dict()
    record.drop_mask(face, stage="geometry", rule="tiny_mask")
    record.drop(face, stage="nms", rule="nms")  # dropped later without its mask
    drops, record.dropped = record.dropped[-2:], record.dropped[:-2]
    record.restore(drops)
    assert [r.to_dict() for r in record.regions if r.id == face.id] == [before]


def test_mask_drops_round_trip_through_arrow() -> None:
    record = full_record()
    record.drop_mask(record.regions[1], stage="geometry", rule="tiny_mask", value=1e-5, threshold=1e-4)
    back = ImageRecord.from_row(table_to_rows(records_to_table([record]))[0])
    assert back.dropped[-1] == record.dropped[-1]


def test_counts_name_a_mask_drop_apart_from_a_region_drop() -> None:
    from engine.store.counts import count_annotations

    record = full_record()
    record.drop_mask(record.regions[1], stage="geometry", rule="tiny_mask")
    record.drop(record.regions[0], stage="geometry", rule="tiny")
    assert [d.key for d in record.dropped[-2:]] == ["geometry/tiny_mask (mask)", "geometry/tiny"]
    counts = count_annotations(records_to_table([record]))
    assert counts["dropped"] == {"total": 3, "region_filter/min_score": 1, "geometry/tiny_mask (mask)": 1,
                                 "geometry/tiny": 1}  # fmt: skip
    assert counts["regions"] == {"total": 1, "object": 1}  # the masked region stays


def test_a_shard_of_schema_1_1_reads_with_no_changes(tmp_path) -> None:
    old = records_to_table([full_record()]).drop_columns(["changes"])
    conformed = conform(old)
    assert conformed.schema.names == ANNOTATION_SCHEMA.names and conformed.column("changes").to_pylist() == [None]
    assert ImageRecord.from_row(table_to_rows(conformed)[0]).changes == []


def test_changes_round_trip_through_parquet(tmp_path) -> None:
    from schemas.records import Change

    record = full_record()
    region = record.regions[0]
    record.changes = [
        Change.of(region, "bbox", (1.0, 2.0, 3.0, 4.0), region.bbox, stage="refine_merge", round=2, by="p1"),
        Change.of(region, "added", None, region.bbox, stage="refine_merge", round=1),
    ]
    pq.write_table(records_to_table([record]), tmp_path / "s.parquet")
    back = ImageRecord.from_row(table_to_rows(pq.read_table(tmp_path / "s.parquet"))[0])
    assert back.changes == record.changes
    assert back.changes[0].old_value == [1.0, 2.0, 3.0, 4.0] and back.changes[1].old_value is None

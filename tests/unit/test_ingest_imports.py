"""Existing labels: COCO / JSONL / Parquet files parsed, entries matched to images, records annotated."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from engine.ingest.imports.formats import AnnotationFileError, parse_annotation_file
from engine.ingest.imports.matching import EntryIndex, match_report
from engine.ingest.imports.plan import with_imports
from engine.ingest.imports.stage import ImportedAnnotations, ImportOptions, import_stage_name
from schemas.masks import decode_mask
from schemas.records import ImageRecord
from schemas.validation import validate_record

COCO = {
    "images": [
        {"id": 1, "file_name": "train/bus.jpg", "width": 100, "height": 50},
        {"id": 2, "file_name": "cat.jpg", "width": 40, "height": 40},
    ],
    "categories": [{"id": 7, "name": "bus"}, {"id": 9, "name": "cat"}],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 7,
            "bbox": [10, 5, 50, 20],
            "segmentation": [[10, 5, 60, 5, 60, 25, 10, 25]],
        },
        {"id": 2, "image_id": 1, "caption": "a red bus on a street"},
        {"id": 3, "image_id": 2, "category_id": 9, "bbox": [0, 0, 20, 20], "score": 0.9},
    ],
}


ONE = {"images": [{"id": 1, "file_name": "x"}]}


def coco_bytes(document: dict = COCO) -> bytes:
    return json.dumps(document).encode()


def record(uri: str, width: int = 100, height: int = 50) -> ImageRecord:
    return ImageRecord("a" * 64, uri, width, height, "jpeg")


def test_coco_instances_and_captions_become_entries_with_xyxy_boxes() -> None:
    bus, cat = parse_annotation_file(coco_bytes(), "coco.json")
    assert (bus.name, bus.width, bus.height, bus.captions) == ("train/bus.jpg", 100, 50, ["a red bus on a street"])
    assert [(o.label, o.bbox, o.score) for o in bus.objects] == [("bus", (10.0, 5.0, 60.0, 25.0), None)]
    assert [(o.label, o.score) for o in cat.objects] == [("cat", 0.9)]


def test_jsonl_and_parquet_caption_tables_merge_captions_by_path() -> None:
    lines = [
        {"path": "a.jpg", "caption": "one"},
        {"path": "a.jpg", "caption": "two"},
        {"file_name": "b.jpg", "caption": ""},
    ]
    jsonl = b"\n\n".join(json.dumps(line).encode() for line in lines)
    (a, b) = parse_annotation_file(jsonl, "caps.jsonl")
    assert (a.name, a.captions, b.name, b.captions) == ("a.jpg", ["one", "two"], "b.jpg", [])
    sink = io.BytesIO()
    pq.write_table(pa.table({"path": ["x/c.png"], "caption": ["a cat"], "other": [1]}), sink)
    (c,) = parse_annotation_file(sink.getvalue(), "caps.parquet")
    assert (c.name, c.captions) == ("x/c.png", ["a cat"])


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"{", "a.json", "a.json: not valid JSON"),
        (b'{"annotations": []}', "a.json", "a.json: not a COCO file (no 'images' list)"),
        (coco_bytes({**ONE, "annotations": [{"image_id": 2, "caption": "c"}]}), "a.json", "names no image"),
        (coco_bytes({**ONE, "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4], "category_id": 5}]}), "a.json",
         "category_id 5 is not in 'categories'"),
        (b'{"path": "a.jpg"}\n', "c.jsonl", "c.jsonl: needs a path column (path or file_name) and a 'caption' column"),
        (b"x", "c.csv", "c.csv: not an annotations file"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_it(data: bytes, name: str, message: str) -> None:
    with pytest.raises(AnnotationFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_annotation_file(data, name)


def test_entries_match_by_path_under_an_input_root_then_by_unique_base_name() -> None:
    entries = parse_annotation_file(coco_bytes(), "coco.json")
    index = EntryIndex(entries)
    roots = ["/data/coco"]
    assert index.find(["/data/coco/train/bus.jpg"], roots) == 0
    assert index.find(["/elsewhere/deep/cat.jpg"], roots) == 1  # by its base name, unique in the file
    assert index.find(["/data/coco/val/bus.jpg"], roots) == 0  # base name bus.jpg is unique too
    assert index.find(["/data/coco/dog.jpg"], roots) is None
    assert index.find(["s3://b/shard.tar#train/bus.jpg"], roots) == 0  # a member path inside a container


def test_a_base_name_shared_by_two_entries_matches_only_by_path() -> None:
    document = {"images": [{"id": 1, "file_name": "a/x.jpg"}, {"id": 2, "file_name": "b/x.jpg"}], "annotations": []}
    index = EntryIndex(parse_annotation_file(coco_bytes(document), "two.json"))
    assert index.find(["/d/b/x.jpg"], ["/d"]) == 1 and index.find(["/d/c/x.jpg"], ["/d"]) is None


def test_the_match_report_counts_unmatched_entries() -> None:
    index = EntryIndex(parse_annotation_file(coco_bytes(), "coco.json"))
    report = match_report(index, [["/data/coco/train/bus.jpg"], ["/data/coco/dog.jpg"]], ["/data/coco"])
    assert (report.entries, report.matched_entries, report.matched_images, report.unmatched) == (2, 1, 1, ("cat.jpg",))


def stage(tmp_path, document: dict = COCO, roots: tuple[str, ...] = ("/data/coco",)) -> ImportedAnnotations:
    path = tmp_path / "coco.json"
    path.write_bytes(coco_bytes(document))
    return ImportedAnnotations("import:coco", ImportOptions(str(path), roots))


def test_the_stage_adds_boxes_masks_and_captions_with_import_provenance(tmp_path) -> None:
    bus = record("/data/coco/train/bus.jpg", 200, 100)  # labelled at 100x50: boxes and polygons scale by 2
    other = record("/data/coco/dog.jpg")
    imported = stage(tmp_path)
    imported.process([bus, other], None)
    (region,) = bus.regions
    assert (region.kind, region.text, region.bbox, region.score) == ("object", "bus", (20.0, 10.0, 120.0, 50.0), None)
    assert region.provenance.source == "import:coco" and region.provenance.model == imported.model_id
    assert region.polygon == (20.0, 10.0, 120.0, 10.0, 120.0, 50.0, 20.0, 50.0)
    mask = decode_mask(region.mask)
    assert mask.shape == (100, 200) and mask[30, 70] and not mask[5, 5]
    assert [(t.granularity, t.text, t.provenance.source) for t in bus.texts] == [
        ("brief", "a red bus on a street", "import:coco")
    ]
    validate_record(bus)
    assert other.regions == [] and other.texts == []


def test_the_fingerprint_follows_the_file_content_not_its_roots(tmp_path) -> None:
    first = stage(tmp_path).fingerprint()
    assert stage(tmp_path, roots=("/other",)).fingerprint() == first
    changed = json.loads(json.dumps(COCO))
    changed["annotations"][0]["category_id"] = 9
    assert stage(tmp_path, changed).fingerprint() != first


def test_with_imports_places_one_stage_per_file_first(tmp_path) -> None:
    (tmp_path / "coco.json").write_bytes(coco_bytes())
    config = parse_config({"filters": [{"name": "confidence", "backend": "confidence"}]})
    imported = with_imports(config, [str(tmp_path / "coco.json")], [str(tmp_path)])
    assert [s.name for s in imported.stages] == ["import:coco", "confidence"]
    assert imported.specialists[0].options.roots == (str(tmp_path),)
    with pytest.raises(ConfigError, match="already named 'import:coco'"):
        with_imports(imported, [str(tmp_path / "coco.json")], [])
    with pytest.raises(FileNotFoundError, match=r"--annotations .*missing\.json: no such file"):
        with_imports(config, [str(tmp_path / "missing.json")], [])


def test_stage_name_is_the_file_stem() -> None:
    assert import_stage_name("/x/instances_val2017.json") == "import:instances_val2017"
    assert import_stage_name("s3://b/caps.parquet") == "import:caps"


def test_rle_segmentation_of_the_image_size_is_kept() -> None:
    from pycocotools import mask as coco_mask

    binary = np.zeros((50, 100), dtype=np.uint8)
    binary[5:25, 10:60] = 1
    rle = coco_mask.encode(np.asfortranarray(binary))
    document = json.loads(json.dumps({**COCO, "annotations": []}))
    segmentation = {"size": [50, 100], "counts": rle["counts"].decode()}
    document["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 50, 20], "segmentation": segmentation}
    ]
    from engine.ingest.imports.stage import imported_regions
    from schemas.records import Provenance

    (entry, _) = parse_annotation_file(coco_bytes(document), "rle.json")
    (region,) = imported_regions(entry, 100, 50, Provenance("import:rle", "m"))
    assert decode_mask(region.mask).sum() == binary.sum()


def test_a_worker_that_reads_other_bytes_than_the_run_planned_stops(tmp_path) -> None:
    path = tmp_path / "coco.json"
    path.write_bytes(coco_bytes())
    planned = ImportedAnnotations("import:coco", ImportOptions(str(path), (), "brief", "0" * 64))
    with pytest.raises(AnnotationFileError, match=r"coco\.json: changed while the run was using it"):
        planned.process([record("/data/coco/train/bus.jpg")], None)

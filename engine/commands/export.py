"""``fld-engine export``: a version as a training corpus (Florence-2 JSONL, COCO, YOLO or Hugging Face)."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.errors import OutputError
from engine.exports.coco import COCO_TASKS
from engine.exports.destination import check_output_folder
from engine.exports.near_duplicates import near_duplicates_of, with_near_duplicates
from engine.exports.report import ExportReport
from engine.store.integrity import verify_checksums
from engine.store.location import Location, Where, location
from engine.store.manifest import require_manifest
from engine.store.reader import iter_records
from schemas.records import REGION_KINDS

FORMATS = ("florence", "coco", "yolo", "hf")


SUMMARY = "write a version as a training corpus (Florence-2, COCO, YOLO, Hugging Face)"
DESCRIPTION = """Write a version as a training corpus: Florence-2 prompt/target JSONL, COCO, an Ultralytics YOLO
dataset, or Hugging Face Parquet with a dataset card; train and validation split by image id. Images are copied with
their location metadata removed unless --keep-exif. The destination must be new or empty."""
EXAMPLES = """
fld-engine export corpus/ --format florence --to exports/florence
fld-engine export corpus/ --format coco --to exports/coco --tasks object ocr_line phrase
fld-engine export corpus/ --format yolo --to exports/yolo --val-fraction 0.2
fld-engine export corpus/ --format coco --to exports/coco_all --include-near-duplicates
fld-engine export s3://bucket/corpus --format hf --to s3://bucket/exports/hf --version 4
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "export", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus")
    parser.add_argument(
        "--format", required=True, choices=FORMATS, help="florence (JSONL), coco, yolo (Ultralytics) or hf (Parquet)"
    )
    parser.add_argument(
        "--to", required=True, metavar="DEST", help="an empty or new folder, local or a URI (s3://bucket/export)"
    )
    parser.add_argument("--version", type=int, help="a published version (default: the latest)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="florence: Florence-2 tasks (e.g. '<OD>' '<OCR>'; default all); coco/yolo: region kinds "
        f"({', '.join(REGION_KINDS)}; default object), coco also 'phrase' (grounded phrases with their masks)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of images in validation, split by image id (default 0.1)",
    )
    parser.add_argument(
        "--keep-exif",
        action="store_true",
        help="copy image metadata as it is; by default location metadata (Exif GPS, XMP, IPTC) is removed",
    )
    parser.add_argument(
        "--include-near-duplicates",
        action="store_true",
        help="also export each near-duplicate curation skipped, with its representative's annotations scaled to "
        "its size (florence, coco, yolo; default: only annotated images)",
    )
    parser.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    version, report = export_version(
        args.directory,
        args.format,
        args.to,
        args.version,
        args.tasks,
        args.val_fraction,
        args.keep_exif,
        args.include_near_duplicates,
    )
    print(f"{location(args.directory)} version {version}")
    print(report.format_lines())
    return 0


def export_version(
    directory: Where,
    fmt: str,
    destination: Where,
    version: int | None = None,
    tasks: list[str] | None = None,
    val_fraction: float = 0.1,
    keep_exif: bool = False,
    include_near_duplicates: bool = False,
) -> tuple[int, ExportReport]:
    """Check the request and every shard's checksum (and the skipped table's, for near-duplicates), then
    export; the version exported and the report."""
    if fmt not in FORMATS:
        raise OutputError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise OutputError(f"--val-fraction {val_fraction}: must be at least 0 and below 1")
    root = location(directory)
    check_output_folder(destination)
    manifest = require_manifest(root, version)
    # Before anything is written: every shard is the one the manifest recorded (a swapped shard would
    # export duplicate images and drop others).
    if include_near_duplicates and fmt == "hf":
        raise OutputError(
            "--include-near-duplicates: the hf export reads the shards as they are; use florence, coco or yolo"
        )
    verify_checksums(root, manifest.shards + (manifest.skipped if include_near_duplicates else []))
    report = run_export(
        fmt, root, manifest.version, destination, tasks, val_fraction, keep_exif, include_near_duplicates
    )
    return manifest.version, report


def run_export(
    fmt: str,
    root: Location,
    version: int,
    destination: Where,
    tasks: list[str] | None,
    val_fraction: float,
    keep_exif: bool = False,
    include_near_duplicates: bool = False,
) -> ExportReport:
    """Stream ``root``'s ``version`` into the exporter of ``fmt``; a failed export leaves no output. With
    ``include_near_duplicates``, each skipped copy follows its representative with its annotations."""
    records = iter_records(root, version)
    if include_near_duplicates:
        copies = near_duplicates_of(root, require_manifest(root, version))
        records = with_near_duplicates(records, copies)
    if fmt in ("coco", "yolo"):
        allowed = COCO_TASKS if fmt == "coco" else REGION_KINDS
        unknown = [t for t in tasks or [] if t not in allowed]
        if unknown:
            raise OutputError(f"--tasks {' '.join(unknown)}: {fmt} takes region kinds ({', '.join(allowed)})")
        kinds = tuple(tasks or ("object",))
        if fmt == "coco":
            from engine.exports.coco import export_coco

            return export_coco(records, destination, kinds, val_fraction, keep_exif)
        from engine.exports.yolo import export_yolo

        return export_yolo(records, destination, kinds, val_fraction, keep_exif)
    if fmt == "hf":
        if tasks:
            raise OutputError("--tasks: the hf export writes every annotation; it takes no tasks")
        from engine.exports.hf import export_hf

        return export_hf(root, destination, version, val_fraction, keep_exif=keep_exif)
    from engine.exports.florence import check_tasks, export_florence

    try:
        check_tasks(tasks)
    except ValueError as error:
        raise OutputError(f"--tasks: {error}") from None
    return export_florence(records, destination, tasks, val_fraction, keep_exif)

"""Audit and export throughput on a generated version with FLD-5B-dense annotations and real image files.

Images are generated JPEGs (640x480); annotations come from ``bench.writer_io.annotated_record``
(captions, OCR lines with quads, objects, grounded phrases, NMS drops) with a rectangle mask on
every fourth object. Measured: the audit pass, the HTML report, and each export, in records/s.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.writer_io import RUNS, annotated_record, write_engine
from engine.audit.dataset_audit import audit_version
from engine.audit.html_report import render_html
from engine.config.settings import WriterConfig
from engine.store.reader import iter_records
from schemas.arrow import records_to_table
from schemas.masks import encode_mask

WIDTH, HEIGHT = 640, 480


def generated_image(index: int, folder: Path) -> Path:
    path = folder / f"{index:06d}.jpg"
    if not path.exists():
        rng = np.random.default_rng(index)
        gradient = np.linspace(0, 255, WIDTH, dtype=np.float64)[None, :, None] * rng.random(3)
        pixels = np.clip(gradient + rng.normal(0, 20, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, "JPEG", quality=85)
    return path


def build_version(rows: int, root: Path, images: Path) -> None:
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for index in range(rows):
        path = generated_image(index, images)
        record = annotated_record(index, rng)
        record.image_id = hashlib.sha256(path.read_bytes()).hexdigest()
        record.source_uri, record.source_uris = str(path), [str(path)]
        for number, region in enumerate(r for r in record.regions if r.kind == "object"):
            x0, y0, x1, y1 = (int(min(v, limit)) for v, limit in zip(region.bbox, (WIDTH, HEIGHT) * 2, strict=True))
            if number % 4 == 0 and x1 > x0 and y1 > y0:
                mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
                mask[y0:y1, x0:x1] = True
                region.mask = encode_mask(mask)
        records.append(record)
    write_engine(records_to_table(records), root, WriterConfig(rows_per_shard=500))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench audit_exports", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="annotated images (default 1000)")
    parser.add_argument("--sample", type=int, default=16, help="images drawn in the report (default 16)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    from engine.exports.coco import export_coco
    from engine.exports.hf import export_hf
    from engine.exports.yolo import export_yolo

    args = parse(argv)
    folder = RUNS / "audit_exports"
    shutil.rmtree(folder / "version", ignore_errors=True)
    shutil.rmtree(folder / "out", ignore_errors=True)
    build_version(args.rows, folder / "version", folder / "images")
    root = folder / "version"
    started = time.perf_counter()
    result = audit_version(root, sample=args.sample)
    audit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    page = render_html(result)
    html_seconds = time.perf_counter() - started
    annotations = sum(result.stats.by_type.values())
    exports = {
        "coco": lambda dest: export_coco(iter_records(root), dest, ("object", "ocr_line")),
        "yolo": lambda dest: export_yolo(iter_records(root), dest),
        "hf": lambda dest: export_hf(root, dest),
    }
    try:
        from engine.exports.florence import export_florence

        exports["florence"] = lambda dest: export_florence(iter_records(root), dest)
    except ImportError:
        pass
    rates = {}
    for name, export in exports.items():
        report = export(folder / "out" / name)
        assert report.images == args.rows, report.format_lines()
        rates[name] = round(report.records / report.seconds, 1)
    shutil.rmtree(folder / "out", ignore_errors=True)
    return {
        "rows": args.rows,
        "annotations_per_row": round(annotations / args.rows, 1),
        "audit_pass_rows_per_s": round(args.rows / audit_seconds, 1),
        "html_render_s": round(html_seconds, 2),
        "html_mib": round(len(page) / 1024**2, 2),
        "export_rows_per_s": rates,
    }

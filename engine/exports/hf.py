"""Hugging Face export: Parquet shards that ``datasets.load_dataset("parquet", data_dir=...)`` reads with images.

``data/{train,validation}-NNNNN.parquet`` hold the annotation columns plus an ``image`` column
(``{bytes, path}``, declared as a ``datasets.Image`` feature in the schema metadata). Arrow maps,
which ``datasets`` cannot type, become lists of ``{key, value}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.exports.images import export_bytes, source_bytes
from engine.exports.report import ExportReport
from engine.exports.split import split_of
from engine.ingest import BadImage
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord

HF_SPLITS = {"train": "train", "val": "validation"}
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_FEATURES = {b"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}}}}).encode()}


def without_maps(data_type: pa.DataType) -> pa.DataType:
    """``data_type`` with every map replaced by a list of ``{key, value}`` structs, recursively."""
    if pa.types.is_map(data_type):
        entry = pa.struct([("key", without_maps(data_type.key_type)), ("value", without_maps(data_type.item_type))])
        return pa.list_(entry)
    if pa.types.is_list(data_type):
        return pa.list_(without_maps(data_type.value_type))
    if pa.types.is_struct(data_type):
        return pa.struct([pa.field(f.name, without_maps(f.type), f.nullable) for f in data_type])
    return data_type


HF_SCHEMA = pa.schema(
    [pa.field("image", IMAGE)] + [pa.field(f.name, without_maps(f.type), f.nullable) for f in ANNOTATION_SCHEMA],
    metadata=_FEATURES,
)


class _SplitShards:
    """Buffers rows of one split and writes shards of ``rows_per_shard`` rows."""

    def __init__(self, folder: Path, split: str, rows_per_shard: int) -> None:
        self.folder, self.split, self.rows_per_shard = folder, split, rows_per_shard
        self.rows: list[dict] = []
        self.written: dict[str, int] = {}

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        plain = pa.Table.from_pylist(
            [{k: v for k, v in row.items() if k != "image"} for row in self.rows], schema=ANNOTATION_SCHEMA
        )
        columns = [pa.array([row["image"] for row in self.rows], IMAGE)]
        columns += [plain.column(f.name).cast(without_maps(f.type)) for f in ANNOTATION_SCHEMA]
        table = pa.Table.from_arrays(columns, schema=HF_SCHEMA)
        name = f"{self.split}-{len(self.written):05d}.parquet"
        self.folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.folder / (name + ".partial"), compression="zstd")
        (self.folder / (name + ".partial")).replace(self.folder / name)
        self.written[name] = len(self.rows)
        self.rows = []


def export_hf(
    records: Iterable[ImageRecord], destination: Path, val_fraction: float = 0.1, rows_per_shard: int = 500
) -> ExportReport:
    """Write ``records`` with their image bytes as train/validation Parquet shards under ``destination/data``."""
    started = time.perf_counter()
    report = ExportReport("hf", destination)
    shards = {split: _SplitShards(destination / "data", name, rows_per_shard) for split, name in HF_SPLITS.items()}
    for record in records:
        report.records += 1
        data = source_bytes(record)
        if data is None:
            report.skip("source missing or changed since annotation")
            continue
        try:
            payload, suffix = export_bytes(data)
        except BadImage as error:
            report.skip(f"undecodable image ({error.reason})")
            continue
        row = record.to_row()
        row["image"] = {"bytes": payload, "path": record.image_id[:16] + suffix}
        shards[split_of(record.image_id, val_fraction)].add(row)
        report.images += 1
        report.annotations["texts"] += len(record.texts)
        report.annotations["regions"] += len(record.regions)
        report.annotations["phrases"] += len(record.phrases)
    for split in shards.values():
        split.flush()
        report.files.update({f"data/{name}": rows for name, rows in split.written.items()})
    report.seconds = time.perf_counter() - started
    return report

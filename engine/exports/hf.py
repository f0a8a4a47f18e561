"""Hugging Face export: Parquet shards that ``datasets.load_dataset("parquet", data_dir=...)`` reads with images.

``data/{train,validation}-NNNNN.parquet`` hold the annotation columns plus an ``image`` column
(``{bytes, path}``, declared as a ``datasets.Image`` feature in the schema metadata). Arrow maps,
which ``datasets`` cannot type, become lists of ``{key, value}``. The version's Arrow batches are
carried over column by column (no per-row Python objects); only the image bytes are read per row.
``README.md`` is the dataset card (:mod:`engine.exports.hf_card`), so ``datasets.load_dataset(DEST)``
reads the export with its declared features.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.exports.destination import export_folder
from engine.exports.hf_card import CardCounts, write_card
from engine.exports.images import export_bytes
from engine.exports.report import ExportReport
from engine.exports.split import split_of
from engine.ingest.decode import BadImage
from engine.ingest.locator import read_source
from engine.store.location import Where, location
from engine.store.manifest import require_manifest
from engine.store.reader import iter_batches
from schemas.arrow import ANNOTATION_SCHEMA

HF_SPLITS = {"train": "train", "val": "validation"}
BATCH_ROWS = 128
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


def _image_of(image_id: str, uris: list[str], keep_exif: bool = False) -> tuple[dict | None, str]:
    """The ``{bytes, path}`` image cell for a row, or None and why it cannot be exported."""
    for uri in uris:
        try:
            data = read_source(uri, image_id)
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == image_id:
            try:
                payload, suffix = export_bytes(data, keep_exif)
            except BadImage as error:
                return None, f"undecodable image ({error.reason})"
            return {"bytes": payload, "path": image_id[:16] + suffix}, ""
    return None, "source missing or changed since annotation"


class _SplitShards:
    """Buffers tables of one split and writes shards of at least ``rows_per_shard`` rows."""

    def __init__(self, folder: Path, split: str, rows_per_shard: int) -> None:
        self.folder, self.split, self.rows_per_shard = folder, split, rows_per_shard
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.written: dict[str, int] = {}

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.append(table)
            self.rows += table.num_rows
        if self.rows >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        name = f"{self.split}-{len(self.written):05d}.parquet"
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / (name + ".partial")
        pq.write_table(pa.concat_tables(self.pending), partial, compression="zstd")
        partial.replace(self.folder / name)
        self.written[name] = self.rows
        self.pending, self.rows = [], 0


def export_hf(
    root: Where,
    destination: Where,
    version: int | None = None,
    val_fraction: float = 0.1,
    rows_per_shard: int = 500,
    keep_exif: bool = False,
) -> ExportReport:
    """Write ``root``'s version with image bytes as train/validation Parquet shards under ``destination/data``,
    and its dataset card; a failed export removes what it wrote."""
    started = time.perf_counter()
    report = ExportReport("hf", location(destination))
    manifest = require_manifest(root, version)
    counts = CardCounts()
    with export_folder(destination) as folder:
        shards = {split: _SplitShards(folder / "data", name, rows_per_shard) for split, name in HF_SPLITS.items()}
        for batch in iter_batches(root, manifest.version, batch_size=BATCH_ROWS):
            ids = batch.column("image_id").to_pylist()
            uris = batch.column("source_uris").to_pylist()
            images, splits = [], []
            for image_id, row_uris in zip(ids, uris, strict=True):
                image, reason = _image_of(image_id, row_uris or [], keep_exif)
                images.append(image)
                splits.append(split_of(image_id, val_fraction) if image is not None else None)
                if image is None:
                    report.skip(reason)
            report.records += batch.num_rows
            columns = [pa.array(images, IMAGE)]
            columns += [batch.column(f.name).cast(without_maps(f.type)) for f in ANNOTATION_SCHEMA]
            table = pa.Table.from_arrays(columns, schema=HF_SCHEMA)
            for split, writer in shards.items():
                part = table.filter(pa.array([s == split for s in splits]))
                writer.add(part)
                counts.add(HF_SPLITS[split], part)
            kept = table.filter(pa.array([s is not None for s in splits]))
            report.images += kept.num_rows
            for column in ("texts", "regions", "phrases"):
                report.annotations[column] += len(kept.column(column).combine_chunks().flatten())
        data_files = {}
        for split, writer in shards.items():
            writer.flush()
            report.files.update({f"data/{name}": rows for name, rows in writer.written.items()})
            if writer.written:
                data_files[HF_SPLITS[split]] = f"data/{HF_SPLITS[split]}-*.parquet"
        write_card(folder, location(root), manifest, HF_SCHEMA, counts, data_files, keep_exif)
    report.seconds = time.perf_counter() - started
    return report

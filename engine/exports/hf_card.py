"""The dataset card (``README.md``) of a Hugging Face export: a YAML header ``datasets`` reads, and a summary.

The header is written by ``datasets``' own card code, as ``push_to_hub`` writes it: ``configs`` maps
each split to its Parquet files and ``dataset_info`` declares the features and split sizes, so
``datasets.load_dataset(DEST)`` reads the export with its declared types. The body gives counts per
split and annotation type, provenance (annotations per source and model, the version's model per
stage) and the dataset, version and profile the export came from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from engine.store.location import Location, Where, location
from engine.store.manifest import Manifest

CARD_NAME = "README.md"
# The annotation columns counted in the card, and the field that names their type.
COUNTED = {"texts": "granularity", "regions": "kind", "phrases": None}


@dataclass
class SplitSummary:
    images: int = 0
    num_bytes: int = 0
    annotations: Counter[str] = field(default_factory=Counter)
    sources: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def _value_counts(values: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    if len(values) == 0:
        return {}
    counted = pc.value_counts(values)
    return {
        str(v.as_py()): int(n.as_py()) for v, n in zip(counted.field("values"), counted.field("counts"), strict=True)
    }


class CardCounts:
    """Counts per split gathered from the Arrow tables as they are written (no per-row Python objects)."""

    def __init__(self) -> None:
        self.splits: dict[str, SplitSummary] = {}

    def add(self, split: str, table: pa.Table) -> None:
        summary = self.splits.setdefault(split, SplitSummary())
        summary.images += table.num_rows
        summary.num_bytes += table.nbytes
        if not table.num_rows:
            return
        for column, type_field in COUNTED.items():
            items = pc.list_flatten(table.column(column))
            if type_field is None:
                summary.annotations[column] += len(items)
            else:
                for name, count in _value_counts(pc.struct_field(items, type_field)).items():
                    summary.annotations[f"{column} {name}"] += count
            provenance = pc.struct_field(items, "provenance")
            who = pc.binary_join_element_wise(
                pc.fill_null(pc.struct_field(provenance, "source"), "?"),
                pc.fill_null(pc.struct_field(provenance, "model"), "?"),
                "\x1f",
            )
            for key, count in _value_counts(who).items():
                source, model = key.split("\x1f", 1)
                summary.sources[(column, source, model)] += count


def _cell(value: object) -> str:
    """A value as Markdown table cell text (pipes escaped, one line)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def card_body(root: Where, manifest: Manifest, counts: CardCounts, keep_exif: bool) -> str:
    """The Markdown of the card below its YAML header."""
    root = location(root)
    splits = list(counts.splits)
    summaries = [counts.splits[s] for s in splits]
    annotation_rows: list[list[object]] = [["images", *(s.images for s in summaries)]]
    for name in sorted({k for s in summaries for k in s.annotations}):
        annotation_rows.append([name, *(s.annotations[name] for s in summaries)])
    source_rows: list[list[object]] = [
        [column, source, model, *(s.sources[(column, source, model)] for s in summaries)]
        for column, source, model in sorted({k for s in summaries for k in s.sources})
    ]
    model_rows: list[list[object]] = [[stage, model] for stage, model in sorted(manifest.models.items())]
    metadata = "kept as in the source files" if keep_exif else "location metadata (Exif GPS, XMP, IPTC) removed"
    parts = [
        f"# {_cell(root.name)}, version {manifest.version}",
        "Images with FLD-5B style annotations (texts at several granularities, regions, grounded phrases), "
        "exported by fld-engine (`fld-engine export --format hf`).",
        _table(
            ["", ""],
            [
                ["dataset", f"`{_cell(root)}`"],
                ["version", f"{manifest.version} (created {manifest.created_at}, run `{_cell(manifest.run_id)}`)"],
                ["profile", f"`{_cell(manifest.profile)}`"],
                ["config fingerprint", f"`{_cell(manifest.config_fingerprint)}`"],
                ["schema version", manifest.schema_version],
                ["image metadata", metadata],
            ],
        ),
        "## Loading",
        '```python\nimport datasets\n\ndataset = datasets.load_dataset("path/to/this/folder")\n```',
        "## Counts per split and type",
        _table(["", *splits], annotation_rows),
        "## Provenance",
        "Annotations per source and model:",
        _table(["type", "source", "model", *splits], source_rows) if source_rows else "(no annotations)",
        "Models of the version, per stage:",
        _table(["stage", "model"], model_rows) if model_rows else "(none recorded)",
        "## Features",
        "`image` holds the image file (JPEG/PNG bytes as the engine decoded them). The other columns are the "
        "fld-engine annotation schema (`schemas/arrow.py`): `texts`, `regions` and `phrases` with a `provenance` "
        "(source, model, refinement round) each, `dropped` (what the filters removed, the rule, the measured "
        "value and its threshold), `errors` and `stages`; maps are lists of `{key, value}`.",
    ]
    return "\n\n".join(parts) + "\n"


def write_card(
    destination: Path,
    root: Location,
    manifest: Manifest,
    schema: pa.Schema,
    counts: CardCounts,
    data_files: dict[str, str],
    keep_exif: bool = False,
) -> Path:
    """Write ``destination/README.md``; ``data_files`` maps each written split to its Parquet file pattern."""
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    card_data = DatasetCardData(pretty_name=f"{root.name} v{manifest.version}", tags=["fld-engine", "fld-5b"])
    splits = datasets.SplitDict()
    for name in data_files:
        summary = counts.splits[name]
        splits.add(datasets.SplitInfo(name=name, num_bytes=summary.num_bytes, num_examples=summary.images))
    info = datasets.DatasetInfo(
        features=datasets.Features.from_arrow_schema(schema),
        splits=splits,
        dataset_size=sum(counts.splits[name].num_bytes for name in data_files),
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    if data_files:
        configs = {"default": {"data_files": [{"split": s, "path": p} for s, p in data_files.items()]}}
        MetadataConfigs(configs).to_dataset_card_data(card_data)
    card = DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{card_body(root, manifest, counts, keep_exif)}")
    path = destination / CARD_NAME
    card.save(path)
    return path

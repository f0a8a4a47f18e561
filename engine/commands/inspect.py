"""``fld-engine inspect``: what a dataset version holds, checked against its shards."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.parquet as pq

from engine.commands.summary import format_counts
from engine.errors import OutputError
from engine.store.manifest import require_manifest
from engine.store.reader import version_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="counts per annotation type, source and quarantine reason")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--version", type=int, help="a published version (default: the latest)")
    parser.add_argument(
        "--no-stats", action="store_true", help="skip the paper's Table 2/3 measures (they read every row's texts)"
    )
    parser.set_defaults(func=inspect)


def verify_shards(root: Path, shards: list) -> list[str]:
    """Problems with the shards a manifest lists: missing, unreadable, or a row count that differs."""
    problems = []
    for shard in shards:
        path = root / shard.path
        if not path.exists():
            problems.append(f"shard {shard.path} is missing")
            continue
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception as error:
            detail = " ".join(str(error).split())  # one line, whatever the reader's message looks like
            problems.append(f"shard {shard.path} is unreadable ({type(error).__name__}: {detail})")
            continue
        if rows != shard.rows:
            problems.append(f"shard {shard.path} has {rows} rows, the manifest says {shard.rows}")
    return problems


def inspect(args: argparse.Namespace) -> int:
    root = args.directory
    manifest = require_manifest(root, args.version)
    print(
        f"{root}: version {manifest.version} ({manifest.created_at}), profile {manifest.profile}, "
        f"schema {manifest.schema_version}, config {manifest.config_fingerprint}"
    )
    print(f"  shards       {len(manifest.shards):>8}   quarantine shards {len(manifest.quarantine)}")
    print(format_counts(manifest.counts))
    if manifest.parent is not None:
        extra = manifest.extra
        print(
            f"  since version {manifest.parent}: {extra.get('annotated', 0)} annotated "
            f"({extra.get('reannotated', 0)} again), {extra.get('refiltered', 0)} re-filtered, "
            f"{extra.get('carried', 0)} carried over, {extra.get('tombstoned', 0)} removed"
        )
    if manifest.models:
        print("models:")
        for name, model in sorted(manifest.models.items()):
            print(f"  {name}: {model}")
    listed = manifest.shards + manifest.quarantine + manifest.tombstones
    problems = verify_shards(root, listed + ([manifest.probe_index] if manifest.probe_index else []))
    if problems:
        raise OutputError(f"{root} version {manifest.version}: " + "; ".join(problems))
    if not args.no_stats:
        print(paper_comparison(root, manifest.version))
    return 0


def paper_comparison(root: Path, version: int) -> str:
    """The paper's Table 2/3 measures for this version beside the paper's values, streamed over its rows."""
    from filters.statistics import compute_statistics, format_paper_comparison

    columns = ["texts", "regions", "phrases"]
    batches = version_dataset(root, version).to_batches(columns=columns, batch_size=1024)
    return format_paper_comparison(compute_statistics(row for batch in batches for row in batch.to_pylist()))

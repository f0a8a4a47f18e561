"""``fld-engine inspect``: what a dataset version holds, checked against its files (sizes and rows; with
``--verify`` their SHA-256 too)."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.commands.summary import format_counts
from engine.errors import OutputError
from engine.store.integrity import file_problems
from engine.store.location import Location, location
from engine.store.manifest import require_manifest
from engine.store.reader import version_dataset

SUMMARY = "what a version holds: counts, quarantine, skips, the paper's text measures"
DESCRIPTION = """Print what a version of the dataset holds: images, annotations per type, kind and source, quarantine
reasons, images curation skipped per rule and near-duplicate groups, and the paper's Table 2/3 measures beside
the paper's values. Every listed file's size is checked;
--verify also checks its SHA-256."""
EXAMPLES = """
fld-engine inspect corpus/
fld-engine inspect s3://bucket/corpus --version 3 --verify
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "inspect", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus")
    parser.add_argument("--version", type=int, help="a published version (default: the latest)")
    parser.add_argument(
        "--no-stats", action="store_true", help="skip the paper's Table 2/3 measures (they read every row's texts)"
    )
    parser.add_argument(
        "--verify", action="store_true", help="also read every listed file and check its SHA-256 against the manifest"
    )
    parser.set_defaults(func=inspect)


def inspect(args: argparse.Namespace) -> int:
    root = location(args.directory)
    manifest = require_manifest(root, args.version)
    print(
        f"{root}: version {manifest.version} ({manifest.created_at}), profile {manifest.profile}, "
        f"schema {manifest.schema_version}, config {manifest.config_fingerprint}"
    )
    print(
        f"  shards       {len(manifest.shards):>8}   quarantine shards {len(manifest.quarantine)}"
        f"   skipped shards {len(manifest.skipped)}"
    )
    print(format_counts(manifest.counts))
    if manifest.parent is not None:
        extra = manifest.extra
        print(
            f"  since version {manifest.parent}: {extra.get('annotated', 0)} annotated "
            f"({extra.get('reannotated', 0)} again), {extra.get('refiltered', 0)} re-filtered, "
            f"{extra.get('carried', 0)} carried over, {extra.get('tombstoned', 0)} removed"
        )
    if "near_duplicate_groups" in manifest.extra:
        print(f"  near-duplicate groups {manifest.extra['near_duplicate_groups']} (skipped copies: skipped/ table)")
    if manifest.models:
        print("models:")
        for name, model in sorted(manifest.models.items()):
            print(f"  {name}: {model}")
    listed = manifest.shards + manifest.quarantine + manifest.skipped + manifest.tombstones
    listed += manifest.probe_index
    problems = file_problems(root, listed, checksums=args.verify)
    if problems:
        raise OutputError(f"{root} version {manifest.version}: " + "; ".join(problems))
    if args.verify:
        unrecorded = sum(not shard.sha256 for shard in listed)
        note = f" ({unrecorded} written before checksums were recorded: size and rows only)" if unrecorded else ""
        print(f"verified: {len(listed)} files match the manifest's sizes, rows and SHA-256{note}")
    if not args.no_stats:
        print(paper_comparison(root, manifest.version))
    return 0


def paper_comparison(root: Location, version: int) -> str:
    """The paper's Table 2/3 measures for this version beside the paper's values, streamed over its rows."""
    from filters.statistics import compute_statistics, format_paper_comparison

    columns = ["texts", "regions", "phrases"]
    batches = version_dataset(root, version).to_batches(columns=columns, batch_size=1024)
    return format_paper_comparison(compute_statistics(row for batch in batches for row in batch.to_pylist()))

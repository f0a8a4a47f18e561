"""``fld-engine diff``: images added, removed and re-annotated between two versions (the first few with
their source paths), images curation newly skipped (with the rule, and the representative of a copy) or
no longer skips, near-duplicate groups, and count changes."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.store.location import location
from engine.store.manifest import require_manifest
from engine.store.version_diff import diff_versions, source_paths

SHOWN_IDS = 5


SUMMARY = "what changed between two versions"
DESCRIPTION = """Show what changed between two versions: how many images were added, removed and re-annotated (the first
few of each with their source paths; --ids lists all), then every count that changed."""
EXAMPLES = """
fld-engine diff corpus/ --from 3                # version 3 against the latest
fld-engine diff corpus/ --from 3 --to 4 --ids
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "diff", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus")
    parser.add_argument("--from", dest="older", type=int, required=True, metavar="N", help="the older version")
    parser.add_argument("--to", dest="newer", type=int, metavar="M", help="the newer version (default: the latest)")
    parser.add_argument("--ids", action="store_true", help="list every image with its path, not only the first few")
    parser.set_defaults(func=diff)


def printable(path: str) -> str:
    """A path safe to print on one line: undecodable bytes and control characters escaped."""
    text = path.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def image_lines(label: str, ids: list[str], paths: dict[str, list[str]], all_ids: bool) -> list[str]:
    """A count line, then one line per shown image (short id and source path), then how many are not shown."""
    shown = ids if all_ids else ids[:SHOWN_IDS]
    lines = [f"  {label:<12} {len(ids):>8}"]
    for image_id in shown:
        uris = paths.get(image_id) or ["(no source path)"]
        others = f"  (+{len(uris) - 1} more paths)" if len(uris) > 1 else ""
        lines.append(f"      {image_id[:12]}  {printable(uris[0])}{others}")
    if len(shown) < len(ids):
        lines.append(f"      ... and {len(ids) - len(shown)} more (--ids lists all)")
    return lines


def skipped_lines(skipped: dict[str, dict], all_ids: bool) -> list[str]:
    """A count line, then one line per shown newly skipped image: short id, path, and why."""
    ids = list(skipped)
    shown = ids if all_ids else ids[:SHOWN_IDS]
    lines = [f"  {'skipped':<12} {len(ids):>8}"]
    for image_id in shown:
        row = skipped[image_id]
        why = row["rule"]
        if row["value"] is not None and row["threshold"] is not None:
            why += f" {row['value']:g} (threshold {row['threshold']:g})"
        if row["duplicate_of"]:
            why += f", copy of {row['duplicate_of'][:12]}"
        lines.append(f"      {image_id[:12]}  {printable(row['source_uri'])}  {why}")
    if len(shown) < len(ids):
        lines.append(f"      ... and {len(ids) - len(shown)} more (--ids lists all)")
    return lines


def diff(args: argparse.Namespace) -> int:
    root = location(args.directory)
    older = require_manifest(root, args.older)
    newer = require_manifest(root, args.newer)
    result = diff_versions(root, older, newer)
    print(f"{root}: version {older.version} -> {newer.version}")
    if older.config_fingerprint != newer.config_fingerprint:
        changed = sorted(
            name
            for name in older.stages.keys() | newer.stages.keys()
            if older.stages.get(name) != newer.stages.get(name)
        )
        print(
            f"  config {older.config_fingerprint} -> {newer.config_fingerprint} (stages changed: {', '.join(changed)})"
        )
    groups = {"added": result.added, "removed": result.removed, "re-annotated": result.reannotated}
    shown = {label: ids if args.ids else ids[:SHOWN_IDS] for label, ids in groups.items()}
    new_paths = source_paths(root, newer, [*shown["added"], *shown["re-annotated"]])
    old_paths = source_paths(root, older, shown["removed"])
    for label, ids in groups.items():
        print("\n".join(image_lines(label, ids, old_paths if label == "removed" else new_paths, args.ids)))
    print("\n".join(skipped_lines(result.skipped, args.ids)))
    print(f"  {'not skipped':<12} {len(result.unskipped):>8}   (skipped in version {older.version}, not now)")
    print(f"  near-duplicate groups {result.groups[0]} -> {result.groups[1]}")
    if result.changes:
        print("changes: " + ", ".join(f"{name} {n}" for name, n in sorted(result.changes.items())))
        shown_changes = result.change_lines if args.ids else result.change_lines[:SHOWN_IDS]
        for line in shown_changes:
            print(
                f"      {line.image_id[:12]}  round {line.round} {line.field} of {line.annotation}: "
                f"{printable(line.old or '-')} -> {printable(line.new or '-')}"
            )
        if len(shown_changes) < len(result.change_lines):
            print(f"      ... and {len(result.change_lines) - len(shown_changes)} more (--ids lists all)")
    if result.count_changes:
        print("counts:")
        for key, (before, after) in result.count_changes.items():
            print(f"  {key:<40} {before:>8} -> {after:<8} ({after - before:+d})")
    else:
        print("counts: unchanged")
    return 0

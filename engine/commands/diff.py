"""``fld-engine diff``: images added, removed and re-annotated between two versions, and count changes."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.store.manifest import require_manifest
from engine.store.version_diff import diff_versions

SHOWN_IDS = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diff", help="what changed between two versions of a dataset")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--from", dest="older", type=int, required=True, metavar="N", help="the older version")
    parser.add_argument("--to", dest="newer", type=int, metavar="M", help="the newer version (default: the latest)")
    parser.add_argument("--ids", action="store_true", help="list every image id, not only the first few")
    parser.set_defaults(func=diff)


def _ids_line(label: str, ids: list[str], all_ids: bool) -> str:
    shown = ids if all_ids else ids[:SHOWN_IDS]
    more = "" if len(shown) == len(ids) else f" ... (+{len(ids) - len(shown)}, --ids lists all)"
    return f"  {label:<12} {len(ids):>8}" + (f"   {' '.join(i[:12] for i in shown)}{more}" if ids else "")


def diff(args: argparse.Namespace) -> int:
    root = args.directory
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
    print(_ids_line("added", result.added, args.ids))
    print(_ids_line("removed", result.removed, args.ids))
    print(_ids_line("re-annotated", result.reannotated, args.ids))
    if result.count_changes:
        print("counts:")
        for key, (before, after) in result.count_changes.items():
            print(f"  {key:<40} {before:>8} -> {after:<8} ({after - before:+d})")
    else:
        print("counts: unchanged")
    return 0

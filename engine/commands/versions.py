"""``fld-engine versions``: the published versions of a dataset, oldest first."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.errors import OutputError
from engine.store.location import location
from engine.store.manifest import all_manifests

SUMMARY = "list a dataset's versions"
DESCRIPTION = """List the published versions of a dataset, oldest first, with their image and annotation counts and the
fingerprint of the pipeline that made them."""
EXAMPLES = """
fld-engine versions corpus/
fld-engine versions s3://bucket/corpus
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "versions", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus")
    parser.set_defaults(func=versions)


def versions(args: argparse.Namespace) -> int:
    root = location(args.directory)
    manifests = all_manifests(root)
    if not manifests:
        raise OutputError(f"{root}: no published version; run `fld-engine run` first")
    header = ("version", "created", "images", "texts", "regions", "phrases", "new", "carried", "removed", "config")
    print("{:>7}  {:<25} {:>7} {:>7} {:>8} {:>8} {:>6} {:>8} {:>8}  {}".format(*header))
    for m in manifests:
        c, extra = m.counts, m.extra
        print(
            f"{m.version:>7}  {m.created_at:<25} {c.get('images', 0):>7} {c.get('texts', {}).get('total', 0):>7} "
            f"{c.get('regions', {}).get('total', 0):>8} {c.get('phrases', {}).get('total', 0):>8} "
            f"{extra.get('annotated', 0):>6} {extra.get('carried', 0):>8} {extra.get('tombstoned', 0):>8}  "
            f"{m.config_fingerprint}"
        )
    return 0

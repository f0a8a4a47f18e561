"""The ``fld-engine`` command line. Each subcommand lives in ``engine/commands/<name>.py``.

A command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. User-fixable errors print one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata

from engine.errors import USER_ERRORS
from engine.tool_state import apply_tool_defaults

COMMANDS = ("run", "inspect", "versions", "diff", "audit", "export", "refine", "models", "config")


def engine_version() -> str:
    """The installed fld-engine's version (``pyproject.toml``)."""
    try:
        return metadata.version("fld-engine")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fld-engine", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {engine_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"engine.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    apply_tool_defaults()  # before any command imports a model library
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"fld-engine {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fld-engine {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

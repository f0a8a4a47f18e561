"""The ``fld-engine`` command line: annotate image collections into versioned training corpora.

Each subcommand is a module of ``engine/commands`` exposing ``register(subparsers)``, which adds its parser
(``engine/commands/help_text.py``: summary, description, examples) and sets ``func(args) -> int``.
User-fixable errors print one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TextIO

from engine.commands.help_text import Formatter, epilog, paragraphs
from engine.errors import EXIT_CODES_HELP, USER_ERRORS, RunFailure
from engine.interrupt import Interrupted, interruptible
from engine.tool_state import apply_tool_defaults

COMMANDS = ("run", "inspect", "versions", "diff", "audit", "export", "refine", "models", "config")


DESCRIPTION = """
Turn image collections into training corpora the way FLD-5B was made for Florence-2: specialist models
annotate, filters remove what is wrong (and record why), a Florence-2 model in the loop refines; the result
is a versioned dataset of Parquet shards, in a local folder or an object store.

Tool state (Hugging Face, Ultralytics and matplotlib caches) stays in $FLD_ENGINE_STATE, else ./.state;
nothing is downloaded from a model hub. Run `fld-engine COMMAND --help` for a command's options and examples.
"""
EXAMPLES = """
fld-engine run --input photos/ --output corpus/      # annotate; run again later to add only what is new
fld-engine inspect corpus/
fld-engine audit corpus/ --html report.html
fld-engine export corpus/ --format coco --to exports/coco
fld-engine config show --config fld5b                # the bundled GPU profile, every key
"""


def engine_version() -> str:
    """The installed fld-engine's version (``pyproject.toml``)."""
    try:
        return metadata.version("fld-engine")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fld-engine",
        description=paragraphs(DESCRIPTION),
        epilog=f"{epilog(EXAMPLES)}\n\n{EXIT_CODES_HELP}",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {engine_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for name in COMMANDS:
        importlib.import_module(f"engine.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    apply_tool_defaults()  # before any command imports a model library
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with interruptible(), warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return int(args.func(args) or 0)
    except USER_ERRORS as error:
        return _failed(args, error, 2)
    except RunFailure as error:
        return _failed(args, error, 1)
    except KeyboardInterrupt as interrupt:
        code = interrupt.exit_code if isinstance(interrupt, Interrupted) else 130
        print(f"fld-engine {args.command}: interrupted; run the same command to resume", file=sys.stderr)
        return code


def _one_line_warning(command: str) -> Callable[..., None]:
    """Warnings as ``fld-engine <command>: warning: <message>``, one line each, on stderr."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"fld-engine {command}: warning: {message}", file=file or sys.stderr)

    return show


def _failed(args: argparse.Namespace, error: BaseException, code: int) -> int:
    if args.debug:
        raise error
    print(f"fld-engine {args.command}: error: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

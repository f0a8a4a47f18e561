"""The ``fld-engine`` command line. Each subcommand lives in ``engine/commands/<name>.py``.

A command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. User-fixable errors print one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TextIO

from engine.errors import USER_ERRORS, RunFailure
from engine.interrupt import Interrupted, interruptible
from engine.tool_state import apply_tool_defaults

EXIT_CODES = """exit codes:
  0    done
  1    the run failed (no Ray cluster at --address, an empty input on an existing dataset, a bug)
  2    a usage, profile, input or output error, named in one line
  130  stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM. Finished shards are kept: run the same
       command again to resume."""

COMMANDS = ("run", "inspect", "versions", "diff", "audit", "export", "refine", "models", "config")


def engine_version() -> str:
    """The installed fld-engine's version (``pyproject.toml``)."""
    try:
        return metadata.version("fld-engine")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fld-engine",
        description=__doc__.splitlines()[0],
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

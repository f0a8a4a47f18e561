"""How a command presents itself in ``--help``: a one-line summary, what it does, and examples to copy."""

from __future__ import annotations

import argparse
import textwrap

WIDTH = 100


def add_command(
    subparsers: argparse._SubParsersAction, name: str, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand parser: ``summary`` in ``fld-engine --help``, ``description`` and ``examples`` in its own."""
    return subparsers.add_parser(
        name, help=summary, description=paragraphs(description), epilog=epilog(examples), formatter_class=Formatter
    )


def paragraphs(text: str) -> str:
    """``text`` wrapped to :data:`WIDTH`, its blank-line-separated paragraphs kept."""
    return "\n\n".join(textwrap.fill(" ".join(p.split()), WIDTH) for p in text.strip().split("\n\n"))


def epilog(examples: str) -> str:
    """The ``examples:`` section: one command per line (with an optional ``#`` comment), kept as written."""
    return "examples:\n" + textwrap.indent(textwrap.dedent(examples).strip("\n"), "  ")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Description and epilog as given (already wrapped), options with their defaults' wording as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=WIDTH)


def examples_of(text: str) -> list[str]:
    """The command lines of an examples text (comments and blank lines left out), for the tests."""
    lines = [line.split("  #")[0].strip() for line in textwrap.dedent(text).splitlines()]
    return [line for line in lines if line.startswith("fld-engine")]

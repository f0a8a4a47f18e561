"""``fld-engine config show``: the resolved profile (``extends:`` merged, ``--set`` applied, defaults filled)."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.commands.profile_args import add_profile_arguments, load_profile
from engine.config.show import profile_yaml

SUMMARY = "print the resolved profile"
DESCRIPTION = """Print a profile as the engine reads it: what it extends merged in, every --set applied and every
default filled in, as YAML that can itself be used as a profile (it validates to the same settings)."""
EXAMPLES = """
fld-engine config show                                  # the default profile (offline), every key
fld-engine config show --config fld5b --set stages.ocr.resources.batch_size=8
fld-engine config show --config my.yaml                 # a profile that runs the same as my.yaml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "config", SUMMARY, DESCRIPTION, EXAMPLES)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION", title="actions")
    show = add_command(actions, "show", "print the resolved profile as YAML", DESCRIPTION, EXAMPLES)
    add_profile_arguments(show)
    show.set_defaults(func=show_profile)


def show_profile(args: argparse.Namespace) -> int:
    config = load_profile(args)
    print(f"# profile {config.profile}, resolved (extends merged, --set applied, defaults filled in)")
    print(profile_yaml(config), end="")
    return 0

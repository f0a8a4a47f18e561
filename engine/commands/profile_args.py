"""The profile options every command that runs stages takes: ``--config`` and repeatable ``--set``."""

from __future__ import annotations

import argparse

from engine.config.profile import load_config
from engine.config.settings import EngineConfig


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PROFILE", help="a profile YAML file or a bundled profile name: offline (default), fld5b"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="change one profile key, e.g. --set writer.rows_per_shard=500 or --set "
        "stages.ocr.resources.batch_size=8 (a stage by its name); the value is YAML; repeatable",
    )


def load_profile(args: argparse.Namespace) -> EngineConfig:
    """The profile ``--config`` names, with every ``--set`` applied, validated."""
    return load_config(args.config, args.overrides)

"""``fld-engine models``: each configured specialist (and curation's embedding model, when semantic
near-duplicates are on), where its weights were looked for, and whether found."""

from __future__ import annotations

import argparse

from engine.commands.profile_args import add_profile_arguments, load_profile
from engine.execute.plan_stages import weights_checks
from engine.ingest.embeddings import find_embedding_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="where each specialist's weights are, without loading them")
    add_profile_arguments(parser)
    parser.set_defaults(func=models)


def models(args: argparse.Namespace) -> int:
    """Print one block per specialist; exit 1 when any weights are missing."""
    config = load_profile(args)
    checks = weights_checks(config)
    if config.curation.semantic.enabled:
        checks.append(find_embedding_model(config.curation.semantic.model))
    for check in checks:
        print(f"{'found  ' if check.found else 'MISSING'} {check.specialist} ({check.backend}): {check.model}")
        for place in check.looked_in:
            print(f"          looked in {place}")
        if check.detail:
            print(f"          {check.detail}")
    missing = sum(not c.found for c in checks)
    print(f"{len(checks) - missing} of {len(checks)} specialists have their weights (profile {config.profile})")
    return 1 if missing else 0

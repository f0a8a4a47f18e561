"""``fld-engine models``: each configured specialist (and curation's embedding model, when semantic
near-duplicates are on), where its weights were looked for, whether found, and for pickled weights
(ultralytics ``.pt``) whether the profile trusts or pins them."""

from __future__ import annotations

import argparse

from engine.commands.help_text import add_command
from engine.commands.profile_args import add_profile_arguments, load_profile
from engine.execute.plan_stages import weights_checks
from engine.ingest.embeddings import find_embedding_model

SUMMARY = "where each specialist's weights are, without loading them"
DESCRIPTION = """List each specialist of the profile, where it looked for its weights and whether they were found,
without loading any model. Exits 1 when any are missing (run refuses to start then)."""
EXAMPLES = """
fld-engine models
fld-engine models --config fld5b
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "models", SUMMARY, DESCRIPTION, EXAMPLES)
    add_profile_arguments(parser)
    parser.set_defaults(func=models)


def models(args: argparse.Namespace) -> int:
    """Print one block per specialist; exit 1 when any weights are missing or are a pickle nobody vouched for."""
    config = load_profile(args)
    checks = weights_checks(config)
    if config.curation.semantic.enabled:
        checks.append(find_embedding_model(config.curation.semantic.model))
    for check in checks:
        status = "found  " if check.found and check.trusted else "REFUSED" if check.found else "MISSING"
        print(f"{status} {check.specialist} ({check.backend}): {check.model}")
        for place in check.looked_in:
            print(f"          looked in {place}")
        if check.detail:
            print(f"          {check.detail}")
    missing = sum(not c.found for c in checks)
    print(f"{len(checks) - missing} of {len(checks)} specialists have their weights (profile {config.profile})")
    refused = [c.specialist for c in checks if c.found and not c.trusted]
    if refused:
        print(f"{len(refused)} load pickled weights the profile neither trusts nor pins: {', '.join(refused)}")
    return 1 if missing or refused else 0

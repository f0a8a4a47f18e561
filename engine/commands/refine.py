"""``fld-engine refine DIR --rounds N``: Florence-2 in the loop on an existing output, one new version per round."""

from __future__ import annotations

import argparse
import sys

from engine.commands.help_text import add_command
from engine.commands.profile_args import add_profile_arguments, load_profile
from engine.config.typed_config import ConfigError
from engine.refine_loop import RoundResult, refine_dataset

SUMMARY = "Florence-2 in the loop: train, re-annotate, merge; one version per round"
DESCRIPTION = """Refine a dataset with Florence-2 in the loop: each round fine-tunes the model on the latest version's
annotations, re-annotates every image with it, filters and merges its predictions with the existing
annotations, and publishes a new version. Needs refine.checkpoint in the profile (a local folder or a
model already in the Hugging Face cache)."""
EXAMPLES = """
fld-engine refine corpus/ --rounds 2 --config my.yaml
fld-engine refine corpus/ --rounds 1 --set refine.checkpoint=/models/Florence-2-base-ft
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "refine", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="a local dataset folder written by `fld-engine run`")
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds to run (default: the profile's refine.rounds)")
    add_profile_arguments(parser)
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=refine)


def refine(args: argparse.Namespace) -> int:
    config = load_profile(args)
    rounds = args.rounds if args.rounds is not None else config.refine.rounds
    if rounds < 1:
        raise ConfigError("rounds: give --rounds N (N >= 1) or set refine.rounds in the profile")
    results = refine_dataset(
        args.directory,
        config,
        rounds,
        args.address,
        progress=(lambda _: None) if args.quiet else _progress,
        progress_bars=not args.quiet and sys.stderr.isatty(),
    )
    for result in results:
        print(describe_round(result))
    return 0


def describe_round(result: RoundResult) -> str:
    stats = result.stats
    loss = f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f} over {len(result.losses)} steps"
    if result.resumed:
        loss = "training reused from the round's checkpoint"
    changes = ", ".join(
        f"{bucket} {sum(table.values())}"
        for bucket, table in (
            ("confirmed", stats.confirmed),
            ("added", stats.added),
            ("removed", stats.removed),
            ("changed", stats.changed),
            ("unverified", stats.unverified),
        )
    )
    return (
        f"round {result.round}: version {result.version} ({result.images} images) in {result.seconds:.1f}s; {loss}; "
        f"{changes}; agreement {stats.agreement_rate:.1%}; checkpoint {result.checkpoint}"
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

"""``fld-engine run``: annotate images into a new version of an output directory."""

from __future__ import annotations

import argparse
import sys

from engine.commands.help_text import add_command
from engine.commands.profile_args import add_profile_arguments, load_profile
from engine.commands.summary import format_counts
from engine.errors import EXIT_CODES_HELP
from engine.ingest.imports.plan import describe, with_imports
from engine.ingest.sources import InputOptions
from engine.progress import stage_table
from engine.refine_loop import base_checkpoint, refine_dataset
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.location import Location, location
from engine.store.manifest import Manifest

SUMMARY = "annotate images into a new version of a dataset"
DESCRIPTION = """Annotate images with the profile's specialists, clean the annotations with its filters, and publish
them as a new version of the dataset: Parquet shards, one row per image, with a manifest.

Run it again on the same output (by hand or from cron) and only new or changed images, or images an older
pipeline annotated, are processed; the rest is carried over. A killed run resumes from its finished
shards when the same command is run again. Bad images are quarantined with their reason."""
EXAMPLES = """
fld-engine run --input photos/ --output corpus/
fld-engine run --input photos/ --output corpus/ --limit 20 --set writer.rows_per_shard=500
fld-engine run --input s3://bucket/raw/ laion.parquet --output s3://bucket/corpus --config fld5b --address auto
fld-engine run --input shards/ --output corpus/ --config my.yaml --set stages.ocr.resources.batch_size=8
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "run", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.epilog = f"{parser.epilog}\n\n{EXIT_CODES_HELP}"
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="URI",
        help="folders or prefixes (local, s3://, gs://, ...), .txt lists of paths or URIs, WebDataset .tar shards, "
        "Parquet tables (paths or image bytes), image files",
    )
    parser.add_argument(
        "--path-column", metavar="NAME", help="Parquet inputs: the column of paths or URIs (default: path)"
    )
    parser.add_argument(
        "--image-column",
        metavar="NAME",
        help="Parquet inputs: the column of image bytes (default: detected, e.g. img2dataset's jpg, "
        "a Hugging Face image struct)",
    )
    parser.add_argument(
        "--caption-column",
        metavar="NAME",
        help="Parquet inputs: the column of captions kept as alt-text texts (default: caption, when present)",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus"
    )
    add_profile_arguments(parser)
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local Ray)")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="probe and annotate at most N input files the dataset does not hold yet (the first by URI); "
        "the others wait for a later run and the new version keeps everything the previous one had",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also remove images this run's inputs do not list (an input left out, an entry removed from a "
        "list); without it only files missing from a folder, prefix or shard this run listed are removed",
    )
    parser.add_argument(
        "--annotations",
        nargs="+",
        metavar="FILE",
        help="existing labels to import (COCO instances or captions JSON; a Parquet or JSONL table with a path "
        "and a caption column), matched to images by path or file name; provenance source import:<file stem>",
    )
    parser.add_argument("--full", action="store_true", help="recompute everything instead of carrying over")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="publish even when the inputs hold no image (on an existing dataset: a version without images)",
    )
    parser.add_argument(
        "--always-publish",
        action="store_true",
        help="publish a new version even when nothing changed since the latest one",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="start Ray's dashboard with the local Ray and print its address (needs fld-engine[dashboard])",
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors and warnings (no progress, no summary)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = with_imports(load_profile(args), args.annotations or (), args.input)
    if config.refine.rounds:
        base_checkpoint(config)  # a profile that asks for refinement without a checkpoint fails before any work
    request = RunRequest(
        inputs=tuple(args.input),
        output=args.output,
        config=config,
        address=args.address,
        limit=args.limit,
        full=args.full,
        prune=args.prune,
        progress_bars=not args.quiet and sys.stderr.isatty(),
        input_options=InputOptions(args.path_column, args.image_column, args.caption_column),
        allow_empty=args.allow_empty,
        always_publish=args.always_publish,
        route_ray_logs=True,
        dashboard=args.dashboard,
    )
    result = run_pipeline(request, progress=(lambda _: None) if args.quiet else _progress)
    manifest, root = result.manifest, location(request.output)
    if manifest is None:  # no images, new output: warned, nothing written
        return 0
    if not args.quiet:
        _print_summary(result, manifest, root)
    if config.refine.rounds:
        progress = (lambda _: None) if args.quiet else _progress
        for round_result in refine_dataset(root, config, config.refine.rounds, args.address, progress):
            if not args.quiet:
                print(f"refinement round {round_result.round}: version {round_result.version} published")
    return 0


def _print_summary(result: RunResult, manifest: Manifest, root: Location) -> None:
    if not result.published:
        print(f"unchanged: v{manifest.version} ({result.carried} images, nothing new since it was published)")
        return
    print(
        f"version {manifest.version} of {root} published in {result.seconds:.1f}s: "
        f"{result.annotated} images annotated, {result.carried} carried over, {result.quarantined} quarantined, "
        f"{result.skipped} skipped by curation ({result.near_duplicate_groups} near-duplicate groups)"
    )
    if manifest.parent is not None:
        print(
            f"since version {manifest.parent}: {result.reannotated} re-annotated, {result.refiltered} re-filtered, "
            f"{result.resumed} resumed from killed runs, {result.tombstoned} removed (tombstones), "
            f"{result.kept_unlisted} kept (not listed by this run's inputs), "
            f"{result.probe_cached} images of {result.files} inputs from the probe cache"
        )
    for name, report in result.imports.items():
        print(f"imported {describe(name, report)}")
    print(f"shards: {root / 'annotations'} ({len(manifest.shards)} files)")
    print(format_counts(manifest.counts))
    if result.stage_timings:
        print(stage_table(result.stage_timings))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

"""``fld-engine audit``: an HTML report and a text summary of a version's annotation quality,
or (with ``--review K --to DIR``) a stratified sample exported as COCO for human review."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from engine.audit.dataset_audit import AuditResult, audit_version
from engine.audit.review import export_review
from engine.audit.text_summary import format_summary
from engine.commands.help_text import add_command
from engine.errors import OutputError
from engine.exports.destination import check_output_file, check_output_folder, write_text_atomically
from engine.store.location import Where, location

SUMMARY = "annotation quality report, or a sample for people to review"
DESCRIPTION = """Measure a version's annotation quality: counts, what each filter dropped and why, score distributions,
agreement between specialists and with refinement rounds, and sample pictures, printed as text and, with
--html, written as one self-contained HTML page. With --ground-truth, COCO box and mask AP and OCR error
rate. With --review K --to DIR, a stratified sample of K images exported as COCO for people to check."""
EXAMPLES = """
fld-engine audit corpus/
fld-engine audit corpus/ --html report.html --sample 16
fld-engine audit corpus/ --version 2 --ground-truth gt_coco.json
fld-engine audit corpus/ --review 50 --to review/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "audit", SUMMARY, DESCRIPTION, EXAMPLES)
    parser.add_argument("directory", metavar="DIR", help="the dataset: a folder or a URI such as s3://bucket/corpus")
    parser.add_argument("--version", type=int, help="a published version (default: the latest)")
    parser.add_argument(
        "--html", metavar="REPORT.html", help="write the self-contained HTML report here (a path or a URI)"
    )
    parser.add_argument("--ground-truth", type=Path, metavar="COCO.json", help="COCO ground truth to score against")
    parser.add_argument("--sample", type=int, default=8, metavar="K", help="images drawn in the report (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image sample")
    parser.add_argument("--review", type=int, metavar="K", help="export K images stratified by source/kind/score")
    parser.add_argument("--to", metavar="DIR", help="where --review writes its COCO sample (a folder or a URI)")
    parser.set_defaults(func=audit)


def audit(args: argparse.Namespace) -> int:
    if args.review is not None:
        if args.to is None:
            raise OutputError("--review needs --to DIR, the folder for the review sample")
        if args.review <= 0:
            raise OutputError(f"--review {args.review}: the number of images must be positive")
        check_output_folder(args.to, "the review folder")
        print(export_review(location(args.directory), args.to, args.review, args.version).format_lines())
        return 0
    result = audit_dataset(args.directory, args.version, args.sample, args.ground_truth, args.seed, args.html)
    print(format_summary(result))
    if args.html is not None:
        size, seconds = write_html_report(result, args.html)
        print(f"report: {args.html} ({size / 1e6:.2f} MB, rendered in {seconds:.2f}s)")
    return 0


def audit_dataset(
    directory: Where,
    version: int | None = None,
    sample: int = 8,
    ground_truth: str | os.PathLike[str] | None = None,
    seed: int = 0,
    html: Where | None = None,
) -> AuditResult:
    """Check the request (``html``: where the report will go), then audit the version."""
    if sample < 0:
        raise OutputError(f"--sample {sample}: the number of images must be zero or more")
    truth = None if ground_truth is None else Path(ground_truth)
    if truth is not None and not truth.is_file():
        raise OutputError(f"--ground-truth {truth}: no such file")
    if html is not None:
        check_output_file(html, "the HTML report")
    return audit_version(location(directory), version, sample, truth, seed)


def write_html_report(result: AuditResult, html: Where) -> tuple[int, float]:
    """Render ``result`` as the self-contained HTML report at ``html``; its size in bytes and render seconds."""
    from engine.audit.html_report import render_html

    started = time.perf_counter()
    document = render_html(result)
    write_text_atomically(html, document)
    return len(document), time.perf_counter() - started

"""fld-engine from Python: run a pipeline, read a version (Arrow, pandas, ``datasets``), audit, export.

``import engine.api as fld``. Every dataset, input and output argument takes a ``str``, a :class:`pathlib.Path`
or a URI (``s3://bucket/corpus``); a profile is a bundled name, a YAML path or an :class:`EngineConfig`, with
``overrides`` as on the command line (``"stages.ocr.resources.batch_size=8"``). Errors a user can fix raise
the same one-line errors as the CLI (``engine.errors.USER_ERRORS``). Unlike the CLI, nothing here changes
the environment: to keep tool state in ``.state`` as the CLI does, call
:func:`engine.tool_state.apply_tool_defaults` before anything imports a model library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from engine.audit.dataset_audit import AuditResult
from engine.audit.text_summary import format_summary
from engine.config.profile import load_config
from engine.config.settings import EngineConfig
from engine.exports.report import ExportReport
from engine.run import RunResult
from engine.store.location import Where
from engine.store.manifest import Manifest, all_manifests
from engine.store.reader import iter_records, read_skipped, version_dataset
from schemas.records import ImageRecord

if TYPE_CHECKING:
    import datasets
    import pandas

__all__ = [
    "AuditResult",
    "EngineConfig",
    "ExportReport",
    "ImageRecord",
    "Manifest",
    "RunResult",
    "audit",
    "audit_text",
    "export",
    "load_profile",
    "quarantine",
    "read_dataset",
    "read_pandas",
    "read_table",
    "records",
    "run",
    "skipped",
    "versions",
]

Profile = str | os.PathLike[str] | EngineConfig | None


def load_profile(config: str | os.PathLike[str] | None = None, overrides: Iterable[str] = ()) -> EngineConfig:
    """A profile (bundled name, YAML path; default ``offline``) with ``KEY=VALUE`` overrides, validated."""
    return load_config(None if config is None else os.fspath(config), list(overrides))


def run(
    inputs: Where | Iterable[Where],
    output: Where,
    *,
    config: Profile = None,
    overrides: Iterable[str] = (),
    limit: int | None = None,
    full: bool = False,
    address: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Annotate ``inputs`` (one or several folders, prefixes, lists, shards, tables or images) into a new
    version of ``output``, as ``fld-engine run`` does; ``progress`` gets the progress lines (default: none)."""
    from engine.ingest.sources import InputOptions
    from engine.run import RunRequest, run_pipeline

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    overrides = list(overrides)
    if isinstance(config, EngineConfig) and overrides:
        raise ValueError("overrides apply to a profile by name or path, not to an EngineConfig already loaded")
    profile = config if isinstance(config, EngineConfig) else load_profile(config, overrides)
    request = RunRequest(
        inputs=tuple(os.fspath(i) for i in inputs),
        output=os.fspath(output),
        config=profile,
        address=address,
        limit=limit,
        full=full,
        progress_bars=False,
        input_options=InputOptions(None, None, None),
    )
    return run_pipeline(request, progress=progress or (lambda _: None))


def versions(dataset: Where) -> list[Manifest]:
    """Every published version's manifest, oldest first (``.version``, ``.counts``, ``.shards``, ...)."""
    return all_manifests(dataset)


def read_table(dataset: Where, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """One version's annotation rows (default: the latest) as a :class:`pyarrow.Table`, one row per image."""
    return version_dataset(dataset, version).to_table(columns=columns)


def read_pandas(dataset: Where, version: int | None = None, columns: list[str] | None = None) -> pandas.DataFrame:
    """:func:`read_table` as a pandas DataFrame (nested columns as lists of dicts)."""
    return read_table(dataset, version, columns).to_pandas()


def read_dataset(dataset: Where, version: int | None = None, columns: list[str] | None = None) -> datasets.Dataset:
    """:func:`read_table` as a Hugging Face ``datasets.Dataset`` (map columns as lists of ``{key, value}``).

    It holds the annotations, not the images; ``fld-engine export --format hf`` writes both."""
    import datasets
    from datasets.table import InMemoryTable

    from engine.exports.hf import without_maps

    table = read_table(dataset, version, columns)
    schema = pa.schema([pa.field(f.name, without_maps(f.type), f.nullable) for f in table.schema])
    return datasets.Dataset(InMemoryTable(table.cast(schema)))


def records(dataset: Where, version: int | None = None) -> Iterator[ImageRecord]:
    """Stream one version's rows as :class:`ImageRecord` objects (texts, regions, phrases, dropped), shard by shard."""
    return iter_records(dataset, version)


def quarantine(dataset: Where, version: int | None = None) -> pa.Table:
    """The inputs a version quarantined: ``source_uri``, ``image_id``, ``reason``, ``detail``."""
    return version_dataset(dataset, version, quarantine=True).to_table()


def skipped(dataset: Where, version: int | None = None) -> pa.Table:
    """The good images a version did not annotate (``schemas.arrow.SKIPPED_SCHEMA``): near-duplicates with
    ``duplicate_of``, images below a gate, each with its rule, value and threshold."""
    return read_skipped(dataset, version)


def audit(
    dataset: Where,
    version: int | None = None,
    *,
    sample: int = 8,
    ground_truth: str | os.PathLike[str] | None = None,
    seed: int = 0,
    html: Where | None = None,
) -> AuditResult:
    """Audit a version as ``fld-engine audit`` does; ``html`` also writes the self-contained HTML report there."""
    from engine.commands.audit import audit_dataset, write_html_report

    result = audit_dataset(dataset, version, sample, ground_truth, seed, html)
    if html is not None:
        write_html_report(result, html)
    return result


def audit_text(result: AuditResult) -> str:
    """The audit's text summary, as ``fld-engine audit`` prints it."""
    return format_summary(result)


def export(
    dataset: Where,
    format: str,
    to: Where,
    *,
    version: int | None = None,
    tasks: Iterable[str] | None = None,
    val_fraction: float = 0.1,
    keep_exif: bool = False,
    include_near_duplicates: bool = False,
) -> ExportReport:
    """Write a version as ``florence``, ``coco``, ``yolo`` or ``hf`` into ``to`` (new or empty), as ``fld-engine
    export`` does; the report counts images, annotations and files per split. ``include_near_duplicates``:
    also each skipped near-duplicate, with its representative's annotations scaled to its size."""
    from engine.commands.export import export_version

    _, report = export_version(
        dataset,
        format,
        to,
        version,
        None if tasks is None else list(tasks),
        val_fraction,
        keep_exif,
        include_near_duplicates,
    )
    return report

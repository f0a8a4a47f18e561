"""``--annotations FILE``: one import stage per file, placed first, and the report of what each file matched."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace

from engine.config.settings import EngineConfig, SpecialistConfig
from engine.config.typed_config import ConfigError
from engine.ingest.imports.formats import parse_annotation_file
from engine.ingest.imports.matching import EntryIndex, MatchReport, match_report
from engine.ingest.imports.stage import IMPORT_STAGE_CLASS, ImportOptions, import_stage_name
from engine.store.location import location
from schemas.stage import Resources

# A CPU step of its own or fused with the next CPU stages: ask little CPU and never shrink the group's batch.
IMPORT_RESOURCES = Resources(num_cpus=0.25, batch_size=256)


def input_root(uri: str) -> str:
    """An input as image ``source_uri`` values start: local paths absolute, URIs as given."""
    return uri if "://" in uri else os.path.abspath(uri)


def with_imports(config: EngineConfig, files: Sequence[str], inputs: Sequence[str]) -> EngineConfig:
    """``config`` with an import stage per annotations file before every other stage; each file is read and
    parsed here, so a missing or malformed one stops the run in one line before anything is created."""
    if not files:
        return config
    roots = tuple(input_root(i) for i in inputs)
    taken = {stage.name for stage in config.stages}
    stages = []
    for file in files:
        name = import_stage_name(file)
        if name in taken:
            raise ConfigError(
                f"--annotations {file}: a stage or another file is already named {name!r}; rename the file"
            )
        taken.add(name)
        digest = entry_index(file)[0]  # parsed here: a malformed file stops the run before any work
        options = ImportOptions(file, roots, config.ingest.caption_granularity, digest)
        stages.append(SpecialistConfig(name, IMPORT_STAGE_CLASS, IMPORT_RESOURCES, options))
    names = tuple(stage.name for stage in stages)
    return replace(
        config, specialists=(*stages, *config.specialists), order=(*names, *config.order) if config.order else ()
    )


def read_annotation_file(file: str) -> bytes:
    """The bytes of ``file`` (read through the storage layer: a path or a URI)."""
    where = location(file)
    if not where.is_file():
        raise FileNotFoundError(f"--annotations {file}: no such file")
    return where.read_bytes()


_PARSED: dict[tuple[str, str], EntryIndex] = {}


def entry_index(file: str) -> tuple[str, EntryIndex]:
    """The sha256 and the parsed entries of ``file`` (parsed once per content in this process)."""
    data = read_annotation_file(file)
    digest = hashlib.sha256(data).hexdigest()
    if (file, digest) not in _PARSED:
        _PARSED[(file, digest)] = EntryIndex(parse_annotation_file(data, file))
    return digest, _PARSED[(file, digest)]


def import_reports(config: EngineConfig, images: Iterable[Sequence[str]]) -> dict[str, MatchReport]:
    """For each import stage of ``config``, what its file's entries matched among ``images`` (each image the
    list of places it was found)."""
    imports = [s for s in config.specialists if s.backend == IMPORT_STAGE_CLASS]
    if not imports:
        return {}
    found = [list(uris) for uris in images]
    return {s.name: match_report(entry_index(s.options.file)[1], found, s.options.roots) for s in imports}


def describe(name: str, report: MatchReport) -> str:
    """One line: how many entries matched how many images, and the first unmatched names."""
    line = f"{name}: {report.matched_entries} of {report.entries} entries matched {report.matched_images} images"
    if report.unmatched:
        shown = ", ".join(report.unmatched[:3]) + (", ..." if len(report.unmatched) > 3 else "")
        line += f"; {len(report.unmatched)} unmatched ({shown})"
    return line

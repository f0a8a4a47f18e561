"""Profiles: YAML (``yaml.safe_load``) validated into an :class:`EngineConfig`, errors naming the key."""

from __future__ import annotations

from importlib import resources as package_files
from pathlib import Path
from typing import Any

import yaml

from engine.config.registry import FILTERS, SPECIALISTS, backends, stage_class
from engine.config.settings import (
    DEFAULT_PROFILE,
    EngineConfig,
    IngestConfig,
    RayConfig,
    RefineConfig,
    StageConfig,
    WriterConfig,
)
from engine.config.typed_config import ConfigError, build
from schemas.stage import Resources


def _stage(kind: str, data: Any, where: str) -> StageConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name and backend")
    unknown = sorted(set(data) - {"name", "backend", "resources", "options"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: backend, name, options, resources)")
    backend = data.get("backend")
    known = backends(kind)
    if backend not in known:
        raise ConfigError(f"{where}.backend: {backend!r} is not one of {', '.join(sorted(known))}")
    name = data.get("name", backend)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: expected a non-empty string")
    options_class = stage_class(kind, backend).Options
    return StageConfig(
        name=name,
        backend=backend,
        resources=build(Resources, data.get("resources"), f"{where}.resources"),
        options=build(options_class, data.get("options"), f"{where}.options"),
        kind=kind,
    )


def parse_config(data: Any, profile: str = "custom") -> EngineConfig:
    """Validate a profile mapping into an :class:`EngineConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: expected a mapping at the top level")
    sections = {"ingest", "specialists", "filters", "writer", "ray", "refine"}
    unknown = sorted(set(data) - sections)
    if unknown:
        raise ConfigError(f"config: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(sections))})")
    stages: dict[str, tuple[StageConfig, ...]] = {}
    for kind in (SPECIALISTS, FILTERS):
        items = data.get(kind) or []
        if not isinstance(items, list):
            raise ConfigError(f"{kind}: expected a list of stages")
        stages[kind] = tuple(_stage(kind, item, f"{kind}[{i}]") for i, item in enumerate(items))
        names = [s.name for s in stages[kind]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{kind}: stage name {duplicates[0]!r} is used twice")
    return EngineConfig(
        ingest=build(IngestConfig, data.get("ingest"), "ingest"),
        specialists=stages[SPECIALISTS],
        filters=stages[FILTERS],
        writer=build(WriterConfig, data.get("writer"), "writer"),
        ray=build(RayConfig, data.get("ray"), "ray"),
        refine=build(RefineConfig, data.get("refine"), "refine"),
        profile=profile,
    )


def load_config(path: str | Path | None = None) -> EngineConfig:
    """Load a profile: a YAML file path, a bundled profile name (``offline``, ``fld5b``), or the default."""
    if path is None:
        path = DEFAULT_PROFILE
    candidate = Path(path)
    if candidate.suffix not in {".yaml", ".yml"} and not candidate.exists():
        bundled = package_files.files("engine.config") / "profiles" / f"{path}.yaml"
        if not bundled.is_file():
            raise ConfigError(f"config: no profile file or bundled profile named {str(path)!r}")
        return parse_config(yaml.safe_load(bundled.read_text()), profile=str(path))
    if not candidate.is_file():
        raise ConfigError(f"config: file {str(candidate)!r} does not exist")
    try:
        data = yaml.safe_load(candidate.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config: {candidate} is not valid YAML: {error}") from None
    return parse_config(data, profile=candidate.stem)

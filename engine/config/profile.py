"""Profiles: YAML (``yaml.safe_load``) validated into an :class:`EngineConfig`, errors naming the key.

Stages come in one of two forms: ``specialists:`` and ``filters:`` (the specialists run first, then the
filters), or ``stages:``, one ordered list that interleaves them (each entry's backend says which it is), for
a pipeline in the paper's order: filters between the specialists that make annotations and those that build
on the kept ones. A stage name is used once.

A profile may start from another with ``extends: NAME`` (a bundled profile) or ``extends: PATH.yaml``
(relative to the extending file); the chain is merged base first (``engine/config/merge.py``: mappings
merged at any depth, lists replaced; a ``stages:`` list replaces the base's ``specialists:`` and ``filters:``
and they replace its ``stages:``), and only the merged result is validated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources as package_files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from engine.config.custom_stages import is_custom
from engine.config.merge import merge_mappings
from engine.config.overrides import apply_override, parse_override
from engine.config.registry import FILTERS, SPECIALISTS, backends, kind_of, stage_class
from engine.config.settings import (
    DEFAULT_PROFILE,
    STAGE_CONFIGS,
    CurationSettings,
    EngineConfig,
    IngestConfig,
    RayConfig,
    RefineConfig,
    RefreshConfig,
    StageConfig,
    WriterConfig,
)
from engine.config.show import profile_mapping
from engine.config.typed_config import ConfigError, build
from schemas.pixel_limits import PixelLimits
from schemas.stage import Resources

BUNDLED = package_files.files("engine.config") / "profiles"
EXTENDS = "extends"
YAML_SUFFIXES = (".yaml", ".yml")


def _stage(kind: str, data: Any, where: str) -> StageConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name and backend")
    unknown = sorted(set(data) - {"name", "backend", "resources", "options", "limits"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known keys: backend, limits, name, options, resources)"
        )
    backend = data.get("backend")
    known = backends(kind)
    if backend not in known and not is_custom(backend):
        raise ConfigError(f"{where}.backend: {backend!r} is not one of {', '.join(sorted(known))} (or a module:Class)")
    name = data.get("name", backend)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: expected a non-empty string")
    try:
        options_class = stage_class(kind, backend).Options
    except ConfigError as error:
        raise ConfigError(f"{where}.backend: {error}") from None
    return STAGE_CONFIGS[kind](
        name=name,
        backend=backend,
        resources=build(Resources, data.get("resources"), f"{where}.resources"),
        options=build(options_class, data.get("options"), f"{where}.options"),
        limits=build(PixelLimits, data["limits"], f"{where}.limits") if data.get("limits") is not None else None,
    )


STAGES = "stages"
STAGE_SECTIONS = (SPECIALISTS, FILTERS)


def _kind_of(data: Any, where: str) -> str:
    """The family (specialists or filters) of a ``stages:`` entry, from its backend."""
    backend = data.get("backend") if isinstance(data, dict) else None
    try:
        kind = kind_of(backend)
    except ConfigError as error:
        raise ConfigError(f"{where}.backend: {error}") from None
    if kind is None:
        known = sorted(set(backends(SPECIALISTS)) | set(backends(FILTERS)))
        raise ConfigError(f"{where}.backend: {backend!r} is not one of {', '.join(known)} (or a module:Class)")
    return kind


def _stage_list(data: dict[str, Any]) -> tuple[dict[str, tuple[StageConfig, ...]], tuple[str, ...]]:
    """The stages of either form, by kind, and (for ``stages:``) the run order of their names."""
    given = [key for key in (STAGES, *STAGE_SECTIONS) if data.get(key)]
    if STAGES in given and len(given) > 1:
        raise ConfigError("config: give the stages either as one ordered 'stages:' list or as 'specialists:' and "
                          f"'filters:', not both (this profile has {' and '.join(given)})")  # fmt: skip
    stages: dict[str, list[StageConfig]] = {kind: [] for kind in STAGE_SECTIONS}
    order: list[str] = []
    if STAGES in given:
        items = data[STAGES]
        if not isinstance(items, list):
            raise ConfigError(f"{STAGES}: expected a list of stages")
        for i, item in enumerate(items):
            kind = _kind_of(item, f"{STAGES}[{i}]")
            stages[kind].append(_stage(kind, item, f"{STAGES}[{i}]"))
            order.append(stages[kind][-1].name)
        sections = {STAGES: order}
    else:
        for kind in STAGE_SECTIONS:
            items = data.get(kind) or []
            if not isinstance(items, list):
                raise ConfigError(f"{kind}: expected a list of stages")
            stages[kind] = [_stage(kind, item, f"{kind}[{i}]") for i, item in enumerate(items)]
        sections = {kind: [s.name for s in stages[kind]] for kind in STAGE_SECTIONS}
    for section, names in sections.items():
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{section}: stage name {duplicates[0]!r} is used twice")
    return {kind: tuple(configs) for kind, configs in stages.items()}, tuple(order)


def parse_config(data: Any, profile: str = "custom") -> EngineConfig:
    """Validate a profile mapping into an :class:`EngineConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: expected a mapping at the top level")
    sections = {"ingest", "curation", "specialists", "filters", STAGES, "writer", "refresh", "ray", "refine"}
    unknown = sorted(set(data) - sections)
    if unknown:
        raise ConfigError(f"config: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(sections))})")
    stages, order = _stage_list(data)
    return EngineConfig(
        ingest=build(IngestConfig, data.get("ingest"), "ingest"),
        curation=build(CurationSettings, data.get("curation"), "curation"),
        specialists=stages[SPECIALISTS],
        filters=stages[FILTERS],
        writer=build(WriterConfig, data.get("writer"), "writer"),
        refresh=build(RefreshConfig, data.get("refresh"), "refresh"),
        ray=build(RayConfig, data.get("ray"), "ray"),
        refine=build(RefineConfig, data.get("refine"), "refine"),
        profile=profile,
        order=order,
    )


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> EngineConfig:
    """Load a profile: a YAML file path, a bundled profile name (``offline``, ``fld5b``), or the default.

    Its ``extends:`` chain is merged first (:func:`read_profile`), then each ``key.sub=value`` of
    ``overrides`` is applied in turn (``engine/config/overrides.py``) to the resolved profile, every default
    filled in; the profile and every override are validated, so an error names the file's key or the ``--set``.
    """
    reference = str(path if path is not None else DEFAULT_PROFILE)
    candidate = Path(reference)
    if candidate.suffix not in YAML_SUFFIXES and not candidate.exists():
        source = _bundled(reference, "config")
    elif not candidate.is_file():
        raise ConfigError(f"config: file {reference!r} does not exist")
    else:
        source = ProfileSource(candidate.stem, str(candidate.resolve()), candidate, candidate.parent)
    data = read_profile(source)
    config = parse_config(data, profile=source.name)
    for override in map(parse_override, overrides):
        # Laid over the resolved profile, defaults filled in: a key set inside a mapping keeps its siblings.
        data = apply_override(profile_mapping(config), override)
        try:
            config = parse_config(data, profile=source.name)
        except ConfigError as error:
            raise ConfigError(f"--set {override.text}: {error}") from None
    return config


@dataclass(frozen=True)
class ProfileSource:
    """Where a profile's YAML is: ``label`` names it in messages (and identifies it in an ``extends:``
    chain); the relative paths it extends are resolved from ``folder``."""

    name: str
    label: str
    location: Traversable | Path
    folder: Traversable | Path


def read_profile(source: ProfileSource, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The profile's mapping with what it ``extends:`` laid under it (:func:`merge_mappings`), not validated.

    ``extends:`` names a bundled profile, or a YAML file (``.yaml``, ``.yml``) relative to this one.
    """
    chain = (*chain, source.label)
    if chain.count(source.label) > 1:
        raise ConfigError(f"config: profiles extend each other in a cycle: {' -> '.join(chain)}")
    data = _read_yaml(source)
    reference = data.pop(EXTENDS, None)
    if reference is None:
        return data
    if not isinstance(reference, str) or not reference:
        raise ConfigError(f"{source.label}: extends: expected a bundled profile name or a YAML path, got {reference!r}")
    base = read_profile(_extended(reference, source), chain)
    # One form of stage list replaces the other, as a list replaces a list.
    replaced = STAGE_SECTIONS if STAGES in data else (STAGES,) if set(STAGE_SECTIONS) & set(data) else ()
    return merge_mappings({k: v for k, v in base.items() if k not in replaced}, data)


def _read_yaml(source: ProfileSource) -> dict[str, Any]:
    try:
        data = yaml.safe_load(source.location.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config: {source.label} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {source.label}: expected a mapping at the top level")
    return data


def _extended(reference: str, source: ProfileSource) -> ProfileSource:
    """The profile ``source`` extends: a YAML path (relative to ``source``) or a bundled profile name."""
    where = f"{source.label}: extends"
    relative = Path(reference)
    if relative.suffix not in YAML_SUFFIXES:
        return _bundled(reference, where)
    folder = source.folder.joinpath(*relative.parent.parts) if relative.parent.parts else source.folder
    location = folder / relative.name
    if not location.is_file():
        raise ConfigError(f"{where}: file {reference!r} does not exist (looked for {location})")
    label = str(location.resolve()) if isinstance(location, Path) else str(location)
    return ProfileSource(relative.stem, label, location, folder)


def _bundled(name: str, where: str) -> ProfileSource:
    location = BUNDLED / f"{name}.yaml"
    if not location.is_file():
        bundled = sorted(entry.name[: -len(".yaml")] for entry in BUNDLED.iterdir() if entry.name.endswith(".yaml"))
        raise ConfigError(f"{where}: no profile file or bundled profile named {name!r} (bundled: {', '.join(bundled)})")
    return ProfileSource(name, name, location, BUNDLED)

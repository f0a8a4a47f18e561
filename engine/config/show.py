"""A validated :class:`EngineConfig` written back as a profile: every key with its value, defaults included.

The YAML round-trips: loaded as a profile it validates to the same typed config (``fld-engine config show``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from engine.config.settings import EngineConfig, StageConfig

SECTIONS = ("ingest", "curation", "writer", "refresh", "ray", "refine")


def profile_mapping(config: EngineConfig) -> dict[str, Any]:
    """The profile ``config`` was validated from, resolved: ``extends:`` merged, overrides applied, defaults filled."""
    data: dict[str, Any] = {section: settings_mapping(getattr(config, section)) for section in SECTIONS}
    if config.order:
        data["stages"] = [_stage(stage) for stage in config.stages]
    else:
        data["specialists"] = [_stage(stage) for stage in config.specialists]
        data["filters"] = [_stage(stage) for stage in config.filters]
    return data


def profile_yaml(config: EngineConfig) -> str:
    """:func:`profile_mapping` as YAML, keys in the settings' own order."""
    return yaml.safe_dump(profile_mapping(config), sort_keys=False, allow_unicode=True, width=110)


def _stage(stage: StageConfig) -> dict[str, Any]:
    data = {
        "name": stage.name,
        "backend": stage.backend,
        "resources": settings_mapping(stage.resources),
        "options": settings_mapping(stage.options),
    }
    if stage.limits is not None:  # None: the backend's own pixel limits (schemas/pixel_limits.py)
        data["limits"] = settings_mapping(stage.limits)
    return data


def settings_mapping(value: Any) -> Any:
    """A settings value as plain YAML data: dataclasses by their settable fields, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: settings_mapping(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, (list, tuple)):
        return [settings_mapping(item) for item in value]
    if isinstance(value, dict):
        return {key: settings_mapping(item) for key, item in value.items()}
    return value

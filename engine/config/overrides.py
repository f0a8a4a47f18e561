"""``--set key.sub=value``: one profile key changed from the command line, before the profile is validated.

The value is YAML (``yaml.safe_load``): ``8`` is an integer, ``0.3`` a number, ``true`` a boolean, ``null``
nothing, ``[a, b]`` a list and ``{min_score: 0.3}`` a mapping. The key is a dotted path into the merged
profile. Inside a stage list a step names a stage (``stages.ocr.resources.batch_size=8``) or gives its
index (``stages.0``); ``stages.NAME`` also finds a stage listed under ``specialists:`` or ``filters:``.
They are laid over the resolved profile (every default filled in, ``engine/config/show.py``), so a key set
inside a mapping keeps its siblings. A key that does not exist is created, and the validation names it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from engine.config.typed_config import ConfigError

STAGE_LISTS = ("stages", "specialists", "filters")


@dataclass(frozen=True)
class Override:
    """One ``--set``: the key's steps, its value, and the text the user wrote (for messages)."""

    path: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """``key.sub=value`` as an :class:`Override`; a malformed one is a :class:`ConfigError` naming it."""
    key, equals, raw = text.partition("=")
    path = tuple(key.strip().split("."))
    if not equals or not all(path):
        raise ConfigError(f"--set {text}: expected KEY=VALUE with a dotted key, e.g. writer.rows_per_shard=500")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"--set {text}: the value is not valid YAML ({detail})") from None
    return Override(path, value, text)


def apply_override(data: dict[str, Any], override: Override) -> dict[str, Any]:
    """``data`` (a profile mapping, not changed) with ``override`` applied, as a new mapping."""
    result = copy.deepcopy(data)
    path = _in_stage_section(result, override)
    node: Any = result
    for depth, step in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, step, override, ".".join(path[:depth]))]
        elif isinstance(node, dict):
            if not isinstance(node.get(step), (dict, list)):
                if node.get(step) is not None:
                    raise ConfigError(f"--set {override.text}: {where} is {node[step]!r}, not a mapping")
                node[step] = {}
            node = node[step]
        else:  # pragma: no cover - a scalar is replaced before it is descended into
            raise ConfigError(f"--set {override.text}: {where} is not a mapping")
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(node, last, override, ".".join(path[:-1]))] = copy.deepcopy(override.value)
    else:
        node[last] = copy.deepcopy(override.value)
    return result


def _in_stage_section(data: dict[str, Any], override: Override) -> tuple[str, ...]:
    """``stages.NAME...`` rewritten to ``specialists.NAME...`` or ``filters.NAME...`` for a profile of two lists."""
    path = override.path
    if len(path) < 2 or path[0] != "stages" or isinstance(data.get("stages"), list):
        return path
    names = []
    for section in ("specialists", "filters"):
        items = data.get(section)
        if isinstance(items, list):
            if any(_stage_name(item) == path[1] for item in items):
                return (section, *path[1:])
            names += [str(_stage_name(item)) for item in items]
    raise ConfigError(f"--set {override.text}: no stage named {path[1]!r} (stages: {', '.join(names)})")


def _stage_name(item: Any) -> Any:
    return item.get("name", item.get("backend")) if isinstance(item, dict) else None


def _list_index(items: list[Any], step: str, override: Override, where: str) -> int:
    """The entry of a list that ``step`` names: a stage by its name, or any entry by its index."""
    for index, item in enumerate(items):
        if _stage_name(item) == step:
            return index
    if step.lstrip("-").isdigit() and -len(items) <= int(step) < len(items):
        return int(step) % len(items)
    names = [str(_stage_name(item)) for item in items if _stage_name(item) is not None]
    known = f"stages: {', '.join(names)}" if names else f"{len(items)} entries"
    raise ConfigError(f"--set {override.text}: {where} has no stage named {step!r} ({known})")

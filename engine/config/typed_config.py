"""Build typed, frozen dataclasses from YAML mappings, failing with a message naming the key."""

from __future__ import annotations

import dataclasses
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names the key."""


def build(cls: type[T], data: Any, where: str) -> T:
    """Validate ``data`` (a mapping from YAML) into an instance of dataclass ``cls``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls, include_extras=True)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            values[name] = convert(hints[name], data[name], key)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where or cls.__name__}: {error}") from None


def convert(hint: Any, value: Any, key: str) -> Any:
    """Convert one YAML value to the type ``hint`` or raise :class:`ConfigError` naming ``key``."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        return _convert_annotated(hint, value, key)
    if origin in (Union, types.UnionType):
        return _convert_union(hint, value, key)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, get_args(hint)))}")
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)  # type: ignore[arg-type]
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = get_args(hint)
        item = args[0] if args else Any
        items = [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_type, value_type = get_args(hint) or (Any, Any)
        return {convert(key_type, k, key): convert(value_type, v, f"{key}.{k}") for k, v in value.items()}
    return _convert_scalar(hint, value, key)


def _convert_annotated(hint: Any, value: Any, key: str) -> Any:
    """Convert to the annotated type, then check each constraint in its metadata (see ``schemas/bounds.py``)."""
    base, *constraints = get_args(hint)
    converted = convert(base, value, key)
    for constraint in constraints:
        problem = getattr(constraint, "problem", None)
        message = problem(converted) if problem else None
        if message:
            raise ConfigError(f"{key}: {message}, got {value!r}")
    return converted


def _convert_union(hint: Any, value: Any, key: str) -> Any:
    options = get_args(hint)
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return convert(option, value, key)
        except ConfigError as error:
            errors.append(str(error))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {hint}")


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{key}: cannot read {value!r} as {getattr(hint, '__name__', hint)}")


def to_plain(value: Any) -> Any:
    """A dataclass tree as plain JSON-able data (for fingerprints and manifests); derived fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f for f in dataclasses.fields(value) if not f.metadata.get("derived", False)]
        return {f.name: to_plain(getattr(value, f.name)) for f in fields}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in sorted(value.items())}
    return value

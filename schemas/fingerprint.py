"""One canonical hash of plain data, so a fingerprint depends on what settings say, not on how they are written.

Stages fingerprint their backend, model identity and options with it, and the engine its configuration:
a refresh compares these to decide what to recompute, so two spellings of one profile (YAML keys in
another order, at any depth) must give one fingerprint, and any changed value another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np

# Part of every hash: raising it changes every fingerprint once (as a change of recipe must). Version 1 was
# the three recipes this module replaced (specialists: repr of top-level-sorted options; filters: JSON;
# the config: JSON of its plain form).
RECIPE_VERSION = 2
# Field metadata of a setting that decides whether a stage may run, not what it computes (a trust opt-in, a
# checksum pin): left out of fingerprints, so setting it never makes a dataset's rows stale.
NOT_IDENTITY = {"identity": False}


def canonical(value: Any) -> Any:
    """``value`` as JSON-able data in one canonical form.

    Dataclasses become mappings of their fields (a field with ``metadata={"derived": True}``, computed from
    other settings, or with :data:`NOT_IDENTITY`, is left out); mappings are keyed by text and compared sorted (at every
    depth); lists and tuples keep their order (both become lists); sets are sorted; ``-0.0`` is ``0.0``;
    numpy scalars, enums and paths become their plain values. Anything else is a bug in the caller and
    raises ``TypeError``: a fingerprint must never fall back to a ``repr`` holding a memory address.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return 0.0 if value == 0 else value  # -0.0 == 0.0; NaN and infinities stay (JSON writes them one way)
    if isinstance(value, np.generic):
        return canonical(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: canonical(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if not field.metadata.get("derived", False) and field.metadata.get("identity", True)
        }
    if isinstance(value, Mapping):
        plain = {_key(key): canonical(item) for key, item in value.items()}
        if len(plain) != len(value):
            raise ValueError(f"keys of {value!r} collide once written as text")
        return plain
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(item) for item in value), key=canonical_json)
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, Enum):
        return canonical(value.value)
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}: {value!r}")


def _key(key: Any) -> str:
    """A mapping key as text: strings as they are, numbers, booleans and None as their JSON."""
    if isinstance(key, str):
        return key
    plain = canonical(key)
    if plain is None or isinstance(plain, (bool, int, float)):
        return json.dumps(plain)
    raise TypeError(f"cannot fingerprint a mapping keyed by {type(key).__name__}: {key!r}")


def canonical_json(value: Any) -> str:
    """The canonical form of ``value`` as compact JSON with sorted keys."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(value: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the sha256 of ``value``'s canonical JSON (and the recipe version)."""
    payload = f"fld-fingerprint/{RECIPE_VERSION}\n{canonical_json(value)}"
    return hashlib.sha256(payload.encode()).hexdigest()[:length]

"""Laying one profile mapping over another: the rule of a profile's ``extends:``.

Mappings merge key by key, at any depth; anything else (a list, a string, a number, null) in the
mapping laid on top replaces what was below. A stage list is therefore replaced as a whole, never
merged item by item. The same rule serves any later override, such as one ``key.sub=value``
written as ``{"key": {"sub": value}}``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merge_mappings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``, as a new mapping that shares nothing with either (neither changes)."""
    merged = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_mappings(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged

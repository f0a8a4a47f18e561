"""The canonical hash: how data is written (key order, list or tuple) does not count; every value does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from schemas.fingerprint import canonical, canonical_hash, canonical_json


@dataclass(frozen=True)
class Inner:
    weights: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b": 2.0})


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    kinds: tuple[str, ...] = ("object", "proposal")


def test_key_order_at_every_depth_gives_one_hash() -> None:
    written = {"z": 1, "a": {"y": [1, {"q": 2.5, "p": None}], "b": {"d": True, "c": "s"}}}
    reordered = {"a": {"b": {"c": "s", "d": True}, "y": [1, {"p": None, "q": 2.5}]}, "z": 1}
    assert canonical_hash(written) == canonical_hash(reordered)
    assert canonical_json(reordered) == '{"a":{"b":{"c":"s","d":true},"y":[1,{"p":null,"q":2.5}]},"z":1}'


def test_dataclasses_hash_as_their_fields_whatever_order_their_dicts_were_filled_in() -> None:
    forwards = Outer(inner=Inner({"a": 1.0, "b": 2.0}))
    backwards = Outer(inner=Inner({"b": 2.0, "a": 1.0}))
    assert canonical_hash(forwards) == canonical_hash(backwards)
    expected = {"name": "x", "inner": {"weights": {"a": 1.0, "b": 2.0}}, "kinds": ["object", "proposal"]}
    assert canonical(forwards) == expected


def test_every_changed_value_changes_the_hash() -> None:
    base = canonical_hash(Outer())
    changed = [
        Outer(name="y"),
        Outer(inner=Inner({"a": 1.0, "b": 2.5})),
        Outer(inner=Inner({"a": 1.0, "c": 2.0})),
        Outer(inner=Inner({"a": 1.0})),
        Outer(kinds=("proposal", "object")),
        Outer(kinds=("object",)),
    ]
    hashes = {canonical_hash(value) for value in changed}
    assert base not in hashes and len(hashes) == len(changed)


def test_types_that_read_alike_stay_apart() -> None:
    assert canonical_hash({"v": True}) != canonical_hash({"v": 1})
    assert canonical_hash({"v": 1}) != canonical_hash({"v": "1"})
    assert canonical_hash({"v": None}) != canonical_hash({"v": "null"})


def test_sets_are_sorted_tuples_are_lists_and_plain_values_are_unwrapped() -> None:
    assert canonical({"kinds": frozenset({"phrases", "masks", "texts"})}) == {"kinds": ["masks", "phrases", "texts"]}
    assert canonical_hash((1, 2)) == canonical_hash([1, 2])
    assert canonical(np.float32(0.5)) == 0.5 and canonical(np.int64(3)) == 3
    assert canonical(Path("/w/sam_h.pt")) == "/w/sam_h.pt"
    assert canonical({1: "a", None: "b"}) == {"1": "a", "null": "b"}


def test_floats_hash_by_value() -> None:
    assert canonical_hash({"t": -0.0}) == canonical_hash({"t": 0.0})
    assert canonical_hash({"t": 0.1 + 0.2}) != canonical_hash({"t": 0.3})
    assert canonical_json({"t": 1e-4}) == '{"t":0.0001}'


def test_hashes_are_sixteen_hex_digits_by_default() -> None:
    digest = canonical_hash({"a": 1})
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert canonical_hash({"a": 1}, length=64).startswith(digest)


def test_values_without_a_plain_form_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot fingerprint a object"):
        canonical({"model": object()})
    with pytest.raises(ValueError, match="collide"):
        canonical({1: "a", "1": "b"})

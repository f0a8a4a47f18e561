"""The ``ray:`` profile keys for long runs: validated at load, turned into ``ray.init`` and ``DataContext`` values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ray.data import DataContext

from engine.config.profile import parse_config
from engine.config.settings import RayConfig
from engine.config.typed_config import ConfigError
from engine.execute.ray_session import apply_data_context, local_init_options


def test_long_run_keys_default_to_ray_data_s_own_values() -> None:
    ray = parse_config({}).ray
    assert (ray.spill_dir, ray.max_errored_blocks, ray.map_retries, ray.actor_init_retries) == (None, 0, 0, 3)
    assert (ray.target_max_block_size_mb, ray.op_reservation_ratio, ray.downstream_backpressure_ratio) == (
        128,
        0.5,
        2.0,
    )
    assert ray.object_store_fraction is None


def test_long_run_keys_load_from_a_profile() -> None:
    ray = parse_config(
        {"ray": {"spill_dir": "/mnt/spill", "max_errored_blocks": 5, "map_retries": 2, "object_store_fraction": 0.4}}
    ).ray
    assert (ray.spill_dir, ray.max_errored_blocks, ray.map_retries, ray.object_store_fraction) == (
        "/mnt/spill",
        5,
        2,
        0.4,
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_errored_blocks", -2, "ray: max_errored_blocks must be -1 (unlimited), 0 or more"),
        ("map_retries", -1, "ray: map_retries must be 0 or more"),
        ("target_max_block_size_mb", 0, "ray: target_max_block_size_mb must be at least 1"),
        ("op_reservation_ratio", 1.5, "ray: op_reservation_ratio must be in (0, 1]"),
        ("object_store_fraction", 0, "ray: object_store_fraction must be in (0, 1]"),
        ("downstream_backpressure_ratio", 0, "ray: downstream_backpressure_ratio must be above 0 (or null: off)"),
        ("object_store_memory_mb", 10, "ray: object_store_memory_mb must be at least 75 (Ray's minimum)"),
        ("spill_dir", " ", "ray: spill_dir must be a directory, not empty"),
        ("map_retries", "two", "ray.map_retries"),
    ],
)
def test_a_bad_long_run_key_is_refused_naming_it(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"ray": {key: value}})


def test_an_unknown_ray_key_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"ray: unknown key 'spill_directory' .*spill_dir"):
        parse_config({"ray": {"spill_directory": "/tmp"}})


def test_data_context_takes_the_error_budget_retries_and_backpressure() -> None:
    config = RayConfig(
        max_errored_blocks=7,
        map_retries=1,
        actor_init_retries=5,
        target_max_block_size_mb=32,
        op_reservation_ratio=0.25,
        object_store_fraction=0.3,
        downstream_backpressure_ratio=None,
    )
    context = DataContext()
    apply_data_context(context, config)
    assert (context.max_errored_blocks, context.max_map_retries, context.retried_map_errors) == (7, 1, True)
    assert (context.actor_init_max_retries, context.target_max_block_size) == (5, 32 * 1024**2)
    assert (context.op_resource_reservation_ratio, context.override_object_store_memory_limit_fraction) == (0.25, 0.3)
    assert context.downstream_capacity_backpressure_ratio is None


def test_no_map_retries_means_no_error_is_retried() -> None:
    context = DataContext()
    apply_data_context(context, RayConfig(map_retries=0))
    assert (context.max_map_retries, context.retried_map_errors) == (0, False)


def test_a_local_ray_gets_the_spill_directory_and_store_size(tmp_path: Path) -> None:
    options = local_init_options(RayConfig(num_cpus=2, object_store_memory_mb=100, spill_dir=str(tmp_path / "spill")))
    assert options["object_spilling_directory"] == str(tmp_path / "spill")
    assert (options["num_cpus"], options["object_store_memory"]) == (2, 100 * 1024**2)
    assert "object_spilling_directory" not in local_init_options(RayConfig())

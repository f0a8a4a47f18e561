"""The ``ray:`` keys reach a real Ray: Ray Data's settings inside its workers, the spill directory on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from engine.config.settings import RayConfig
from engine.execute.ray_session import ray_session


def _context_seen_by_a_worker(batch: pa.Table) -> pa.Table:
    from ray.data import DataContext

    context = DataContext.get_current()
    return pa.table(
        {
            "max_errored_blocks": [context.max_errored_blocks] * batch.num_rows,
            "max_map_retries": [context.max_map_retries] * batch.num_rows,
            "target_max_block_size": [context.target_max_block_size] * batch.num_rows,
            "op_resource_reservation_ratio": [context.op_resource_reservation_ratio] * batch.num_rows,
        }
    )


def test_ray_data_settings_reach_the_workers_of_a_run() -> None:
    import ray

    config = RayConfig(
        num_cpus=1, max_errored_blocks=4, map_retries=1, target_max_block_size_mb=16, op_reservation_ratio=0.3
    )
    with ray_session(config, progress=False):
        seen = ray.data.range(4).map_batches(_context_seen_by_a_worker, batch_format="pyarrow").take_all()
    assert {tuple(row.values()) for row in seen} == {(4, 1, 16 * 1024**2, 0.3)}


def test_objects_beyond_the_object_store_spill_to_the_configured_directory(tmp_path: Path) -> None:
    import ray

    spill = tmp_path / "spill"
    config = RayConfig(num_cpus=1, object_store_memory_mb=80, spill_dir=str(spill))
    with ray_session(config, progress=False):
        # Three 40 MiB arrays held at once cannot all sit in an 80 MiB store: Ray spills the oldest.
        refs = [ray.put(np.full(40 * 1024**2, i, dtype=np.uint8)) for i in range(3)]
        assert [int(ray.get(ref)[0]) for ref in refs] == [0, 1, 2]
        spilled = [p for p in spill.rglob("*") if p.is_file()]
    assert spilled, f"nothing spilled under {spill}"

"""On Ray, new images' rows are made by a task per image-id partition and stay in the object store, as do
carry-over's rows to re-annotate: the stages get them as a Ray dataset sorted into read order across every part,
in blocks of the rows asked for, or as blocks cut where each part is."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine.execute.annotate_input import READ_KEYS, ids_in_partitions, rows_to_annotate
from engine.ingest.image_bytes import LOCATED_ROWS, in_read_order
from engine.ingest.probe import WORK_SCHEMA
from engine.partitions.parts import Parts
from engine.partitions.tasks import ON_RAY
from tests.support.local_ray import local_ray
from tests.unit.test_annotate_input import LOCATORS, rows_to_rerun, work_rows

NEW = [f"/in/{k:02d}.png" for k in range(7)] + [uri for uri in LOCATORS if not uri.endswith(("a.jpg", "#4"))]
RERUN = ["s3://b/t.tar#a.jpg", "s3://b/p.parquet#4", "/in/rerun.png"]


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def on_ray(tables: list[pa.Table], schema: pa.Schema) -> Parts:
    import ray

    return Parts([ray.put(t) for t in tables], ON_RAY, [t.num_rows for t in tables], schema)


def rows_on_ray():
    work = work_rows(NEW)
    cuts = [work.slice(0, 4), work.slice(4, 0), work.slice(4, 6)]  # three id partitions, one of them empty
    return rows_to_annotate(on_ray(cuts, WORK_SCHEMA), on_ray([rows_to_rerun(RERUN)], LOCATED_ROWS), "brief")


def test_the_dataset_of_rows_in_parts_is_in_read_order_across_partitions(ray_local) -> None:
    import ray

    rows = rows_on_ray()
    assert (rows.parts.tasks.on_ray, rows.parts.counts, rows.here.num_rows, rows.rows) == (True, (4, 0, 6, 3), 0, 13)
    context = ray.data.DataContext.get_current()
    kept, context.execution_options.preserve_order = context.execution_options.preserve_order, True
    try:
        blocks = list(rows.dataset(block_rows=3, read_order=True).iter_batches(batch_size=None, batch_format="pyarrow"))
    finally:
        context.execution_options.preserve_order = kept
    assert blocks and all(0 < block.num_rows <= 3 for block in blocks)
    found = pa.concat_tables(blocks)
    assert set(READ_KEYS) <= set(found.column_names)  # the first stage selects the annotation columns
    every = pa.concat_tables([ray.get(h) for h in rows.parts.handles])
    assert found.column("source_uri").to_pylist() == in_read_order(every).column("source_uri").to_pylist()
    assert found.column("locator").to_pylist() == in_read_order(every).column("locator").to_pylist()
    assert found.column("source_uri").to_pylist()[:8] == [*NEW[:7], "/in/rerun.png"]  # files first, by URI


def test_rows_in_parts_on_ray_are_cut_where_they_are_and_give_every_id(ray_local) -> None:
    import ray

    rows = rows_on_ray()
    blocks = [block if isinstance(block, pa.Table) else ray.get(block) for block in rows.blocks(2)]
    assert [block.num_rows for block in blocks] == [2, 2, 2, 2, 2, 2, 1]  # each part's (none of the empty one)
    ids = {f"id-{uri}" for uri in [*NEW, *RERUN]}
    assert {i for block in blocks for i in block.column("image_id").to_pylist()} == ids
    sent = ids_in_partitions([rows], 2)  # cut by tasks where the parts are, joined per partition on Ray
    assert sent.tasks.on_ray and sent.rows == len(ids)
    assert sorted(sent.gather().column("image_id").to_pylist()) == sorted(ids)

"""The annotate phase's rows: new images' rows made from work table rows with their locators, joined by carry-over's
rows to re-annotate, all in read order, and cut in blocks where their parts are."""

from __future__ import annotations

import pyarrow as pa

from engine.execute.annotate_input import RowsToAnnotate, ids_in_partitions, new_rows, rows_to_annotate
from engine.ingest.image_bytes import LOCATED_ROWS, LOCATOR_COLUMN, in_read_order
from engine.ingest.locator import Locator
from engine.ingest.probe import WORK_SCHEMA
from engine.partitions.keys import id_partitions
from engine.partitions.parts import Parts, in_process
from engine.partitions.tasks import IN_PROCESS
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord
from tests.support.located_rows import with_locators

TAR = "s3://b/t.tar"
PARQUET = "s3://b/p.parquet"
LOCATORS = {
    f"{TAR}#c.jpg": Locator(TAR, offset=3072, length=10, version="e1"),
    f"{TAR}#a.jpg": Locator(TAR, offset=512, length=10, version="e1"),
    f"{TAR}#b.jpg": Locator(TAR, offset=1536, length=10, version="e1"),
    f"{PARQUET}#9": Locator(PARQUET, row_group=1, row=0, column="image", version="e2"),
    f"{PARQUET}#4": Locator(PARQUET, row_group=0, row=4, column="image", version="e2"),
}
FILES = ["/in/z.png", "/in/a.png", "/in/m.png"]


def work_rows(uris: list[str]) -> pa.Table:
    """Work table rows of one image per URI (captions from the input, measures from curation)."""
    rows = [
        {
            "source_uri": uri,
            "image_id": f"id-{uri}",
            "width": 8,
            "height": 6,
            "format": "jpeg",
            "metadata": '{"k": 1}',
            "locator": LOCATORS[uri].to_dict() if uri in LOCATORS else None,
            "measures": {"width": 8, "height": 6},
            "source_uris": [uri, f"{uri}.copy"],
            "captions": [f"a photo of {uri}", None, f"a photo of {uri}"],
        }
        for uri in uris
    ]
    return pa.Table.from_pylist(rows, schema=WORK_SCHEMA)


def rows_to_rerun(uris: list[str]) -> pa.Table:
    """Carry-over's rows to re-annotate (:data:`LOCATED_ROWS`) of one image per URI."""
    records = [ImageRecord(f"id-{uri}", uri, 8, 6, "jpeg", [uri]).to_row() for uri in uris]
    return with_locators(pa.Table.from_pylist(records, schema=ANNOTATION_SCHEMA), LOCATORS)


def test_new_rows_take_identity_captions_measures_and_the_locator_of_their_work_row() -> None:
    uri = f"{TAR}#a.jpg"
    rows = new_rows(work_rows([uri, "/in/z.png"]), "brief")
    assert rows.schema == LOCATED_ROWS and rows.num_rows == 2
    first = rows.to_pylist()[0]
    assert (first["image_id"], first["source_uri"], first["source_uris"]) == (f"id-{uri}", uri, [uri, f"{uri}.copy"])
    assert [t["text"] for t in first["texts"]] == [f"a photo of {uri}"]  # one caption, once
    assert first["metadata"] == '{"k": 1}' and first["measures"]["width"] == 8
    assert Locator.from_dict(first[LOCATOR_COLUMN]) == LOCATORS[uri]
    assert rows.to_pylist()[1][LOCATOR_COLUMN] is None  # a plain file


def test_here_the_new_and_the_rerun_rows_come_in_one_read_order() -> None:
    new_uris, rerun_uris = [f"{TAR}#c.jpg", "/in/z.png", f"{PARQUET}#9"], [f"{TAR}#a.jpg", "/in/a.png", f"{PARQUET}#4"]
    work = work_rows(new_uris)
    rerun = rows_to_rerun(rerun_uris)
    halves = [rerun.slice(0, 2), rerun.slice(2)]  # carry-over's batches
    rows = rows_to_annotate(in_process(work), Parts(halves, IN_PROCESS, [2, 1], LOCATED_ROWS), "brief")
    assert rows.parts.rows == 0 and rows.rows == 6
    assert rows.here.equals(in_read_order(pa.concat_tables([new_rows(work, "brief"), rerun])))
    assert rows.here.column("source_uri").to_pylist() == [
        "/in/a.png",
        "/in/z.png",
        f"{PARQUET}#4",
        f"{PARQUET}#9",
        f"{TAR}#a.jpg",
        f"{TAR}#c.jpg",
    ]


def test_rows_in_parts_are_cut_in_blocks_where_they_are_and_give_every_id() -> None:
    uris = [f"/in/{k:02d}.png" for k in range(11)]
    here = new_rows(work_rows(uris[:3]), "brief")
    tables = [new_rows(work_rows(uris[3:8]), "brief"), new_rows(work_rows([]), "brief")]
    tables.append(new_rows(work_rows(uris[8:]), "brief"))
    rows = RowsToAnnotate(here, Parts(tables, IN_PROCESS, [t.num_rows for t in tables], LOCATED_ROWS))
    blocks = list(rows.blocks(2))
    assert [b.num_rows for b in blocks] == [3, 2, 2, 1, 2, 1]  # the rows here, then each part's (none of the empty one)
    assert pa.concat_tables(blocks).column("source_uri").to_pylist() == uris
    ids = ids_in_partitions([rows, RowsToAnnotate(here)], 3)  # the rows here sent a second time
    assert len(ids.handles) == 3 and ids.rows == 14 and rows.rows == 11
    for k, part in enumerate(ids.each()):
        assert set(id_partitions(part.column("image_id"), 3).tolist()) <= {k}  # each id in its partition
    expected = [f"id-{uri}" for uri in [*uris, *uris[:3]]]
    assert sorted(ids.gather().column("image_id").to_pylist()) == sorted(expected)
    assert rows.block_rows(2) == 2


def test_read_order_puts_files_first_then_each_container_front_to_back() -> None:
    rows = new_rows(work_rows([*LOCATORS, *FILES]), "brief")
    ordered = in_read_order(rows)
    uris = ordered.column("source_uri").to_pylist()
    assert uris == [*sorted(FILES), f"{PARQUET}#4", f"{PARQUET}#9", f"{TAR}#a.jpg", f"{TAR}#b.jpg", f"{TAR}#c.jpg"]
    assert ordered.column("image_id").to_pylist() == [f"id-{uri}" for uri in uris]  # whole rows move together

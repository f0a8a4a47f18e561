"""The annotate phase's input: the rows of new images and of images to re-annotate, with their locators.

New images' rows are made from their work table rows (identity, the input's metadata and captions, curation's
measures, and the locator of the place their bytes are read from) where the work table's partitions are: here
for a small run, else by a Ray task per image-id partition, whose rows stay in the object store. The driver
then holds no row of a new image. On Ray the rows reach the stages as a Ray dataset: in read order when
pixels are read (Ray Data's distributed sort by :data:`~engine.ingest.image_bytes.READ_KEYS`, so that a batch
reads neighbours in one container, as :func:`~engine.ingest.image_bytes.in_read_order` orders them here), in
blocks of a given number of rows. Rows to re-annotate come from carry-over's batches, in its parts, with their
locators: they join the new rows where they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.execute.dataset import MAX_INPUT_BLOCKS, split_blocks
from engine.ingest.captions import alt_texts
from engine.ingest.image_bytes import LOCATED_ROWS, LOCATOR_COLUMN, READ_KEYS, in_read_order, read_keys
from engine.ingest.locator import LOCATOR
from engine.partitions.keys import split_by_id
from engine.partitions.parts import IDS, Parts, column_of, joined_parts, task_results
from engine.partitions.tasks import IN_PROCESS
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import Granularity, ImageRecord

NEW_ROWS_CHUNK = 4096
NEW_ROW_COLUMNS = ["image_id", "source_uri", "width", "height", "format", "source_uris", "captions", "metadata"]


@dataclass(frozen=True)
class RowsToAnnotate:
    """Rows of the annotation schema to send through the stages: ``here``, held in this process, and ``parts``,
    made where the work table's partitions are (on Ray: each part in the object store). Both carry a locator
    column when their bytes are to be read (:data:`LOCATED_ROWS`)."""

    here: pa.Table = field(default_factory=LOCATED_ROWS.empty_table)
    parts: Parts = field(default_factory=lambda: Parts([], IN_PROCESS, (), LOCATED_ROWS))

    @classmethod
    def of(cls, parts: Parts) -> RowsToAnnotate:
        """``parts`` as rows to annotate: left where they are on Ray, else held here."""
        return cls(parts=parts) if parts.tasks.on_ray else cls(parts.gather())

    @property
    def rows(self) -> int:
        return self.here.num_rows + self.parts.rows

    def dataset(self, block_rows: int, read_order: bool) -> Any:
        """The rows as a Ray dataset (Ray is up) of blocks of about ``block_rows`` rows: the rows held here cut
        into blocks; the parts in the object store, sorted into read order when ``read_order``."""
        import ray

        if not self.parts.rows:
            return ray.data.from_blocks(split_blocks(self.here, block_rows))
        refs = [h for h, count in zip(self.parts.handles, self.parts.counts, strict=True) if count]
        if self.here.num_rows:
            refs.append(ray.put(self.here))
        dataset = ray.data.from_arrow_refs(refs)
        if read_order:
            dataset = dataset.map_batches(with_read_keys, batch_format="pyarrow", zero_copy_batch=True).sort(READ_KEYS)
        return dataset.repartition(target_num_rows_per_block=self.block_rows(block_rows))

    def blocks(self, block_rows: int) -> Iterator[Any]:
        """The rows in blocks of about ``block_rows`` rows, in no particular order: tables cut here from the rows
        held here, then each part's blocks cut by a task where the part is (object refs on Ray)."""
        if self.here.num_rows:
            yield from split_blocks(self.here, block_rows)
        tasks, block_rows = self.parts.tasks, self.block_rows(block_rows)
        for handle, count in zip(self.parts.handles, self.parts.counts, strict=True):
            if count:
                pieces = math.ceil(count / block_rows)
                yield from tasks.submit(cut_in, handle, pieces, returns=pieces)

    def block_rows(self, wanted: int) -> int:
        """The rows of a block of the parts: ``wanted``, or more where that would make more than
        ``MAX_INPUT_BLOCKS`` blocks (as :func:`~engine.execute.dataset.split_blocks` cuts the rows held here)."""
        return max(wanted, math.ceil(self.parts.rows / MAX_INPUT_BLOCKS))


def ids_in_partitions(sent: Sequence[RowsToAnnotate], count: int) -> Parts:
    """The image id of every row of ``sent``, in ``count`` image-id partitions: cut where each part is (the rows
    held here, here), a task per partition joining its pieces."""
    tasks = next((rows.parts.tasks for rows in sent if rows.parts.tasks.on_ray), IN_PROCESS)
    pieces = [IN_PROCESS.submit(ids_cut, rows.here, count, returns=count) for rows in sent if rows.here.num_rows]
    for rows in sent:
        pieces += [rows.parts.tasks.submit(ids_cut, handle, count, returns=count) for handle in rows.parts.handles]
    return joined_parts(tasks, pieces, IDS, count)


def ids_cut(rows: pa.Table, count: int) -> pa.Table | tuple[pa.Table, ...]:
    """The ids of ``rows`` (as :data:`~engine.partitions.parts.IDS`) cut into ``count`` id partitions."""
    return task_results(split_by_id(pa.Table.from_arrays([column_of(rows, "image_id")], schema=IDS), count))


def rows_to_annotate(new: Parts, rerun: Parts, caption_granularity: Granularity) -> RowsToAnnotate:
    """The rows of the images of ``new`` (work table rows in image-id partitions, with their locators) and the
    rows to re-annotate (``rerun``: :data:`~engine.ingest.image_bytes.LOCATED_ROWS` in carry-over's parts, run
    where ``new``'s are). Made and held here, in read order, when ``new``'s parts are here; else the new rows
    are made by a task per partition, and both stay where their parts are."""
    if not new.tasks.on_ray:
        here = pa.concat_tables([new_rows(table, caption_granularity) for table in new.each()] + [rerun.gather()])
        return RowsToAnnotate(in_read_order(here))
    handles = [new.tasks.submit(new_rows, handle, caption_granularity)[0] for handle in new.handles]
    located = Parts(handles + rerun.handles, new.tasks, new.counts + rerun.counts, LOCATED_ROWS)
    return RowsToAnnotate(parts=located)


def new_rows(work: pa.Table, caption_granularity: Granularity) -> pa.Table:
    """Rows (:data:`LOCATED_ROWS`) for images annotated for the first time (work table rows): identity, the
    input's metadata, its captions, curation's measures and the locator of the place read (all three taken
    over as Arrow columns); built a chunk at a time, so only one chunk is ever Python objects."""
    parts = [LOCATED_ROWS.empty_table()]
    measures_at = ANNOTATION_SCHEMA.get_field_index("measures")
    for chunk in work.to_batches(max_chunksize=NEW_ROWS_CHUNK):
        rows = [
            ImageRecord(
                row["image_id"],
                row["source_uri"],
                row["width"],
                row["height"],
                row["format"],
                list(row["source_uris"]),
                texts=alt_texts(row["captions"], caption_granularity),  # each distinct caption once
                metadata=row["metadata"],
            ).to_row()
            for row in chunk.select(NEW_ROW_COLUMNS).to_pylist()
        ]
        table = pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)
        measures = chunk.column("measures").cast(ANNOTATION_SCHEMA.field("measures").type)
        table = table.set_column(measures_at, ANNOTATION_SCHEMA.field("measures"), measures)
        parts.append(table.append_column(LOCATED_ROWS.field(LOCATOR_COLUMN), chunk.column("locator").cast(LOCATOR)))
    return pa.concat_tables(parts)


def with_read_keys(rows: pa.Table) -> pa.Table:
    """``rows`` with the columns of :data:`READ_KEYS` it lacks, for Ray Data to sort by."""
    keys = read_keys(rows)
    for name in READ_KEYS:
        if name not in rows.column_names:
            rows = rows.append_column(name, keys.column(name))
    return rows


def cut_in(table: pa.Table, pieces: int) -> tuple[pa.Table, ...] | pa.Table:
    """``table`` in ``pieces`` consecutive slices of about equal rows (the table itself for one)."""
    size = math.ceil(table.num_rows / pieces)
    slices = tuple(table.slice(k * size, size) for k in range(pieces))
    return slices if pieces > 1 else slices[0]

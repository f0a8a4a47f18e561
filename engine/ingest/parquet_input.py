"""Parquet tables as inputs: a column of paths or URIs, or a column of image bytes (img2dataset, Hugging Face).

:func:`read_layout` reads only the table's footer and decides which column holds what; a table it
cannot use is one :class:`InputError` naming it and why. A path table becomes file sources at
discovery, as listing record batches made with Arrow kernels (:func:`iter_path_batches`); a bytes
table is one source, probed row by row (:func:`iter_table_images`) and read back later by row group
and row (:func:`read_cells`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.ingest.path_uris import resolve_uris
from engine.ingest.sources import SOURCE_SCHEMA, InputError, InputOptions, SourceKind, json_text
from engine.store.location import Location

DEFAULT_PATH_COLUMN = "path"
DEFAULT_CAPTION_COLUMN = "caption"
KEY_COLUMN = "key"  # img2dataset's sample key: the row's name in source_uri when it is unique
BYTES_FIELD = "bytes"  # Hugging Face datasets' Image feature is a struct {bytes, path}
READ_ROWS = 64
PATH_READ_ROWS = 8192  # rows of a path table made into one listing batch at a time


@dataclass(frozen=True, slots=True)
class TableLayout:
    """Which columns of a table hold what. ``mode`` is ``paths`` (``column`` holds paths or URIs) or
    ``bytes`` (``column`` holds encoded images, in its ``bytes`` field when ``struct``); every other
    column except the caption (binary ones left out) goes into each image's metadata."""

    mode: str
    column: str
    struct: bool = False
    caption_column: str | None = None
    metadata_columns: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TableLayout:
        data = json.loads(text)
        return cls(**{**data, "metadata_columns": tuple(data["metadata_columns"])})


@dataclass(frozen=True, slots=True)
class TableImage:
    """One row of a bytes table: its name (the ``key`` or the row index), where it is, and what it holds."""

    member: str
    row_group: int
    row: int
    data: bytes | None
    caption: str | None
    metadata: str | None


def open_table(table: Location, handle: Any) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(handle)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"input {table.uri}: not a readable Parquet table ({_first_line(error)})") from None


def read_layout(table: Location, options: InputOptions, extensions: Sequence[str]) -> TableLayout:
    """The layout of a Parquet input, from its schema alone; :class:`InputError` naming the table if unusable."""
    try:
        with table.open_input() as handle:
            schema = open_table(table, handle).schema_arrow
    except OSError as error:
        raise InputError(f"input {table.uri}: cannot read ({_first_line(error)})") from None
    names = schema.names
    caption = _caption_column(table, schema, options.caption_column)
    if options.image_column is not None:
        column, struct = _image_column(table, schema, options.image_column)
        return _layout("bytes", column, struct, caption, schema)
    if options.path_column is None:
        found = [f.name for f in schema if _holds_images(f, extensions)]
        if len(found) > 1:
            raise InputError(
                f"input {table.uri}: several image columns ({', '.join(found)}); choose one with --image-column"
            )
        if found:
            return _layout("bytes", found[0], pa.types.is_struct(schema.field(found[0]).type), caption, schema)
    path_column = options.path_column or DEFAULT_PATH_COLUMN
    if path_column not in names:
        raise InputError(
            f"input {table.uri}: Parquet table has no {path_column!r} column and no image-bytes column "
            f"(columns: {names}); name them with --path-column or --image-column"
        )
    kind = schema.field(path_column).type
    if not _is_string(kind):
        raise InputError(f"input {table.uri}: column {path_column!r} holds {kind} values, not paths (strings)")
    return _layout("paths", path_column, False, caption, schema)


def iter_path_batches(table: Location, layout: TableLayout) -> Iterator[pa.RecordBatch]:
    """``SOURCE_SCHEMA`` record batches of a path table: a file source for every non-empty path, in table order
    (relative paths from the table's folder, ``engine/ingest/path_uris.py``), with the row's caption and
    metadata; a value that cannot be used keeps its text as the URI, with its problem."""
    wanted = list(dict.fromkeys([layout.column, *layout.metadata_columns, layout.caption_column or layout.column]))
    base = table.parent
    with table.open_input() as handle:
        batches = open_table(table, handle).iter_batches(batch_size=PATH_READ_ROWS, columns=wanted)
        while (batch := _next_batch(table, batches)) is not None:
            yield _path_batch(batch, layout, base)


def _next_batch(table: Location, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatch | None:
    """The next batch read, None at the end; a read that fails is an :class:`InputError` naming the table."""
    try:
        return next(batches, None)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"input {table.uri}: unreadable Parquet data ({_first_line(error)})") from None


def _path_batch(batch: pa.RecordBatch, layout: TableLayout, base: Location) -> pa.RecordBatch:
    paths = _strings(batch.column(layout.column))
    batch = batch.filter(pc.fill_null(pc.not_equal(paths, ""), False))  # null and empty paths name no file
    paths = _strings(batch.column(layout.column))
    uris, problems = resolve_uris(paths, base)
    rows = batch.num_rows
    none = pa.nulls(rows, pa.string())
    caption = _strings(batch.column(layout.caption_column)) if layout.caption_column is not None else none
    metadata = none
    if layout.metadata_columns:
        values = batch.select(list(layout.metadata_columns)).to_pylist()
        metadata = pa.array([json_text({k: _plain(v) for k, v in row.items()}) for row in values], pa.string())
    kinds = pa.array([str(SourceKind.FILE)] * rows, pa.string())
    numbers = pa.nulls(rows, pa.int64())
    columns = [kinds, uris, numbers, numbers, none, caption, metadata, problems, none]
    return pa.RecordBatch.from_arrays(columns, schema=SOURCE_SCHEMA)


def _strings(values: pa.Array) -> pa.Array:
    """A string column as plain ``string`` (dictionary-encoded, large and view strings decoded)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.cast(pa.string())


def iter_table_images(table: Location, layout: TableLayout) -> Iterator[TableImage]:
    """Every row of a bytes table, in order; named by the ``key`` column when its values are unique."""
    with table.open_input() as handle:
        parquet = open_table(table, handle)
        keys = _unique_keys(parquet)
        index = 0
        for group in range(parquet.num_row_groups):
            for position, row in enumerate(_iter_rows(table, [layout.column], layout, parquet, group)):
                data = row.pop(layout.column)
                if layout.struct and data is not None:
                    data = data.get(BYTES_FIELD)
                caption = row.pop("__caption__")
                member = str(keys[index]) if keys is not None else str(index)
                yield TableImage(member, group, position, data, caption, json_text(row) if row else None)
                index += 1


def read_column(handle: Any, column: str, row_group: int) -> pa.Array:
    """The image bytes of one row group's ``column`` (a struct's ``bytes`` field): one read of that column chunk."""
    values = pq.ParquetFile(handle).read_row_group(row_group, columns=[column]).column(0).combine_chunks()
    return values.field(BYTES_FIELD) if pa.types.is_struct(values.type) else values


def image_columns(schema: pa.Schema) -> list[str]:
    """Every column that can hold encoded images (binary, or a struct with a binary ``bytes`` field)."""
    return [f.name for f in schema if _is_binary(f.type) or _is_image_struct(f.type)]


def find_row(parquet: pq.ParquetFile, member: str) -> tuple[int, int] | None:
    """``(row group, row)`` of the row a member name (a key or a row index) names, or None."""
    keys = _unique_keys(parquet)
    if keys is not None:
        index = next((i for i, key in enumerate(keys) if str(key) == member), None)
    else:
        index = int(member) if member.isdigit() and int(member) < parquet.metadata.num_rows else None
    if index is None:
        return None
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if index < rows:
            return group, index
        index -= rows
    return None


# -- columns --------------------------------------------------------------------------------
def _layout(mode: str, column: str, struct: bool, caption: str | None, schema: pa.Schema) -> TableLayout:
    skipped = {column, caption}
    metadata = tuple(f.name for f in schema if f.name not in skipped and not _has_binary(f.type))
    return TableLayout(mode, column, struct, caption, metadata)


def _caption_column(table: Location, schema: pa.Schema, asked: str | None) -> str | None:
    name = asked or DEFAULT_CAPTION_COLUMN
    if name not in schema.names:
        if asked is not None:
            raise InputError(f"input {table.uri}: no caption column {asked!r} (columns: {schema.names})")
        return None
    if not _is_string(schema.field(name).type):
        if asked is not None:
            raise InputError(f"input {table.uri}: column {asked!r} holds {schema.field(name).type} values, not text")
        return None  # a non-text ``caption`` column stays in the metadata
    return name


def _image_column(table: Location, schema: pa.Schema, name: str) -> tuple[str, bool]:
    if name not in schema.names:
        raise InputError(f"input {table.uri}: no image column {name!r} (columns: {schema.names})")
    kind = schema.field(name).type
    if _is_binary(kind):
        return name, False
    if _is_image_struct(kind):
        return name, True
    raise InputError(f"input {table.uri}: column {name!r} holds {kind} values, not image bytes")


def _holds_images(field: pa.Field, extensions: Sequence[str]) -> bool:
    """img2dataset names its bytes column after the format (``jpg``, ``png``, ``webp``); Hugging Face
    datasets store an image as a struct ``{bytes, path}``."""
    named = field.name.lower() in {e.lower().lstrip(".") for e in extensions}
    return (named and _is_binary(field.type)) or _is_image_struct(field.type)


def _is_string(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)


def _is_image_struct(kind: pa.DataType) -> bool:
    return pa.types.is_struct(kind) and kind.get_field_index(BYTES_FIELD) != -1 and _is_binary(kind[BYTES_FIELD].type)


def _has_binary(kind: pa.DataType) -> bool:
    if _is_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_has_binary(field.type) for field in kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _has_binary(kind.value_type)
    if pa.types.is_map(kind):
        return _has_binary(kind.key_type) or _has_binary(kind.item_type)
    return False


# -- rows -----------------------------------------------------------------------------------
def _iter_rows(
    table: Location,
    columns: list[str],
    layout: TableLayout,
    parquet: pq.ParquetFile | None = None,
    row_group: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows as dicts of ``columns``, the metadata columns and ``__caption__``, read a few at a time."""
    wanted = [*columns, *layout.metadata_columns]
    if layout.caption_column is not None:
        wanted.append(layout.caption_column)
    if parquet is None:
        with table.open_input() as handle:
            yield from _iter_rows(table, columns, layout, open_table(table, handle), row_group)
        return
    groups = None if row_group is None else [row_group]
    try:
        for batch in parquet.iter_batches(batch_size=READ_ROWS, row_groups=groups, columns=list(dict.fromkeys(wanted))):
            for row in batch.to_pylist():
                caption = row.pop(layout.caption_column) if layout.caption_column is not None else None
                yield {**{k: _plain(v) if k not in columns else v for k, v in row.items()}, "__caption__": caption}
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"input {table.uri}: unreadable Parquet data ({_first_line(error)})") from None


def _unique_keys(parquet: pq.ParquetFile) -> list[Any] | None:
    """The ``key`` column's values when every row has one and no two are equal, else None (rows are
    then named by their index)."""
    if KEY_COLUMN not in parquet.schema_arrow.names:
        return None
    kind = parquet.schema_arrow.field(KEY_COLUMN).type
    if not (_is_string(kind) or pa.types.is_integer(kind)):
        return None
    keys = parquet.read(columns=[KEY_COLUMN]).column(0).to_pylist()
    if any(key is None or key == "" for key in keys) or len(set(keys)) != len(keys):
        return None
    return keys


def _plain(value: Any) -> Any:
    """A metadata value JSON can hold: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

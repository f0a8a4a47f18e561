"""Finding the sources to probe: folders and object prefixes, lists of paths or URIs, WebDataset
shards, Parquet tables and single image files, local or remote (``engine/store/location.py``).

Folders and prefixes are listed lazily (S3 page by page) and contribute image files by extension
and ``.tar`` shards; names that cannot be read as files (FIFOs, devices, dangling or looping links)
become sources with their ``problem``, quarantined without being opened. Listed paths are taken as
given, so a bad listed file is quarantined rather than silently skipped. An input that cannot be
used at all (missing, a corrupt table, a list that is not UTF-8) is one :class:`InputError` naming it.

The run holds what it finds in Arrow, sorted by URI (:func:`discover_ranges`: in ranges, on local disk when
longer than a chunk; ``engine/ingest/listing_ranges.py``), built a chunk at a time from the lazy listings: never
a Python object per file. A Parquet table of paths gives its rows as listing record batches directly
(``iter_path_batches``), without a ``Source`` per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa

from engine.ingest.listing import Listed, listing_batches, listing_sources, sorted_listing
from engine.ingest.listing_ranges import RangedListing, ranged_listing
from engine.ingest.parquet_input import iter_path_batches, read_layout
from engine.ingest.sources import InputError, InputOptions, Source, SourceKind
from engine.store.location import Entry, Location, StorageError, location

LIST_SUFFIXES = (".txt", ".lst")
TAR_SUFFIX = ".tar"
PARQUET_SUFFIX = ".parquet"

__all__ = ["InputError", "discover", "discover_listing", "discover_ranges", "iter_sources"]


def discover_listing(inputs: Sequence[str], extensions: Sequence[str], options: InputOptions | None = None) -> pa.Table:
    """Every source of ``inputs`` as ``SOURCE_SCHEMA`` rows, sorted by URI, each once, as one table held here."""
    return sorted_listing(listing_batches(iter_sources(inputs, extensions, options or InputOptions())))


def discover_ranges(
    inputs: Sequence[str], extensions: Sequence[str], options: InputOptions | None, chunk_rows: int
) -> RangedListing:
    """:func:`discover_listing` in URI ranges of about ``chunk_rows`` rows, sorted on local disk when longer than
    one chunk (what a run holds: ``engine/ingest/listing_ranges.py``)."""
    sources = iter_sources(inputs, extensions, options or InputOptions())
    return ranged_listing(listing_batches(sources), chunk_rows)


def discover(inputs: Sequence[str], extensions: Sequence[str], options: InputOptions | None = None) -> list[Source]:
    """:func:`discover_listing` as :class:`Source` objects (for a few inputs; a run keeps the Arrow listing)."""
    return listing_sources(discover_listing(inputs, extensions, options))


def iter_sources(inputs: Iterable[str], extensions: Sequence[str], options: InputOptions) -> Iterator[Listed]:
    """The sources of each input in turn, lazily: :class:`Source` objects, and ``SOURCE_SCHEMA`` record batches
    where a path table's rows were made in Arrow (``listing_batches`` takes both, in this order)."""
    suffixes = {e.lower() for e in extensions}
    for item in inputs:
        try:
            place = location(item)
        except StorageError as error:
            raise InputError(f"input {item}: {error}") from None
        yield from _sources_of(place, item, suffixes, options)


def _sources_of(place: Location, item: str, suffixes: set[str], options: InputOptions) -> Iterator[Listed]:
    try:
        kind = place.info().type
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"input {item}: cannot be reached ({_first_line(error)})") from None
    suffix = place.suffix
    if kind == pa.fs.FileType.Directory:
        yield from _listed_folder(place, item, suffixes)
    elif kind == pa.fs.FileType.NotFound:
        raise InputError(f"input {item}: no such file or folder")
    elif suffix == PARQUET_SUFFIX:
        yield from _table(place, suffixes, options)
    elif suffix in LIST_SUFFIXES:
        yield from _listed_entries(place, item, suffixes, options)
    elif kind != pa.fs.FileType.File:  # a FIFO or device named as an input: quarantined, never opened
        yield Source(_kind_of(suffix), place.uri, problem="not a regular file")
    else:
        yield Source(_kind_of(suffix), place.uri)


def _kind_of(suffix: str) -> SourceKind:
    return SourceKind.TAR if suffix == TAR_SUFFIX else SourceKind.FILE


def _listed_folder(folder: Location, item: str, suffixes: set[str]) -> Iterator[Source]:
    """Image files and ``.tar`` shards below a folder or prefix, as listed (never the whole listing held here)."""
    try:
        for entry in folder.iter_files(special=True):
            suffix = _suffix(entry)
            if suffix in suffixes or suffix == TAR_SUFFIX:
                yield Source(_kind_of(suffix), entry.uri, entry.size, entry.mtime_ns, entry.etag, problem=entry.special)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"input {item}: cannot be listed ({_first_line(error)})") from None


def _suffix(entry: Entry) -> str:
    name = entry.uri.rstrip("/").rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name.lstrip(".") else ""


def _listed_entries(listing: Location, item: str, suffixes: set[str], options: InputOptions) -> Iterator[Listed]:
    """Each line of a UTF-8 list (``#`` comments and blank lines skipped): a path relative to the list's
    folder, an absolute path or a URI. ``.tar`` entries are shards, ``.parquet`` entries tables."""
    try:
        data = listing.read_bytes()
    except OSError as error:
        raise InputError(f"input {item}: cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"input {item}: a list of paths must be UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None
    base = listing.parent
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            place = location(entry) if "://" in entry or entry.startswith(("/", "~")) else base / entry
        except StorageError as error:
            yield Source(SourceKind.FILE, entry, problem=str(error))
            continue
        if place.suffix == PARQUET_SUFFIX:
            yield from _table(place, suffixes, options)
        else:
            yield Source(_kind_of(place.suffix), place.uri)


def _table(table: Location, suffixes: set[str], options: InputOptions) -> Iterator[Listed]:
    """A Parquet input: its path column's files, or the table itself as a source of image bytes."""
    layout = read_layout(table, options, sorted(suffixes))
    if layout.mode == "paths":
        yield from iter_path_batches(table, layout)
        return
    stamp = table.stat()  # read_layout has opened it: a file
    if stamp is None:
        raise InputError(f"input {table.uri}: no such file")
    yield Source(SourceKind.TABLE, table.uri, stamp.size, stamp.mtime_ns, stamp.etag, layout=layout.to_json())


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]

"""A column of paths or URIs (a Parquet path table's) resolved to source URIs with Arrow kernels.

:func:`path_uri` is the rule, one value at a time: a URI or an absolute path (``/``, ``~``) is taken through
:func:`~engine.store.location.location`, anything else is relative to the table's folder; a value that
cannot be used gives its problem. :func:`resolve_uris` gives the same URIs and problems for a whole column
without a :class:`~engine.store.location.Location` per row: the values whose URI is the value itself (an
absolute local path already normal), the base folder and the value (a normal relative path), or the value
without trailing slashes (an ``s3://`` or ``gs://`` URI of a bucket that resolves) are computed column-wise;
the rest (``~``, ``file://``, other schemes, ``..`` and ``//`` to normalise, unusable values) go through
:func:`path_uri`.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from engine.store.location import BUCKET_SCHEMES, Location, StorageError, location

# What os.path.normpath would change in a path: doubled slashes, "." and ".." segments, a trailing slash.
_NOT_NORMAL = r"//|(^|/)\.\.?(/|$)|/$"
# A bucket URI that urlsplit reads back as itself: a plain bucket name, no query, fragment, tab or newline.
_BUCKET_URI = rf"^(?P<scheme>{'|'.join(sorted(BUCKET_SCHEMES))})://(?P<bucket>[A-Za-z0-9._-]+)(?:/[^?#\t\r\n]*)?$"


def path_uri(value: str, base: Location) -> tuple[str, str | None]:
    """The source URI ``value`` names (relative to ``base``), and None; or ``value`` and why it cannot be used."""
    try:
        place = location(value) if "://" in value or value.startswith(("/", "~")) else base / value
    except StorageError as error:
        return value, str(error)
    return place.uri, None


def resolve_uris(values: pa.Array, base: Location) -> tuple[pa.Array, pa.Array]:
    """:func:`path_uri` of every value (strings, none null or empty), as a URI array and a problem array."""
    is_uri = pc.match_substring(values, "://")
    normal = pc.invert(pc.match_substring_regex(values, _NOT_NORMAL))
    absolute = pc.and_(pc.starts_with(values, "/"), pc.invert(is_uri))
    relative = pc.invert(pc.or_(pc.or_(absolute, is_uri), pc.starts_with(values, "~")))
    prefix = _relative_prefix(base)
    fast_absolute = pc.and_(absolute, normal)
    fast_relative = pc.and_(pc.and_(relative, normal), pa.scalar(prefix is not None))
    fast_bucket = _resolvable_bucket_uris(values)
    uris = pc.if_else(fast_absolute, values, pc.utf8_rtrim(values, characters="/"))
    if prefix is not None:
        uris = pc.if_else(fast_relative, pc.binary_join_element_wise(prefix, values, ""), uris)
    slow = pc.invert(pc.or_(pc.or_(fast_absolute, fast_relative), fast_bucket))
    problems = pa.nulls(len(values), pa.string())
    if not pc.any(slow).as_py():
        return uris, problems
    resolved = [path_uri(value, base) for value in values.filter(slow).to_pylist()]
    uris = pc.replace_with_mask(uris, slow, pa.array([uri for uri, _ in resolved], pa.string()))
    problems = pc.replace_with_mask(problems, slow, pa.array([problem for _, problem in resolved], pa.string()))
    return uris, problems


def _relative_prefix(base: Location) -> str | None:
    """What a normal relative path is appended to (``Location.joinpath``), or None where joining does more
    (a local folder whose path is not valid UTF-8, written as a percent-encoded file URI)."""
    if not base.is_local:
        return base.uri.rstrip("/") + "/"
    return base.path.rstrip("/") + "/" if base.uri == base.path else None


def _resolvable_bucket_uris(values: pa.Array) -> pa.Array:
    """Which values are bucket URIs whose URI is the value without trailing slashes, in a bucket whose store
    :func:`location` builds. As one value at a time: the first value of each bucket builds its store (cached
    for the rest); where that fails, the bucket's values are left to :func:`path_uri`, one at a time."""
    parts = pc.extract_regex(values, _BUCKET_URI)
    heads = pc.binary_join_element_wise(pc.struct_field(parts, "scheme"), pc.struct_field(parts, "bucket"), "://")
    if heads.null_count == len(heads):
        return pa.array([False] * len(values), pa.bool_())
    distinct = pc.drop_null(pc.unique(heads))
    firsts = pc.index_in(distinct, heads).to_pylist()
    usable = []
    for head, first in zip(distinct.to_pylist(), firsts, strict=True):
        try:
            location(values[first].as_py())
        except StorageError:
            continue
        usable.append(head)
    return pc.fill_null(pc.is_in(heads, pa.array(usable, pa.string())), False)

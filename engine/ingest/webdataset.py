"""WebDataset shards: a ``.tar`` read in one streaming pass, members grouped into samples by key.

As the ``webdataset`` library does (``base_plus_ext``), a member's key is its path up to the first
dot of its base name and its field is the rest (``a/0001.jpg`` -> key ``a/0001``, field ``jpg``);
consecutive members with one key form a sample. A sample's image members (fields named like an
image extension) are its images, its ``txt`` member their caption and its ``json`` member their
metadata. The tar is never unpacked: each image member's data offset and size are recorded, so
the image is read back later with one ranged read (``engine/ingest/locator.py``).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.ingest.sources import json_text

# webdataset.tariterators: base_plus_ext, and the metadata entries its tar iterator skips
KEY_AND_FIELD = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
SKIPPED_NAMES = re.compile(r"__[^/]*__($|/)")
CAPTION_FIELD = "txt"
METADATA_FIELD = "json"
# Captions and metadata are small; a larger member is left out rather than held in memory.
MAX_TEXT_BYTES = 1 << 20


@dataclass(slots=True)
class ImageMember:
    """An image member: where its data lies in the tar, and its bytes (None when too large to read)."""

    name: str
    offset: int
    size: int
    data: bytes | None


@dataclass(slots=True)
class Sample:
    """One WebDataset sample: its key, image members, caption and metadata (JSON text)."""

    key: str
    images: list[ImageMember] = field(default_factory=list)
    caption: str | None = None
    metadata: str | None = None


class ShardError(Exception):
    """The tar stream itself is broken (not a tar, truncated): samples before the break were yielded."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def key_and_field(name: str) -> tuple[str, str] | None:
    """``(key, field)`` of a member name as webdataset splits it; None for names without a field."""
    match = KEY_AND_FIELD.match(name)
    return (match.group(1), match.group(2)) if match else None


def iter_samples(stream: Any, image_fields: Collection[str] | None, max_bytes: int) -> Iterator[Sample]:
    """The samples of a tar stream, in order. Image members larger than ``max_bytes`` are not read
    (``data`` None); with ``image_fields`` None every member counts as an image (to index offsets).
    Raises :class:`ShardError` where the stream breaks, after the samples before it."""
    fields = None if image_fields is None else {f.lower().lstrip(".") for f in image_fields}
    sample: Sample | None = None
    members = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                split = key_and_field(member.name) if member.isfile() else None
                if split is None or SKIPPED_NAMES.match(member.name):
                    continue  # folders, links, names without a field, webdataset's __index__-style entries
                key, kind = split
                if sample is not None and key != sample.key:
                    yield sample
                    sample = None
                if sample is None:
                    sample = Sample(key)
                _add_member(sample, tar, member, kind.lower(), fields, max_bytes)
                members += 1
    except (tarfile.TarError, EOFError, OSError) as error:
        if sample is not None and members:
            yield sample  # complete members read before the break are kept
        raise ShardError(
            _reason(error, members), f"{type(error).__name__}: {error} (after {members} members)"
        ) from None
    if sample is not None:
        yield sample


def _add_member(
    sample: Sample, tar: tarfile.TarFile, member: tarfile.TarInfo, kind: str, fields: set[str] | None, max_bytes: int
) -> None:
    if fields is None or kind in fields:
        data = _read(tar, member) if member.size <= max_bytes else None
        sample.images.append(ImageMember(member.name, member.offset_data, member.size, data))
    elif kind == CAPTION_FIELD and member.size <= MAX_TEXT_BYTES:
        sample.caption = _read(tar, member).decode("utf-8", "replace")
    elif kind == METADATA_FIELD and member.size <= MAX_TEXT_BYTES:
        sample.metadata = _metadata(_read(tar, member))


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    data = handle.read() if handle is not None else b""
    if len(data) != member.size:
        raise EOFError(f"member {member.name} ends after {len(data)} of {member.size} bytes")
    return data


def _metadata(data: bytes) -> str:
    """A ``.json`` member as compact JSON; one that does not parse is kept as a JSON string of its text."""
    text = data.decode("utf-8", "replace")
    try:
        return json_text(json.loads(text))
    except ValueError:
        return json_text(text)


def _reason(error: BaseException, members: int) -> str:
    if members == 0 and isinstance(error, tarfile.ReadError):
        return "empty" if "empty file" in str(error) else "not_a_tar"
    return "truncated"

"""Ingestion: find input files, hash and probe them, decode images safely, and plan the work.

Every input ends as exactly one of: a unique image to annotate (with all paths that hold the
same bytes), or a quarantine row with its reason. Nothing here uses Ray; the pipeline maps
these functions over batches.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False


class InputError(ValueError):
    """An input path cannot be read as a folder, a list of paths or a Parquet table."""


class BadImage(Exception):
    """A file that cannot become an annotated image; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ProbedFile:
    """What probing one input file found: its content id and image facts, or why it is quarantined."""

    source_uri: str
    size_bytes: int
    image_id: str | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A unique image (by content) to annotate, with every path that holds its bytes."""

    image_id: str
    source_uri: str
    source_uris: tuple[str, ...]
    width: int
    height: int
    format: str


def discover(inputs: Sequence[str], extensions: Sequence[str], path_column: str = "path") -> list[str]:
    """Expand inputs (folders, recursively; ``.txt`` lists of paths; Parquet tables with a path column).

    Folders contribute files with an image extension; listed paths are taken as given, so a bad
    listed file is quarantined rather than silently skipped. The result is sorted and unique.
    """
    suffixes = {e.lower() for e in extensions}
    found: set[str] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for root, _, names in os.walk(path, followlinks=True):
                found.update(str(Path(root, n).resolve()) for n in names if Path(n).suffix.lower() in suffixes)
        elif path.suffix.lower() == ".parquet" and path.is_file():
            table = pq.read_table(path)
            if path_column not in table.column_names:
                raise InputError(
                    f"input {item}: Parquet table has no {path_column!r} column (columns: {table.column_names})"
                )
            found.update(_resolve(p, path.parent) for p in table.column(path_column).to_pylist() if p)
        elif path.suffix.lower() in {".txt", ".lst"} and path.is_file():
            lines = path.read_text().splitlines()
            found.update(
                _resolve(line.strip(), path.parent) for line in lines if line.strip() and not line.startswith("#")
            )
        elif path.is_file():
            found.add(str(path.resolve()))
        else:
            raise InputError(f"input {item}: no such file or folder")
    return sorted(found)


def _resolve(entry: str, base: Path) -> str:
    path = Path(entry).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


def decode_image(data: bytes, max_pixels: int) -> tuple[np.ndarray, str]:
    """Decode bytes into an (H, W, 3) uint8 RGB array, EXIF orientation applied; also the format.

    Raises :class:`BadImage` for empty, non-image, truncated or oversized input. The pixel count
    is checked from the header, before any pixel is decoded.
    """
    if not data:
        raise BadImage("empty", "file has zero bytes")
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit, checked from the header below, replaces Pillow's
    try:
        image = Image.open(io.BytesIO(data))
        fmt = (image.format or "").lower()
        width, height = image.size
        if width * height > max_pixels:
            raise BadImage("too_large", f"{width}x{height} exceeds max_pixels={max_pixels}")
        image.load()
        image = ImageOps.exif_transpose(image)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not_an_image", "not a recognised image format") from None
    except Image.DecompressionBombError as error:
        raise BadImage("too_large", str(error)) from None
    except (OSError, SyntaxError, ValueError) as error:
        message = str(error)
        reason = "truncated" if "truncated" in message or "broken" in message else "decode_error"
        raise BadImage(reason, message) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    return to_rgb(image), fmt


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as 8-bit RGB: 16-bit scaled down, transparency composited on white."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def probe_file(uri: str, max_pixels: int, max_bytes: int) -> ProbedFile:
    """Read, hash and fully decode one file; a failure becomes a quarantine reason, never an exception."""
    try:
        size = os.path.getsize(uri)
        if size > max_bytes:
            return ProbedFile(uri, size, reason="too_large", detail=f"{size} bytes exceeds max_bytes={max_bytes}")
        with open(uri, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return ProbedFile(uri, 0, reason="unreadable", detail=f"{type(error).__name__}: {error.strerror or error}")
    image_id = hashlib.sha256(data).hexdigest()
    try:
        pixels, fmt = decode_image(data, max_pixels)
    except BadImage as error:
        return ProbedFile(uri, len(data), image_id=image_id, reason=error.reason, detail=error.detail)
    height, width = pixels.shape[:2]
    return ProbedFile(uri, len(data), image_id, width, height, fmt)


def plan_work(probed: Iterable[ProbedFile]) -> tuple[list[WorkItem], list[ProbedFile]]:
    """Group good files by content (duplicates annotated once); return work items and quarantined files."""
    by_id: dict[str, list[ProbedFile]] = {}
    quarantined: list[ProbedFile] = []
    for item in probed:
        if item.reason is not None or item.image_id is None:
            quarantined.append(item)
        else:
            by_id.setdefault(item.image_id, []).append(item)
    work = []
    for image_id in sorted(by_id):
        copies = sorted(by_id[image_id], key=lambda p: p.source_uri)
        first = copies[0]
        work.append(
            WorkItem(
                image_id, first.source_uri, tuple(c.source_uri for c in copies), first.width, first.height, first.format
            )
        )
    return work, sorted(quarantined, key=lambda p: p.source_uri)

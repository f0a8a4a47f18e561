"""The image file behind a record, checked against its content id, as written into an export.

A record's geometry refers to the decoded image (EXIF orientation applied, any mode as RGB).
Files whose pixels already read that way (JPEG/PNG, no rotation) are copied with their compressed
pixels byte for byte, by default without location metadata (:mod:`engine.exports.location_metadata`);
others are written as PNG from the decoded pixels, so boxes and pixels always agree.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from engine.exports.location_metadata import without_location
from engine.ingest.decode import decode_image
from schemas.records import ImageRecord

COPYABLE_FORMATS = {"jpeg": ".jpg", "png": ".png"}
EXIF_ORIENTATION = 0x0112
MAX_PIXELS = 200_000_000


def source_bytes(record: ImageRecord) -> bytes | None:
    """The bytes of the first source path that still holds this image (same sha256), else None."""
    for uri in record.source_uris or [record.source_uri]:
        try:
            data = Path(uri).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == record.image_id:
            return data
    return None


def decoded_pixels(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB exactly as the engine decoded the image when annotating it."""
    return decode_image(data, MAX_PIXELS)[0]


def _copyable_suffix(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            suffix = COPYABLE_FORMATS.get((image.format or "").lower())
            rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
            plain_mode = image.mode in {"RGB", "L"}
    except (OSError, SyntaxError, ValueError):
        return None  # decoding will say why
    return suffix if suffix and plain_mode and not rotated else None


def export_bytes(data: bytes, keep_exif: bool = False) -> tuple[bytes, str]:
    """The bytes to write for an image and their file suffix: the original when it reads as decoded
    (without location metadata unless ``keep_exif``), else PNG of the decoded pixels."""
    suffix = _copyable_suffix(data)
    if suffix is not None:
        payload = data if keep_exif else without_location(data)
        if payload is not None:
            return payload, suffix
    buffer = io.BytesIO()
    Image.fromarray(decoded_pixels(data)).save(buffer, "PNG")
    return buffer.getvalue(), ".png"


def write_image(record: ImageRecord, data: bytes, folder: Path, keep_exif: bool = False) -> str:
    """Write the image into ``folder`` as ``<image_id[:16]><suffix>``; return the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    payload, suffix = export_bytes(data, keep_exif)
    name = record.image_id[:16] + suffix
    (folder / name).write_bytes(payload)
    return name

"""Decoding image bytes safely: the pixel count checked from the header, EXIF orientation applied, RGB out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class BadImage(Exception):
    """A file that cannot become an annotated image; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
        if data[:4] in TIFF_MAGIC:  # a TIFF layout Pillow cannot decode (float RGB, 64-bit, ...)
            raise BadImage("unsupported_mode", "a TIFF whose sample format Pillow cannot decode") from None
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
    """Any Pillow mode as 8-bit RGB: 16-bit and 32-bit integer and float values scaled to 0-255,
    transparency composited on white. Values whose range has no clear scale (floats outside 0-1 and
    0-255, integers beyond 16 bits, NaN) raise :class:`BadImage` ``unsupported_mode``: an image is never
    annotated as a black or white square it is not."""
    if image.mode.startswith("I") or image.mode == "F":
        gray = _scaled_to_8bit(np.asarray(image), image.mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        converted = image.convert("RGB")
    except ValueError as error:  # a mode Pillow cannot convert (LAB, HSV in some builds, ...)
        raise BadImage("unsupported_mode", f"mode {image.mode}: {error}") from None
    return np.ascontiguousarray(np.asarray(converted, dtype=np.uint8))


def _scaled_to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """One channel of 16/32-bit integers or floats as uint8: floats within 0-1 and integers within 16 bits
    scaled, values already within 0-255 kept."""
    values = values.astype(np.float64)
    if not values.size:
        return values.astype(np.uint8)
    if not np.isfinite(values).all():
        raise BadImage("unsupported_mode", f"mode {mode}: values include NaN or infinity")
    low, high = float(values.min()), float(values.max())
    if low < 0:
        raise BadImage("unsupported_mode", f"mode {mode}: negative values ({low:g} to {high:g})")
    if mode == "F":
        peak = 1.0 if high <= 1.0 else 255.0 if high <= 255 else None
    else:
        peak = 65535.0 if mode.startswith("I;16") or 255 < high <= 65535 else 255.0 if high <= 255 else None
    if peak is None:
        raise BadImage("unsupported_mode", f"mode {mode}: values up to {high:g} have no known scale")
    return np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)

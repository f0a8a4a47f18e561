"""Decoding image bytes safely: the pixel count checked from the header, EXIF orientation applied, RGB out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False


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

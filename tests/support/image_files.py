"""Builders of good and bad image files for ingestion tests (all made here, nothing downloaded)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one tiny IDAT (a decompression bomb probe)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def jpeg_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_ingestion_zoo(folder: Path) -> dict[str, str | None]:
    """Write one file per ingestion case; return file name -> expected quarantine reason (None = good)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    def put(name: str, data: bytes, reason: str | None) -> None:
        (folder / name).write_bytes(data)
        expected[name] = reason

    good = jpeg_bytes(80, 60, seed=1)
    put("good.jpg", good, None)
    put("good_duplicate.jpg", good, None)
    put("empty.jpg", b"", "empty")
    put("truncated.jpg", jpeg_bytes(200, 150, seed=2)[:700], "truncated")
    put("text_named.jpg", b"this is not an image\n" * 10, "not_an_image")
    put("bomb.png", png_header_only(30000, 30000), "too_large")

    buffer = io.BytesIO()
    Image.new("CMYK", (40, 30), (255, 0, 0, 0)).save(buffer, "JPEG")
    put("cmyk.jpg", buffer.getvalue(), None)

    buffer = io.BytesIO()
    gradient = (np.arange(32 * 20, dtype=np.uint16).reshape(20, 32) * 100).astype(np.uint16)
    Image.fromarray(gradient).save(buffer, "PNG")
    put("gray16.png", buffer.getvalue(), None)

    buffer = io.BytesIO()
    palette = Image.new("P", (30, 20), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 15, 20))
    palette.save(buffer, "PNG", transparency=0)
    put("palette_transparent.png", buffer.getvalue(), None)

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    Image.fromarray(np.zeros((30, 50, 3), dtype=np.uint8)).save(buffer, "JPEG", exif=exif.tobytes())
    put("exif_rotated.jpg", buffer.getvalue(), None)
    return expected

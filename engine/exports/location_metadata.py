"""Location metadata removed from an image file without touching its compressed pixels.

JPEG files are rewritten marker segment by marker segment; the entropy-coded scans (the pixels)
are copied byte for byte. PNG files are rewritten chunk by chunk. In both:

- Exif keeps every tag but the GPS IFD (tag 0x8825); Exif without GPS is kept byte for byte.
- XMP and IPTC (JPEG APP1 XMP, APP13 Photoshop/IPTC; PNG XMP and ImageMagick "Raw profile"
  text chunks) are dropped whole: they can state coordinates and place names in many schemas
  (``exif:GPSLatitude``, ``photoshop:City``, ``Iptc4xmpCore:Location``, IPTC 2:90-2:101).
- Data after the end of the image (appended preview images, motion-photo videos, MPF
  secondary images) is dropped, with the APP2 MPF index that points into it.

Pillow (already a dependency, maintained, its TIFF/Exif parser in Python) re-serialises the
Exif block; only the segment framing is walked here. piexif does the same splice but has been
unmaintained since 2019, and exiv2 bindings would run a C++ parser over untrusted files.
:func:`without_location` returns None for a file whose structure it cannot follow; the caller
then writes the decoded pixels instead (lossless PNG), never the unknown bytes.
"""

from __future__ import annotations

import re
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
EXIF_HEADER = b"Exif\x00\x00"
JPEG_SOI, JPEG_EOI, JPEG_SOS = 0xD8, 0xD9, 0xDA
JPEG_APP1, JPEG_APP2, JPEG_APP13 = 0xE1, 0xE2, 0xED
# Markers without a length field: TEM, RST0-7 (SOI and EOI are handled on their own).
STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}
# In entropy-coded data, 0xFF is followed by 0x00 (a stuffed byte), RSTn or another 0xFF (fill);
# anything else starts the next marker segment.
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
DROPPED_APP_PREFIXES = {
    JPEG_APP1: (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00"),
    JPEG_APP2: (b"MPF\x00",),
    JPEG_APP13: (b"",),  # Photoshop image resources, where IPTC lives
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}
PNG_DROPPED_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type")


def exif_without_gps(exif_block: bytes) -> bytes:
    """An Exif block (with or without the ``Exif\\0\\0`` header) minus its GPS IFD, as Pillow writes it."""
    exif = Image.Exif()
    exif.load(exif_block)
    if GPS_IFD not in exif:
        return exif_block
    del exif[GPS_IFD]
    rewritten = exif.tobytes()
    return rewritten if exif_block.startswith(EXIF_HEADER) else rewritten[len(EXIF_HEADER) :]


def without_location(data: bytes) -> bytes | None:
    """``data`` (a JPEG or PNG file) without location metadata; other formats unchanged; None if unparseable."""
    try:
        if data.startswith(b"\xff\xd8"):
            return _jpeg_without_location(data)
        if data.startswith(PNG_SIGNATURE):
            return _png_without_location(data)
    except (OSError, SyntaxError, ValueError, struct.error):
        return None  # an Exif block Pillow cannot read: the caller re-encodes the pixels
    return data


def _jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment to write for an APPn/other segment, or None to drop it."""
    if marker == JPEG_APP1 and payload.startswith(EXIF_HEADER):
        payload = exif_without_gps(payload)
        if len(payload) + 2 > 0xFFFF:
            raise ValueError("Exif block too large for one segment")
    elif any(payload.startswith(prefix) for prefix in DROPPED_APP_PREFIXES.get(marker, ())):
        return None
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_without_location(data: bytes) -> bytes | None:
    out = [data[:2]]
    position = 2
    while position < len(data):
        if data[position] != 0xFF or position + 1 >= len(data):
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == JPEG_EOI:
            out.append(data[position : position + 2])
            return b"".join(out)
        if marker in STANDALONE_MARKERS:
            out.append(data[position : position + 2])
            position += 2
            continue
        if position + 4 > len(data):
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if length < 2 or end > len(data):
            return None
        segment = _jpeg_segment(marker, data[position + 4 : end])
        if segment is not None:
            out.append(segment)
        position = end
        if marker == JPEG_SOS:  # the scan's pixels run to the next marker, copied as they are
            following = NEXT_MARKER.search(data, position)
            if following is None:
                return None
            out.append(data[position : following.start()])
            position = following.start()
    return None  # no end-of-image marker


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_without_location(data: bytes) -> bytes | None:
    out = [PNG_SIGNATURE]
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return None
        body = data[position + 8 : end - 4]
        if kind == b"eXIf":
            out.append(_png_chunk(kind, exif_without_gps(body)))
        elif not (kind in PNG_TEXT_CHUNKS and body.startswith(PNG_DROPPED_KEYWORDS)):
            out.append(data[position:end])
        position = end
        if kind == b"IEND":
            return b"".join(out)
    return None  # no IEND chunk

"""Exports strip location metadata (Exif GPS, XMP, IPTC) without re-encoding pixels; --keep-exif keeps it."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, PngImagePlugin

from engine.cli import main as cli
from engine.exports.location_metadata import without_location
from schemas.records import ImageRecord, Provenance, Region, Text
from tests.support.audit_dataset import publish_records

GPS_IFD, MAKE, MODEL = 0x8825, 0x010F, 0x0110
DETR = Provenance("detr", "tiny-detr", 0)
CAPTIONER = Provenance("captioner", "tiny-florence", 0)
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description photoshop:City="Berlin"/></x:xmpmeta>'


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "FLD Camera", "X100"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 1.0)})
    return exif


def pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def jpeg_with_gps(**options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels()).save(buffer, "JPEG", exif=camera_exif(), **options)
    return buffer.getvalue()


def with_iptc(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP13 Photoshop/IPTC segment naming a city (IPTC 2:90) after SOI."""
    iptc = b"\x1c\x02\x5a" + struct.pack(">H", 6) + b"Berlin"
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    payload = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def scan_data(jpeg: bytes) -> bytes:
    """Everything from the first start-of-scan marker: the compressed pixels."""
    return jpeg[jpeg.index(b"\xff\xda") :]


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("options", [{}, {"progressive": True}], ids=["baseline", "progressive"])
def test_gps_is_removed_and_the_compressed_pixels_are_copied_byte_for_byte(options) -> None:
    source = jpeg_with_gps(**options)
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(GPS_IFD)  # the source does carry GPS
    stripped = without_location(source)
    exif = Image.open(io.BytesIO(stripped)).getexif()
    assert GPS_IFD not in exif and exif.get_ifd(GPS_IFD) == {}
    assert (exif[MAKE], exif[MODEL]) == ("FLD Camera", "X100")
    assert scan_data(stripped) == scan_data(source)
    assert np.array_equal(decoded(stripped), decoded(source))


def test_xmp_and_iptc_segments_are_dropped() -> None:
    source = with_iptc(jpeg_with_gps(xmp=XMP))
    assert b"Berlin" in source and b"Photoshop 3.0" in source
    stripped = without_location(source)
    assert b"Berlin" not in stripped and b"Photoshop 3.0" not in stripped
    assert np.array_equal(decoded(stripped), decoded(source))


def test_png_exif_loses_its_gps_and_xmp_chunks_are_dropped() -> None:
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    Image.fromarray(pixels(1)).save(buffer, "PNG", exif=camera_exif(), pnginfo=info)
    stripped = without_location(buffer.getvalue())
    image = Image.open(io.BytesIO(stripped))
    assert image.getexif()[MAKE] == "FLD Camera" and image.getexif().get_ifd(GPS_IFD) == {}
    assert b"Berlin" not in stripped and np.array_equal(np.asarray(image), pixels(1))


def test_a_file_without_location_metadata_is_unchanged() -> None:
    buffer = io.BytesIO()
    Image.fromarray(pixels()).save(buffer, "JPEG")
    assert without_location(buffer.getvalue()) == buffer.getvalue()


def test_a_jpeg_whose_segments_cannot_be_followed_is_not_copied_blind() -> None:
    source = jpeg_with_gps()
    assert without_location(source[:40]) is None  # cut inside a segment


@pytest.fixture(scope="module")
def gps_dataset(tmp_path_factory):
    """A published version of one JPEG with GPS, XMP and IPTC, with a box and a caption."""
    base = tmp_path_factory.mktemp("gps")
    path = base / "images" / "holiday.jpg"
    path.parent.mkdir()
    path.write_bytes(with_iptc(jpeg_with_gps(xmp=XMP)))
    record = ImageRecord(hashlib.sha256(path.read_bytes()).hexdigest(), str(path), width=64, height=48, format="jpeg")
    record.regions = [Region("object", (4, 4, 30, 30), "car", DETR, score=0.9)]
    record.texts = [Text("brief", "A car.", CAPTIONER, score=0.9)]
    publish_records(base / "dataset", [record], quarantined=0)
    return base / "dataset", path


def exported_images(fmt: str, destination: Path) -> list[bytes]:
    if fmt == "hf":
        return [
            row["bytes"]
            for p in (destination / "data").glob("*.parquet")
            for row in pq.read_table(p)["image"].to_pylist()
        ]
    return [p.read_bytes() for p in destination.rglob("*.jpg")]


@pytest.mark.parametrize("fmt", ["coco", "yolo", "florence", "hf"])
def test_every_export_format_strips_location_by_default(gps_dataset, fmt, tmp_path, capsys) -> None:
    root, source = gps_dataset
    assert cli(["export", str(root), "--format", fmt, "--to", str(tmp_path / fmt), "--val-fraction", "0"]) == 0
    images = exported_images(fmt, tmp_path / fmt)
    assert len(images) == 1
    image = images[0]
    assert Image.open(io.BytesIO(image)).getexif().get_ifd(GPS_IFD) == {} and b"Berlin" not in image
    assert Image.open(io.BytesIO(image)).getexif()[MAKE] == "FLD Camera"
    assert np.array_equal(decoded(image), decoded(source.read_bytes()))


def test_keep_exif_copies_the_source_file_byte_for_byte(gps_dataset, tmp_path, capsys) -> None:
    root, source = gps_dataset
    destination = tmp_path / "coco"
    assert cli(["export", str(root), "--format", "coco", "--to", str(destination), "--keep-exif"]) == 0
    files = [json.loads((destination / f"instances_{s}.json").read_text())["images"] for s in ("train", "val")]
    (image,) = [i for split in files for i in split]
    assert (destination / image["file_name"]).read_bytes() == source.read_bytes()

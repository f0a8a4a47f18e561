"""Ingestion: every input ends annotated or quarantined with its reason; decoding is safe and normalised."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.ingest.decode import BadImage, decode_image
from engine.ingest.discover import InputError, discover
from engine.ingest.probe import plan_work, probe_file
from tests.support.image_files import jpeg_bytes, png_header_only, write_ingestion_zoo

MAX_PIXELS = 89_478_485
EXTENSIONS = (".jpg", ".png")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return folder, write_ingestion_zoo(folder)


def probe_zoo(folder):
    files = discover([str(folder)], EXTENSIONS)
    return files, [probe_file(f, MAX_PIXELS, 1 << 30) for f in files]


def test_every_input_is_annotated_or_quarantined_with_the_expected_reason(zoo) -> None:
    folder, expected = zoo
    files, probed = probe_zoo(folder)
    work, quarantined = plan_work(probed)
    assert len(files) == len(expected) == 10
    reasons = {p.source_uri.rsplit("/", 1)[1]: p.reason for p in quarantined}
    assert reasons == {name: reason for name, reason in expected.items() if reason}
    annotated_paths = {uri.rsplit("/", 1)[1] for item in work for uri in item.source_uris}
    assert annotated_paths | set(reasons) == set(expected)
    assert annotated_paths.isdisjoint(reasons)


def test_duplicate_bytes_are_annotated_once_with_both_paths(zoo) -> None:
    folder, _ = zoo
    work, _ = plan_work(probe_zoo(folder)[1])
    duplicated = [item for item in work if len(item.source_uris) > 1]
    assert len(duplicated) == 1
    assert [u.rsplit("/", 1)[1] for u in duplicated[0].source_uris] == ["good.jpg", "good_duplicate.jpg"]
    assert duplicated[0].source_uri.endswith("good.jpg")
    assert len(work) == 5


def test_decompression_bomb_is_rejected_from_its_header() -> None:
    with pytest.raises(BadImage) as caught:
        decode_image(png_header_only(30000, 30000), MAX_PIXELS)
    assert caught.value.reason == "too_large" and "30000x30000" in caught.value.detail


def test_exif_orientation_is_applied(zoo) -> None:
    folder, _ = zoo
    pixels, fmt = decode_image((folder / "exif_rotated.jpg").read_bytes(), MAX_PIXELS)
    assert pixels.shape == (50, 30, 3) and fmt == "jpeg"


def test_cmyk_16bit_and_transparent_palette_become_8bit_rgb(zoo) -> None:
    folder, _ = zoo
    cmyk, _ = decode_image((folder / "cmyk.jpg").read_bytes(), MAX_PIXELS)
    assert cmyk.dtype == np.uint8 and cmyk.shape == (30, 40, 3)
    assert cmyk[0, 0, 0] < 40 and cmyk[0, 0, 1] > 200  # cyan
    gray16, _ = decode_image((folder / "gray16.png").read_bytes(), MAX_PIXELS)
    assert gray16.shape == (20, 32, 3) and gray16.dtype == np.uint8
    assert gray16[0, 0, 0] == 0 and gray16[-1, -1, 0] == round(639 * 100 / 65535 * 255)
    palette, _ = decode_image((folder / "palette_transparent.png").read_bytes(), MAX_PIXELS)
    assert palette[0, 0].tolist() == [0, 0, 255]  # opaque blue half
    assert palette[0, -1].tolist() == [255, 255, 255]  # transparent red index composited on white


def test_image_id_is_the_sha256_of_the_bytes(tmp_path) -> None:
    import hashlib

    data = jpeg_bytes(seed=5)
    (tmp_path / "x.jpg").write_bytes(data)
    assert probe_file(str(tmp_path / "x.jpg"), MAX_PIXELS, 1 << 30).image_id == hashlib.sha256(data).hexdigest()


def test_unreadable_and_oversized_files_are_quarantined(tmp_path) -> None:
    missing = probe_file(str(tmp_path / "gone.jpg"), MAX_PIXELS, 1 << 30)
    assert missing.reason == "unreadable"
    (tmp_path / "big.jpg").write_bytes(jpeg_bytes())
    assert probe_file(str(tmp_path / "big.jpg"), MAX_PIXELS, 100).reason == "too_large"


def test_discover_reads_folders_path_lists_and_parquet_tables(tmp_path) -> None:
    (tmp_path / "imgs" / "nested").mkdir(parents=True)
    for name in ("a.jpg", "nested/b.png", "notes.txt"):
        (tmp_path / "imgs" / name).write_bytes(jpeg_bytes())
    (tmp_path / "list.txt").write_text("imgs/a.jpg\n# a comment\n\nimgs/notes.txt\n")
    pq.write_table(pa.table({"path": [str(tmp_path / "imgs/nested/b.png")]}), tmp_path / "paths.parquet")
    folder = discover([str(tmp_path / "imgs")], EXTENSIONS)
    assert [f.rsplit("imgs/", 1)[1] for f in folder] == ["a.jpg", "nested/b.png"]
    listed = discover([str(tmp_path / "list.txt")], EXTENSIONS)
    assert [f.rsplit("/", 1)[1] for f in listed] == ["a.jpg", "notes.txt"]
    assert discover([str(tmp_path / "paths.parquet")], EXTENSIONS) == [str(tmp_path / "imgs/nested/b.png")]


def test_discover_names_a_missing_input_and_a_table_without_a_path_column(tmp_path) -> None:
    with pytest.raises(InputError, match="input /nonexistent/x: no such file or folder"):
        discover(["/nonexistent/x"], EXTENSIONS)
    pq.write_table(pa.table({"uri": ["a"]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match="no 'path' column"):
        discover([str(tmp_path / "t.parquet")], EXTENSIONS)


def test_non_images_stay_quarantined_after_ultralytics_patches_image_open() -> None:
    import ultralytics.utils.patches  # noqa: F401 - patches PIL.Image.open with a HEIF fallback

    with pytest.raises(BadImage) as caught:
        decode_image(b"this is not an image\n" * 10, MAX_PIXELS)
    assert caught.value.reason == "not_an_image"

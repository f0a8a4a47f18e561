"""Probing measures each decoded image once; the measures travel in the probe index and the work items."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from engine.ingest.probe import PROBE_INDEX_SCHEMA, plan_work, probe_batch, probe_bytes, probed_from_row
from engine.ingest.sources import Source, SourceKind, sources_table
from filters.curation.measures import measure_image


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_decoded_image_is_measured_and_a_bad_one_is_not() -> None:
    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, 45:] = 255
    probed = probe_bytes("/x/half.png", _png(pixels), max_pixels=10**6)
    assert probed.measures == measure_image(pixels)
    assert (probed.measures.width, probed.measures.height, probed.measures.aspect_ratio) == (90, 30, 3.0)
    assert probe_bytes("/x/bad.png", b"not an image", max_pixels=10**6).measures is None


def test_measures_round_trip_through_the_probe_index_into_work_items(tmp_path) -> None:
    rng = np.random.default_rng(3)
    (tmp_path / "a.png").write_bytes(_png(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)))
    source = Source(SourceKind.FILE, str(tmp_path / "a.png"))
    index = probe_batch(sources_table([source]), max_pixels=10**6, max_bytes=10**7)
    assert index.schema.equals(PROBE_INDEX_SCHEMA) and index.num_rows == 1
    row = index.to_pylist()[0]
    assert (row["measures"]["width"], row["measures"]["height"]) == (50, 40)
    stored = pa.Table.from_pylist([row], schema=PROBE_INDEX_SCHEMA).to_pylist()[0]
    work, quarantined = plan_work([probed_from_row(stored)])
    assert quarantined == [] and work[0].measures == probed_from_row(row).measures
    assert work[0].measures.phash == row["measures"]["phash"]


def test_measures_as_a_dict_hold_every_field_in_order_and_read_back_equal() -> None:
    from dataclasses import asdict

    measures = measure_image(np.full((20, 30, 3), 7, np.uint8))
    assert list(measures.to_dict().items()) == list(asdict(measures).items())
    assert type(measures).from_dict(measures.to_dict()) == measures

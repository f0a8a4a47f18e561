"""Image-level measures: perceptual hashes as imagehash computes them, and pixel statistics."""

from __future__ import annotations

import cv2
import imagehash
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from skimage import data

from filters.curation.measures import (
    MEASURE_SIDE,
    dhash,
    hash_to_int,
    measure_image,
    phash,
    single_colour_fraction,
)
from schemas.arrow import IMAGE_MEASURES
from schemas.records import ImageMeasures


def test_hashes_are_imagehash_phash_and_dhash_as_integers() -> None:
    pixels = data.chelsea()
    measures = measure_image(pixels)
    image = Image.fromarray(pixels)
    assert f"{measures.phash:016x}" == str(imagehash.phash(image))
    assert f"{measures.dhash:016x}" == str(imagehash.dhash(image))


def test_phash_and_dhash_are_imagehash_bit_for_bit_on_grey_images_of_any_size_and_flat_ones() -> None:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (h, w), np.uint8) for h, w in rng.integers(1, 300, (60, 2))]
    images += [np.full((40, 50), value, np.uint8) for value in (0, 1, 128, 255)]  # all-equal DCT coefficients
    images += [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), np.tile(np.arange(64, dtype=np.uint8), (9, 1))]
    for pixels in images:
        grey = Image.fromarray(pixels)
        assert phash(grey) == hash_to_int(imagehash.phash(grey).hash), pixels.shape
        assert dhash(grey) == hash_to_int(imagehash.dhash(grey).hash), pixels.shape


def test_hash_bits_are_read_first_bit_most_significant() -> None:
    bits = np.zeros((8, 8), dtype=bool)
    bits[0, 0] = bits[7, 7] = True
    assert hash_to_int(bits) == (1 << 63) | 1


def test_a_flat_image_is_one_colour_without_edges_or_contrast() -> None:
    measures = measure_image(np.full((40, 60, 3), 200, dtype=np.uint8))
    assert (measures.width, measures.height, measures.aspect_ratio) == (60, 40, 1.5)
    assert measures.single_colour_fraction == 1.0
    assert measures.sharpness == 0.0 and measures.contrast == 0.0
    assert measures.brightness == pytest.approx(200.0)


def test_aspect_ratio_is_long_side_over_short_side_in_either_orientation() -> None:
    assert measure_image(np.zeros((300, 100, 3), dtype=np.uint8)).aspect_ratio == 3.0
    assert measure_image(np.zeros((100, 300, 3), dtype=np.uint8)).aspect_ratio == 3.0


def test_blurring_lowers_sharpness() -> None:
    pixels = data.astronaut()
    blurred = cv2.GaussianBlur(pixels, (0, 0), 3)
    assert measure_image(blurred).sharpness < measure_image(pixels).sharpness / 10


def test_sharpness_is_measured_on_the_image_scaled_to_the_measure_side() -> None:
    pixels = data.astronaut()  # 512 x 512, the measure side
    assert max(pixels.shape[:2]) == MEASURE_SIDE
    four_times = cv2.resize(pixels, (4 * 512, 4 * 512), interpolation=cv2.INTER_NEAREST)
    assert measure_image(four_times).sharpness == pytest.approx(measure_image(pixels).sharpness, rel=0.05)


def test_single_colour_fraction_counts_quantised_colours() -> None:
    pixels = np.zeros((10, 10, 3), dtype=np.uint8)
    pixels[:, :7] = (250, 250, 250)
    pixels[:, 7:] = (10, 200, 30)
    pixels[0, 0] = (240, 245, 255)  # the same colour at 3 bits per channel
    assert single_colour_fraction(pixels) == pytest.approx(0.7)


def test_measures_round_trip_through_their_arrow_struct() -> None:
    measures = measure_image(data.coffee())
    table = pa.table({"measures": pa.array([measures.to_dict()], type=IMAGE_MEASURES)})
    back = ImageMeasures.from_dict(table.column("measures").to_pylist()[0])
    assert (back.phash, back.dhash, back.width, back.height) == (
        measures.phash,
        measures.dhash,
        measures.width,
        measures.height,
    )
    assert back.sharpness == pytest.approx(measures.sharpness, rel=1e-6)


def test_a_hash_with_the_top_bit_set_fits_the_arrow_struct() -> None:
    row = ImageMeasures(10, 10, 1.0, 2**64 - 1, 2**63, 0.0, 0.0, 0.0, 1.0).to_dict()
    assert pa.array([row], type=IMAGE_MEASURES).to_pylist()[0]["phash"] == 2**64 - 1


def test_only_rgb_uint8_arrays_are_measured() -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        measure_image(np.zeros((10, 10), dtype=np.uint8))

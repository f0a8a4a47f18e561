"""Image-level measures, computed once where the pixels are decoded (at probe time).

Perceptual hashes are ``imagehash``'s, bit for bit (pHash: the sign of the 8x8 low-frequency DCT of a
32x32 grey image against its median; dHash: whether each of 8x8 grey pixels is brighter than its
left neighbour), made here with the same resizes and DCT but without its per-call overhead. Sharpness,
brightness, contrast and the single-colour fraction come from the grey
(and colour) image scaled down to at most :data:`MEASURE_SIDE` pixels, so every image costs about
the same and sharpness does not grow with resolution. Everything is a pure function of the pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fftpack
from PIL import Image

from schemas.records import ImageMeasures

# Longest side analysed. 512 keeps the Laplacian meaningful (edges of a 4k photo and of its web copy
# look alike at 512) and bounds the cost: one area-resize of the decoded image, then small arrays.
MEASURE_SIDE = 512
# Bits kept per RGB channel when counting colours: 8 levels per channel, 512 colours. Coarse enough that
# JPEG noise on a flat background stays in one colour, fine enough that a photograph spreads out.
COLOUR_BITS = 3
COLOUR_SAMPLE_SIDE = 128
# Bumped whenever a measure's definition changes, so cached measures of an older definition are not reused.
MEASURES_VERSION = 1
# imagehash's defaults: 8x8 hash bits; pHash takes them from the DCT of a 32x32 resize (hash_size * highfreq_factor).
HASH_SIDE = 8
PHASH_SIDE = 32


def measure_image(pixels: np.ndarray) -> ImageMeasures:
    """All measures of one decoded (H, W, 3) uint8 RGB image."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {pixels.shape} {pixels.dtype}")
    height, width = pixels.shape[:2]
    small = downscaled(pixels, MEASURE_SIDE)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    grey_image = Image.fromarray(grey)
    mean, std = cv2.meanStdDev(grey)
    return ImageMeasures(
        width=width,
        height=height,
        aspect_ratio=max(width, height) / max(1, min(width, height)),
        phash=phash(grey_image),
        dhash=dhash(grey_image),
        sharpness=laplacian_variance(grey),
        brightness=float(mean[0, 0]),
        contrast=float(std[0, 0]),
        single_colour_fraction=single_colour_fraction(small),
    )


def phash(grey: Image.Image) -> int:
    """``imagehash.phash`` of a grey (mode L) image as an integer, bit for bit: the 8x8 low frequencies of the
    DCT of its 32x32 Lanczos resize against their median. The same calls as imagehash, without its copy of
    the image, its hash object and ``np.median``'s generality (the median of 64 values is the mean of the two
    middle ones either way): about half the time, the largest part of probing an image after decoding it."""
    pixels = np.asarray(grey.resize((PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS))
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:HASH_SIDE, :HASH_SIDE]
    ordered = np.sort(dct, axis=None)
    middle = ordered.size // 2
    return hash_to_int(dct > (ordered[middle - 1] + ordered[middle]) / 2)


def dhash(grey: Image.Image) -> int:
    """``imagehash.dhash`` of a grey (mode L) image as an integer, bit for bit: whether each pixel of its 9x8
    Lanczos resize is brighter than its left neighbour."""
    pixels = np.asarray(grey.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS))
    return hash_to_int(pixels[:, 1:] > pixels[:, :-1])


def downscaled(pixels: np.ndarray, side: int) -> np.ndarray:
    """``pixels`` with its longest side at most ``side`` (area averaging; smaller images unchanged)."""
    height, width = pixels.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a grey uint8 image: low when edges are soft (blur, flat images)."""
    # 16-bit signed holds every value of the 3x3 Laplacian of 8-bit input (|v| <= 4 * 255), at a
    # fraction of the cost of float64.
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))
    return float(std[0, 0]) ** 2


def hash_to_int(bits: np.ndarray) -> int:
    """A boolean hash array as an unsigned integer, first bit most significant (as imagehash's hex)."""
    return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big")


def single_colour_fraction(pixels: np.ndarray, bits: int = COLOUR_BITS) -> float:
    """The share of pixels in the most common colour, each channel quantised to ``bits`` bits.

    Counted on at most :data:`COLOUR_SAMPLE_SIDE` x :data:`COLOUR_SAMPLE_SIDE` evenly strided pixels:
    a share needs no more, and striding keeps real colours (an area resize would blend edges).
    """
    step = max(1, -(-max(pixels.shape[:2]) // COLOUR_SAMPLE_SIDE))
    shift = 8 - bits
    quantised = pixels[::step, ::step].reshape(-1, 3) >> shift
    codes = (quantised[:, 0].astype(np.int32) << (2 * bits)) | (quantised[:, 1].astype(np.int32) << bits)
    codes |= quantised[:, 2]
    counts = np.bincount(codes, minlength=1 << (3 * bits))
    return float(counts.max() / codes.size)

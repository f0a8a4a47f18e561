"""A generated set of images with known near-duplicate groups, for choosing and checking dedup thresholds.

Each group is one base image and its transformed copies, as web corpora hold them (:data:`TRANSFORMS`:
resized, JPEG-recompressed, both, cropped a few percent, a small watermark, one pixel changed). Bases
are different images of three kinds, with hard negatives on purpose:

- ``photo``: windows of scikit-image's photographs (the whole photo, its quadrants, its 3x3 tiles):
  tiles of one texture photograph (grass, gravel, brick) are different images that look alike;
- ``scene``: procedural scenes (a sky gradient, shapes, noise), as ``bench/images.py`` makes them;
- ``text``: rendered text on a light background, which perceptual hashes find hard to tell apart.

Every base is scaled to a longest side of 384-768 pixels. Sample *k* of a seed is always the same
pixels; nothing is written to disk (the pixels are measured and dropped by the caller).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.images import scene_image, text_image

PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
    "cell",
    "stereo_motorcycle",
)
# Windows of a photograph as (top, left, height, width) fractions: whole, quadrants, 3x3 tiles.
WINDOWS = (
    (0.0, 0.0, 1.0, 1.0),
    *((r / 2, c / 2, 0.5, 0.5) for r in range(2) for c in range(2)),
    *((r / 3, c / 3, 1 / 3, 1 / 3) for r in range(3) for c in range(3)),
)
KINDS = ("photo", "scene", "text")


@dataclass(frozen=True)
class Sample:
    """One generated image: its group (the base it was made from), the base's kind and the transform."""

    group: int
    kind: str
    transform: str
    pixels: np.ndarray


def _photo(index: int) -> np.ndarray:
    from skimage import data

    name = PHOTOS[index % len(PHOTOS)]
    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    pixels = pixels[:, :, :3]
    top, left, height, width = WINDOWS[(index // len(PHOTOS)) % len(WINDOWS)]
    rows, cols = pixels.shape[:2]
    window = pixels[int(top * rows) : int((top + height) * rows), int(left * cols) : int((left + width) * cols)]
    return np.ascontiguousarray(window)


def base_image(kind: str, index: int, rng: np.random.Generator) -> np.ndarray:
    """Base ``index`` of ``kind`` as (H, W, 3) uint8, its longest side 384-768 pixels."""
    if kind == "photo":
        pixels = _photo(index)
    elif kind == "scene":
        pixels = np.asarray(scene_image(rng).convert("RGB"))
    elif kind == "text":
        pixels = np.asarray(text_image(rng).convert("RGB"))
    else:
        raise ValueError(f"unknown base kind {kind!r} (known: {', '.join(KINDS)})")
    return _scaled(pixels, rng.uniform(384, 768) / max(pixels.shape[:2]))


def _scaled(pixels: np.ndarray, scale: float) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(pixels, size, interpolation=interpolation)


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def resize(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scaled to 40-80 % (a thumbnail or a smaller web copy)."""
    return _scaled(pixels, rng.uniform(0.4, 0.8))


def recompress(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saved again as JPEG at quality 50-80."""
    return _jpeg(pixels, int(rng.integers(50, 81)))


def resize_recompress(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scaled to 50-90 %, then JPEG at quality 60-85: the usual web copy."""
    return _jpeg(_scaled(pixels, rng.uniform(0.5, 0.9)), int(rng.integers(60, 86)))


def crop(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """2-6 % of each axis cut away, split at random between its two sides."""
    height, width = pixels.shape[:2]
    cut_y, cut_x = round(height * rng.uniform(0.02, 0.06)), round(width * rng.uniform(0.02, 0.06))
    top, left = int(rng.integers(0, cut_y + 1)), int(rng.integers(0, cut_x + 1))
    return np.ascontiguousarray(pixels[top : height - (cut_y - top), left : width - (cut_x - left)])


def watermark(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small half-transparent text mark in a corner (about 5 % of the height, a quarter of the width)."""
    image = Image.fromarray(pixels).convert("RGBA")
    height, width = pixels.shape[:2]
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(8, round(height * rng.uniform(0.04, 0.06))))
    label = str(rng.choice(["© stock", "© photos.example", "sample", "preview", "@fld"]))
    box = draw.textbbox((0, 0), label, font=font)
    margin = round(0.02 * width)
    x = margin if rng.random() < 0.5 else width - margin - (box[2] - box[0])
    y = margin if rng.random() < 0.5 else height - margin - (box[3] - box[1])
    ink = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
    draw.text((x, y), label, font=font, fill=(*ink, int(rng.integers(120, 200))))
    return np.asarray(Image.alpha_composite(image, layer).convert("RGB"))


def one_pixel(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One pixel set to a random colour (new bytes, the same picture)."""
    copy = pixels.copy()
    copy[int(rng.integers(copy.shape[0])), int(rng.integers(copy.shape[1]))] = rng.integers(0, 256, 3)
    return copy


TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "resize": resize,
    "jpeg": recompress,
    "resize_jpeg": resize_recompress,
    "crop": crop,
    "watermark": watermark,
    "one_pixel": one_pixel,
}


def base_kinds(bases: int, shares: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> list[str]:
    """The kind of each base: half photographs, 30 % scenes, 20 % text by default, interleaved."""
    counts = [round(bases * share) for share in shares]
    counts[0] += bases - sum(counts)
    kinds = [kind for kind, count in zip(KINDS, counts, strict=True) for _ in range(count)]
    order = np.argsort([i / count for count in counts for i in range(count)], kind="stable")
    return [kinds[i] for i in order]


def near_duplicate_set(bases: int, seed: int = 0) -> Iterator[Sample]:
    """``bases`` groups of ``1 + len(TRANSFORMS)`` images: each base, then each of its copies."""
    per_kind = dict.fromkeys(KINDS, 0)
    for group, kind in enumerate(base_kinds(bases)):
        rng = np.random.default_rng([seed, group])
        base = base_image(kind, per_kind[kind], rng)
        per_kind[kind] += 1
        yield Sample(group, kind, "original", base)
        for name, transform in TRANSFORMS.items():
            yield Sample(group, kind, name, transform(base, rng))

"""Varied benchmark images, generated offline and cached under ``.state/bench/images``.

A third rendered text (documents, signs: work for OCR), a third crops of scikit-image's
photographs (faces, animals, objects), a third procedural scenes (sky gradient, shapes, noise).
Image ``i`` is always the same bytes, so runs of different sizes share their first images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CACHE = Path(__file__).resolve().parents[1] / ".state" / "bench" / "images-v1"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel")
WORDS = (
    "invoice",
    "total",
    "due",
    "order",
    "city",
    "library",
    "open",
    "monday",
    "friday",
    "quick",
    "brown",
    "fox",
    "jumps",
    "lazy",
    "dog",
    "station",
    "platform",
    "exit",
    "parking",
    "coffee",
    "menu",
    "price",
    "special",
    "today",
    "closed",
    "sale",
    "market",
    "street",
    "north",
    "south",
    "museum",
    "entrance",
    "tickets",
    "adult",
    "child",
    "welcome",
    "hotel",
    "room",
    "breakfast",
    "served",
    "from",
    "until",
    "please",
)


def text_image(rng: np.random.Generator) -> Image.Image:
    width, lines = int(rng.integers(480, 720)), int(rng.integers(2, 6))
    size = int(rng.integers(22, 40))
    background = tuple(int(v) for v in rng.integers(200, 256, 3))
    image = Image.new("RGB", (width, 40 + lines * int(size * 1.7)), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    for i in range(lines):
        words = " ".join(rng.choice(WORDS, int(rng.integers(2, 5))))
        text = words.upper() if rng.random() < 0.3 else words.capitalize()
        ink = tuple(int(v) for v in rng.integers(0, 70, 3))
        draw.text((int(rng.integers(10, 40)), 20 + i * int(size * 1.7)), text, fill=ink, font=font)
    return image


def photo_image(rng: np.random.Generator) -> Image.Image:
    from skimage import data

    pixels = getattr(data, PHOTOS[int(rng.integers(len(PHOTOS)))])()[:, :, :3]
    height, width = pixels.shape[:2]
    crop_h, crop_w = int(height * rng.uniform(0.6, 1.0)), int(width * rng.uniform(0.6, 1.0))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    crop = pixels[top : top + crop_h, left : left + crop_w].astype(np.float32)
    crop = np.clip(crop * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20, 3), 0, 255).astype(np.uint8)
    scale = rng.uniform(400, 640) / max(crop.shape[:2])
    image = Image.fromarray(crop)
    return image.resize((max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))


def scene_image(rng: np.random.Generator) -> Image.Image:
    width, height = int(rng.integers(400, 640)), int(rng.integers(300, 480))
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        x1, y1 = x0 + int(rng.integers(20, width // 2)), y0 + int(rng.integers(20, height // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


MAKERS: tuple[tuple[Callable[[np.random.Generator], Image.Image], str], ...] = (
    (text_image, "png"),
    (photo_image, "jpg"),
    (scene_image, "jpg"),
)


def image_path(index: int, cache: Path = CACHE) -> Path:
    return cache / f"bench-{index:05d}.{MAKERS[index % len(MAKERS)][1]}"


def bench_images(count: int, cache: Path = CACHE) -> list[Path]:
    """Paths of the first ``count`` benchmark images, generating the ones not cached yet."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = image_path(index, cache)
        if not path.is_file():
            make, fmt = MAKERS[index % len(MAKERS)]
            image = make(np.random.default_rng(index))
            partial = path.with_suffix(".partial")
            image.save(partial, format="PNG" if fmt == "png" else "JPEG", quality=88)
            partial.replace(path)
        paths.append(path)
    return paths

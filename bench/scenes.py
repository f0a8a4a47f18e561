"""Procedural scenes with exact ground truth: coloured shapes of five classes on textured backgrounds.

Scene ``i`` (with a given ``size`` and ``seed``) is always the same pixels. Each object's box is the
bounding box of the pixels drawn for it (``x0, y0, x1, y1`` in pixel-edge coordinates, so a shape
covering columns 10..19 has ``x0 = 10, x1 = 20``); objects never overlap, so every box is fully
visible. A ``sign`` is a light plate with one word printed on it: its text and the box of the
printed ink are exact OCR truth. The caption names every object, in the words a captioner would use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CLASSES = ("square", "circle", "triangle", "diamond", "sign")
COLOURS = {
    "square": ("red", (215, 45, 40)),
    "circle": ("green", (45, 190, 70)),
    "triangle": ("blue", (50, 85, 225)),
    "diamond": ("yellow", (235, 200, 40)),
    "sign": ("white", (240, 240, 235)),
}
SIGN_WORDS = ("OPEN", "EXIT", "SALE", "CAFE", "STOP", "HOTEL", "MENU", "TAXI", "BAR", "SHOP", "PARK", "BANK")
BACKGROUNDS = {"grey": (128, 128, 128), "brown": (140, 110, 85), "teal": (85, 125, 125), "purple": (120, 95, 130)}
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class SceneObject:
    label: str
    box: Box


@dataclass(frozen=True)
class SceneText:
    text: str
    box: Box


@dataclass(frozen=True)
class Scene:
    index: int
    pixels: np.ndarray  # (size, size, 3) uint8
    objects: tuple[SceneObject, ...]
    texts: tuple[SceneText, ...]
    caption: str


def _texture(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    """A muted background: a base colour, a blotchy low-frequency pattern and fine grain."""
    name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    coarse = rng.normal(0, 18, (size // 16 + 1, size // 16 + 1, 1))
    blotches = np.kron(coarse, np.ones((16, 16, 1)))[:size, :size]
    grain = rng.normal(0, 7, (size, size, 3))
    pixels = np.array(BACKGROUNDS[name], dtype=np.float64) + blotches + grain
    return np.clip(pixels, 0, 255).astype(np.uint8), name


def _shape_mask(label: str, box: tuple[int, int, int, int], size: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    x0, y0, x1, y1 = box
    if label in ("square", "sign"):
        draw.rectangle((x0, y0, x1, y1), fill=255)
    elif label == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=255)
    elif label == "triangle":
        draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=255)
    else:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=255)
    return mask


def mask_box(mask: np.ndarray) -> Box | None:
    """The pixel-edge bounding box of a boolean mask, or None when it is empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def _overlaps(box: tuple[int, int, int, int], others: list[Box], margin: int) -> bool:
    return any(
        box[0] < o[2] + margin and o[0] < box[2] + margin and box[1] < o[3] + margin and o[1] < box[3] + margin
        for o in others
    )


def _caption(objects: list[SceneObject], texts: list[SceneText], background: str) -> str:
    names = []
    for obj in objects:
        colour = COLOURS[obj.label][0]
        if obj.label == "sign":
            word = texts[0].text if texts else ""
            names.append(f'a white sign that says "{word}"')
        else:
            names.append(f"a {colour} {obj.label}")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed[0].upper()}{listed[1:]} on a {background} textured background."


def render_scene(index: int, size: int = 128, seed: int = 0, sign_every: int = 3) -> Scene:
    """Scene ``index``: 1-4 objects (a sign with a word on every ``sign_every``-th scene), exact boxes."""
    rng = np.random.default_rng([seed, index])
    pixels, background = _texture(rng, size)
    image = Image.fromarray(pixels)
    labels = [CLASSES[int(rng.integers(len(CLASSES) - 1))] for _ in range(int(rng.integers(1, 4)))]
    if sign_every and index % sign_every == 0:
        labels.insert(int(rng.integers(len(labels) + 1)), "sign")
    objects: list[SceneObject] = []
    texts: list[SceneText] = []
    for label in labels:
        for _attempt in range(30):
            width = int(rng.uniform(0.18, 0.4) * size)
            height = int(width * (rng.uniform(0.45, 0.6) if label == "sign" else rng.uniform(0.8, 1.25)))
            x0, y0 = int(rng.integers(0, size - width)), int(rng.integers(0, size - height))
            box = (x0, y0, x0 + width - 1, y0 + height - 1)
            if not _overlaps(box, [o.box for o in objects], margin=3):
                break
        else:
            continue
        mask = np.asarray(_shape_mask(label, box, size)) > 0
        shade = np.clip(np.array(COLOURS[label][1]) + rng.integers(-20, 21, 3), 0, 255).astype(np.uint8)
        image.paste(tuple(int(v) for v in shade), mask=Image.fromarray(mask.astype(np.uint8) * 255))
        exact = mask_box(mask)
        assert exact is not None
        objects.append(SceneObject(label, exact))
        if label == "sign":
            texts.append(_print_word(image, box, SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))], size))
    return Scene(index, np.asarray(image), tuple(objects), tuple(texts), _caption(objects, texts, background))


def _print_word(image: Image.Image, plate: tuple[int, int, int, int], word: str, size: int) -> SceneText:
    """Print ``word`` in black inside the plate, as large as fits; return it with the box of its ink."""
    x0, y0, x1, y1 = plate
    ink = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(ink)
    for font_size in range(max(6, y1 - y0), 5, -1):
        font = ImageFont.load_default(size=font_size)
        left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
        if right - left <= x1 - x0 - 4 and bottom - top <= y1 - y0 - 4:
            break
    origin = (x0 + (x1 - x0 - (right - left)) / 2 - left, y0 + (y1 - y0 - (bottom - top)) / 2 - top)
    draw.text(origin, word, fill=255, font=font)
    mask = np.asarray(ink) > 127
    image.paste((15, 15, 15), mask=Image.fromarray(mask.astype(np.uint8) * 255))
    box = mask_box(mask)
    assert box is not None
    return SceneText(word, box)

"""Pictures of sample images with their annotations: boxes with labels, OCR quads, masks, grounded phrases."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.exports.images import decoded_pixels, source_bytes
from engine.ingest.decode import BadImage
from schemas.masks import decode_mask
from schemas.records import ImageRecord, Region

MAX_SIDE = 640
MASK_ALPHA = 0.4
JPEG_QUALITY = 88
# Words sit inside their lines: their outlines are drawn, their labels would only hide the picture.
UNLABELLED_KINDS = ("ocr_word",)


# Distinct colours (matplotlib's tab10 and tab20b) handed out in order of first use.
REGION_COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
PHRASE_COLOURS = (
    (255, 221, 87), (126, 214, 223), (255, 154, 162), (181, 234, 142), (199, 178, 255),
    (255, 196, 128), (152, 200, 255), (240, 160, 230),
)  # fmt: skip


class Palette:
    """Colours for names, distinct until the palette runs out (then reused in turn)."""

    def __init__(self, colours: tuple[tuple[int, int, int], ...] = REGION_COLOURS) -> None:
        self.colours = colours
        self.assigned: dict[str, tuple[int, int, int]] = {}

    def __call__(self, name: str) -> tuple[int, int, int]:
        if name not in self.assigned:
            self.assigned[name] = self.colours[len(self.assigned) % len(self.colours)]
        return self.assigned[name]


def legend_key(region: Region) -> str:
    """Regions are coloured by source and kind (OCR lines and words of one engine differ)."""
    return f"{region.provenance.source} {region.kind}"


def readable_on(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``colour``."""
    red, green, blue = colour
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else (255, 255, 255)


def base_pixels(record: ImageRecord) -> tuple[np.ndarray, str]:
    """The decoded image, or a grey canvas of its size with the reason the image is unavailable."""
    data = source_bytes(record)
    if data is not None:
        try:
            return decoded_pixels(data), ""
        except BadImage as error:
            return np.full((record.height, record.width, 3), 128, np.uint8), f"image undecodable: {error.reason}"
    return np.full((record.height, record.width, 3), 128, np.uint8), "source image missing or changed"


def place_label(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont,
    label: str,
    x: float,
    y: float,
    taken: list[tuple[float, float, float, float]],
) -> tuple[float, float]:
    """Move a label down in 12 px steps until it overlaps no label already placed; remember its place."""
    y = max(0.0, y)
    for _ in range(20):
        box = draw.textbbox((x, y), label, font=font)
        if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
            break
        y += 12
    taken.append(draw.textbbox((x, y), label, font=font))
    return x, y


def draw_record(record: ImageRecord, regions: Palette, phrases: Palette) -> tuple[bytes, str]:
    """A JPEG of ``record``'s image with every kept annotation drawn; also a note when the image is missing.

    JPEG rather than PNG: photographs are ten times smaller, which keeps a report of many samples light.
    """
    pixels, note = base_pixels(record)
    image = Image.fromarray(pixels).convert("RGBA")
    overlay = np.zeros((record.height, record.width, 4), dtype=np.float32)
    for region in record.regions:
        if region.mask is not None and region.mask.size == (record.height, record.width):
            overlay[decode_mask(region.mask)] = (*regions(legend_key(region)), MASK_ALPHA * 255)
    for phrase in record.phrases:
        for grounded in phrase.regions:
            if grounded.mask is not None and grounded.mask.size == (record.height, record.width):
                overlay[decode_mask(grounded.mask)] = (*phrases(phrase.id), MASK_ALPHA * 255)
    image = Image.alpha_composite(image, Image.fromarray(overlay.astype(np.uint8), "RGBA"))
    scale = min(1.0, MAX_SIDE / max(record.width, record.height))
    if scale < 1.0:
        image = image.resize((max(1, round(record.width * scale)), max(1, round(record.height * scale))))
    else:  # small images are enlarged so labels stay readable
        scale = max(1.0, min(6.0, 480 / max(record.width, record.height)))
        image = image.resize((round(record.width * scale), round(record.height * scale)), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    taken: list[tuple[float, float, float, float]] = []
    for region in record.regions:
        colour = regions(legend_key(region))
        if region.quad is not None:
            draw.polygon([v * scale for v in region.quad], outline=colour, width=2)
        elif region.polygon is not None:
            draw.polygon([v * scale for v in region.polygon], outline=colour, width=2)
        else:
            draw.rectangle([v * scale for v in region.bbox], outline=colour, width=2)
        if region.kind in UNLABELLED_KINDS:
            continue
        score = "" if region.score is None else f" {region.score:.2f}"
        label = f"{region.text or region.kind}{score}"
        x, y = place_label(draw, font, label, region.bbox[0] * scale, region.bbox[1] * scale - 12, taken)
        draw.rectangle(draw.textbbox((x, y), label, font=font), fill=colour)
        draw.text((x, y), label, fill=readable_on(colour), font=font)
    for phrase in record.phrases:
        for grounded in phrase.regions:
            draw.rectangle([v * scale for v in grounded.bbox], outline=phrases(phrase.id), width=3)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), note

"""Pictures of sample images with their annotations: boxes with labels, OCR quads, masks, grounded phrases."""

from __future__ import annotations

import colorsys
import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.exports.images import decoded_pixels, source_bytes
from engine.ingest import BadImage
from schemas.masks import decode_mask
from schemas.records import ImageRecord, Phrase

MAX_SIDE = 640
MASK_ALPHA = 0.4


def colour_of(name: str) -> tuple[int, int, int]:
    """A stable, saturated colour for a name (a source, a phrase)."""
    hue = int(hashlib.md5(name.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(red * 255), int(green * 255), int(blue * 255)


def readable_on(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``colour``."""
    red, green, blue = colour
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else (255, 255, 255)


def phrase_colour(phrase: Phrase) -> tuple[int, int, int]:
    return colour_of(f"phrase:{phrase.id}")


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


def draw_record(record: ImageRecord) -> tuple[bytes, str]:
    """A PNG of ``record``'s image with every kept annotation drawn; also a note when the image is missing."""
    pixels, note = base_pixels(record)
    image = Image.fromarray(pixels).convert("RGBA")
    overlay = np.zeros((record.height, record.width, 4), dtype=np.float32)
    for region in record.regions:
        if region.mask is not None and region.mask.size == (record.height, record.width):
            overlay[decode_mask(region.mask)] = (*colour_of(region.provenance.source), MASK_ALPHA * 255)
    for phrase in record.phrases:
        for grounded in phrase.regions:
            if grounded.mask is not None and grounded.mask.size == (record.height, record.width):
                overlay[decode_mask(grounded.mask)] = (*phrase_colour(phrase), MASK_ALPHA * 255)
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
        colour = colour_of(region.provenance.source)
        if region.quad is not None:
            draw.polygon([v * scale for v in region.quad], outline=colour, width=2)
        elif region.polygon is not None:
            draw.polygon([v * scale for v in region.polygon], outline=colour, width=2)
        else:
            draw.rectangle([v * scale for v in region.bbox], outline=colour, width=2)
        score = "" if region.score is None else f" {region.score:.2f}"
        label = f"{region.text or region.kind}{score}"
        x, y = place_label(draw, font, label, region.bbox[0] * scale, region.bbox[1] * scale - 12, taken)
        draw.rectangle(draw.textbbox((x, y), label, font=font), fill=colour)
        draw.text((x, y), label, fill=readable_on(colour), font=font)
    for phrase in record.phrases:
        for grounded in phrase.regions:
            draw.rectangle([v * scale for v in grounded.bbox], outline=phrase_colour(phrase), width=3)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG", optimize=True)
    return buffer.getvalue(), note

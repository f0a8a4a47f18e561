"""Regenerate the bundled sample images from installed packages (run once; results are committed).

Rendered text (for OCR), scikit-image's astronaut, cat and coffee photographs, and
ultralytics' bus.jpg: small, license-clean, and available offline. Two more show curation at work:
``coffee_web_copy.jpg``, the coffee photograph at two thirds of its size and recompressed (a
near-duplicate: skipped, ``duplicate_of`` the original), and ``spacer.png``, a 12 x 12 pixel spacer
(skipped by the ``min_side`` gate).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent / "images"

TEXTS = {
    "text_invoice.png": ["INVOICE 2024-117", "Total due: 348.50 EUR", "Thank you for your order"],
    "text_sign.png": ["CITY LIBRARY", "Open Monday to Friday", "9am - 6pm"],
    "text_poster.png": ["The quick brown fox", "jumps over the lazy dog"],
}


def render_text(lines: list[str], path: Path) -> None:
    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (800, 90 + 70 * len(lines)), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 70 * i), line, fill=(20, 20, 30), font=font)
    image.save(path)


def main() -> None:
    import ultralytics
    from skimage import data

    HERE.mkdir(parents=True, exist_ok=True)
    for name, lines in TEXTS.items():
        render_text(lines, HERE / name)
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(data, name)()).save(HERE / f"{name}.jpg", quality=88)
    shutil.copy(Path(ultralytics.__file__).parent / "assets" / "bus.jpg", HERE / "bus.jpg")
    coffee = Image.fromarray(data.coffee())
    coffee.resize((coffee.width * 2 // 3, coffee.height * 2 // 3), Image.LANCZOS).save(
        HERE / "coffee_web_copy.jpg", quality=70
    )
    Image.new("RGB", (12, 12), (255, 255, 255)).save(HERE / "spacer.png")


if __name__ == "__main__":
    main()

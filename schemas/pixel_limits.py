"""How large an image a stage will process: a cap checked before its model runs.

A model's memory grows with the pixels it is given, which need not be the pixels of the image: rapidocr
enlarges a thin 2x200 banner to 736x69184 before detection, and a worker that tries dies of out-of-memory.
Each backend declares its default :class:`PixelLimits` on what its model sees (``BaseStage.model_input_size``);
a profile overrides them per stage (``limits:``). An image over the cap gets a stage error saying its size,
and the other stages still run on it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

# The prefixes of the stage errors this module writes (the size follows).
TOO_LARGE = "image_too_large_for_stage"
TOO_THIN = "image_too_thin_for_stage"


@dataclass(frozen=True, slots=True)
class PixelLimits:
    """``max_pixels``: the most pixels the stage's model may be given (after the stage's own resizing).
    ``max_aspect_ratio``: the longest side over the shortest, for models that shrink a thin image to nothing.
    None: no limit."""

    max_pixels: int | None = None
    max_aspect_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.max_aspect_ratio is not None and self.max_aspect_ratio < 1:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")

    def overridden_by(self, other: PixelLimits | None) -> PixelLimits:
        """These limits with every value ``other`` sets (not None) taking precedence."""
        if other is None:
            return self
        given = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None}
        return replace(self, **given)


def refusal(limits: PixelLimits, size: tuple[int, int], model_size: tuple[int, int]) -> str | None:
    """Why an image of ``size`` (width, height), which the model would see as ``model_size``, is over
    ``limits``; None when it is within them."""
    width, height = size
    if limits.max_aspect_ratio is not None:
        ratio = max(width, height) / max(1, min(width, height))
        if ratio > limits.max_aspect_ratio:
            return (
                f"{TOO_THIN}: {width}x{height} (aspect ratio {ratio:g} > max_aspect_ratio {limits.max_aspect_ratio:g})"
            )
    pixels = model_size[0] * model_size[1]
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        scaled = "" if model_size == size else f" {_verb(size, model_size)} to {model_size[0]}x{model_size[1]}"
        return f"{TOO_LARGE}: {width}x{height}{scaled} ({pixels} pixels > max_pixels {limits.max_pixels})"
    return None


def _verb(size: tuple[int, int], model_size: tuple[int, int]) -> str:
    return "upscales" if model_size[0] * model_size[1] > size[0] * size[1] else "scales"

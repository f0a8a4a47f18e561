"""OCR with rapidocr-onnxruntime: PP-OCRv4 ONNX weights that ship inside the wheel.

rapidocr resizes before its text detector in a way that can enlarge an image a hundredfold: its short side
goes to at least 30 pixels, then (``limit_type: min``) to at least 736, keeping the aspect ratio. A valid
2x200 banner becomes 736x69184 (51 MP) and the worker dies of out-of-memory. :func:`detector_input_size`
computes that size, and the stage's pixel cap (``schemas/pixel_limits.py``) applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.geometry import order_quad_clockwise, quad_to_box
from schemas.pixel_limits import PixelLimits
from schemas.records import ImageRecord, Provenance, Region
from schemas.stage import WeightsCheck
from specialists.base import Specialist, file_sha256


@dataclass(frozen=True)
class RapidOcrOptions:
    """``min_score``: recognition confidence below which a line is not reported.
    ``words``: also write one ``ocr_word`` region per whitespace-separated word."""

    min_score: Fraction = 0.5
    box_threshold: Fraction = 0.5
    words: bool = True
    threads: PositiveInt = 1


# rapidocr-onnxruntime's config.yaml (Global and Det sections), used until the engine is loaded.
RAPIDOCR_RESIZE = {
    "max_side_len": 2000,
    "min_side_len": 30,
    "min_height": 30,
    "width_height_ratio": 8,
    "limit_side_len": 736,
    "limit_type": "min",
}
# The detector's input at most: a 2000-pixel long side keeps any ordinary photo under 4 MP; a tall strip whose
# short side is enlarged to 736 pixels is refused beyond this.
DETECTOR_MAX_PIXELS = 8_000_000


def _round32(value: float) -> int:
    return int(round(int(value) / 32) * 32)


def _scaled(width: int, height: int, ratio: float) -> tuple[int, int]:
    return _round32(width * ratio), _round32(height * ratio)


def detector_input_size(
    width: int,
    height: int,
    max_side_len: int = 2000,
    min_side_len: int = 30,
    min_height: int = 30,
    width_height_ratio: float = 8,
    limit_side_len: int = 736,
    limit_type: str = "min",
) -> tuple[int, int]:
    """The (width, height) of the array rapidocr's text detector runs on, for an image of ``width`` x ``height``:
    its ``preprocess`` (long side down to ``max_side_len``, short side up to ``min_side_len``, each rounded to
    32), its letterbox for short or wide images, then the detector's resize (``limit_type`` ``min``: short side
    up to ``limit_side_len``; ``max``: long side to a bucket of 960, 1500 or 2000), rounded to 32."""
    if max(width, height) > max_side_len:
        width, height = _scaled(width, height, max_side_len / max(width, height))
    if min(width, height) < min_side_len:
        width, height = _scaled(width, height, min_side_len / min(width, height))
    if width_height_ratio != -1 and (height <= min_height or width / height > width_height_ratio):
        padding = int(abs(max(int(width / width_height_ratio), min_height) * 2 - height) / 2)
        height += 2 * padding
    if limit_type == "min":
        ratio = limit_side_len / min(width, height) if min(width, height) < limit_side_len else 1.0
    else:
        longest = max(width, height)
        bucket = 960 if longest < 960 else 1500 if longest < 1500 else 2000
        ratio = bucket / longest if longest > bucket else 1.0
    return _scaled(width, height, ratio)


def _model_dir() -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models"


def group_words(
    chars: list[str], char_quads: list[Any], char_scores: list[float]
) -> list[tuple[str, tuple[float, float, float, float], float]]:
    """Group character boxes into words at spaces: (word, box, mean score) per word."""
    words: list[tuple[str, tuple[float, float, float, float], float]] = []
    current: list[int] = []

    def flush() -> None:
        if current:
            points = np.asarray([char_quads[i] for i in current], dtype=np.float64).reshape(-1, 2)
            box = (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())
            text = "".join(chars[i] for i in current)
            words.append((text, tuple(float(v) for v in box), float(np.mean([char_scores[i] for i in current]))))
            current.clear()

    for i, char in enumerate(chars):
        if char.isspace():
            flush()
        else:
            current.append(i)
    flush()
    return words


class RapidOcr(Specialist):
    """Text lines (quads, boxes, text, score) and optionally words, from PP-OCRv4."""

    backend: ClassVar[str] = "rapidocr"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = RapidOcrOptions
    pixel_limits: ClassVar[PixelLimits] = PixelLimits(max_pixels=DETECTOR_MAX_PIXELS)

    def __init__(self, name: str, options: RapidOcrOptions, resources=None) -> None:
        super().__init__(name, options, resources)
        self._engine: Any = None
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            version = metadata.version("rapidocr-onnxruntime")
            det = _model_dir() / "ch_PP-OCRv4_det_infer.onnx"
            rec = _model_dir() / "ch_PP-OCRv4_rec_infer.onnx"
            digest = file_sha256(det)[:8] + "-" + file_sha256(rec)[:8] if det.exists() and rec.exists() else "missing"
            self._model_id = f"rapidocr-onnxruntime=={version}/PP-OCRv4@{digest}"
        return self._model_id

    def check_weights(self) -> WeightsCheck:
        folder = _model_dir()
        found = all((folder / f).is_file() for f in ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"))
        return WeightsCheck(self.name, self.backend, self.model_id, (str(folder),), found, "PP-OCRv4 ONNX in the wheel")

    def model_input_size(self, width: int, height: int) -> tuple[int, int]:
        """What rapidocr's text detector is given (:func:`detector_input_size`, with the loaded engine's settings)."""
        settings = dict(RAPIDOCR_RESIZE)
        if self._engine is not None:
            engine, detector = self._engine, self._engine.text_det
            settings.update(
                max_side_len=engine.max_side_len,
                min_side_len=engine.min_side_len,
                min_height=engine.min_height,
                width_height_ratio=engine.width_height_ratio,
                limit_side_len=detector.limit_side_len,
                limit_type=detector.limit_type,
            )
        return detector_input_size(width, height, **settings)

    def load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        threads = self.options.threads
        self._engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, text_score=self.options.min_score)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        provenance = self.provenance()
        for image, record in zip(images, records, strict=True):
            record.regions.extend(self.read(image, provenance))

    def read(self, image: np.ndarray, provenance: Provenance) -> list[Region]:
        """OCR one RGB image into ``ocr_line`` (and ``ocr_word``) regions."""
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        result, _ = self._engine(
            bgr,
            return_word_box=self.options.words,
            box_thresh=self.options.box_threshold,
            text_score=self.options.min_score,
        )
        regions: list[Region] = []
        height, width = image.shape[:2]
        for item in result or []:
            points, text, score = item[0], str(item[1]), float(item[2])
            if score < self.options.min_score or not text.strip():
                continue
            quad = tuple(
                min(max(v, 0.0), float(width if i % 2 == 0 else height))
                for i, v in enumerate(order_quad_clockwise(points))
            )
            regions.append(Region("ocr_line", quad_to_box(quad), text, provenance, score=score, quad=quad))
            if self.options.words and len(item) > 3 and item[3]:
                for word, box, word_score in group_words(list(item[4]), item[3], list(item[5])):
                    x0, y0, x1, y1 = box
                    box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
                    regions.append(Region("ocr_word", box, word, provenance, score=word_score))
        return regions

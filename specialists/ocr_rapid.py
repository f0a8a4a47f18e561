"""OCR with rapidocr-onnxruntime: PP-OCRv4 ONNX weights that ship inside the wheel."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.geometry import order_quad_clockwise, quad_to_box
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

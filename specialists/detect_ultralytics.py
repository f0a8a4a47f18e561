"""Object detection with ultralytics (YOLO or RT-DETR) from a local ``.pt`` weights file.

The file must already be on disk: ultralytics would download a missing ``yolov8n.pt`` by name, so
the path is checked first and a missing file fails with :class:`WeightsNotFound` naming it. Ultralytics
``.pt`` files are pickles (ultralytics cannot load them ``weights_only``): they load only with
``trust_pickle_weights: true`` or a matching ``weights_sha256`` pin (``specialists/weights_file.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.records import ImageRecord, Region
from schemas.stage import Resources
from specialists.weights_file import PickledWeightsOptions, WeightsFileSpecialist

ARCHITECTURES = ("auto", "yolo", "rtdetr")


@dataclass(frozen=True)
class UltralyticsOptions(PickledWeightsOptions):
    """``weights``: path of a ``.pt`` file. ``architecture``: ``auto`` reads ``rtdetr`` in the file name as
    RT-DETR, anything else as YOLO. ``min_score``: ultralytics' own confidence cut (the confidence filter
    applies the profile's threshold later; keep this low so audits see the score distribution).
    ``trust_pickle_weights``, ``weights_sha256``: see :class:`PickledWeightsOptions`."""

    weights: str = "yolov8x.pt"
    architecture: str = "auto"
    min_score: Fraction = 0.05
    iou: Fraction = 0.7
    image_size: PositiveInt = 640
    max_detections: PositiveInt = 100
    fp16: bool = True  # fp16 on GPU (ultralytics' quantize=16); CPU runs fp32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")


class UltralyticsDetector(WeightsFileSpecialist):
    backend: ClassVar[str] = "ultralytics"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = UltralyticsOptions

    def __init__(self, name: str, options: UltralyticsOptions, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.model: Any = None

    def architecture(self) -> str:
        if self.options.architecture != "auto":
            return self.options.architecture
        return "rtdetr" if "rtdetr" in self.weights_path.name.lower() else "yolo"

    def load(self) -> None:
        self.require_weights()
        import torch
        from ultralytics import RTDETR, YOLO

        model_class = RTDETR if self.architecture() == "rtdetr" else YOLO
        self.model = model_class(str(self.weights_path))
        # Same rule as torch_device: CUDA only when the stage asked for a GPU and this worker has one.
        self.device = "cuda:0" if self.resources.num_gpus > 0 and torch.cuda.is_available() else "cpu"

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        results = self.model.predict(
            [np.ascontiguousarray(image[:, :, ::-1]) for image in images],  # ultralytics reads arrays as BGR
            conf=self.options.min_score,
            iou=self.options.iou,
            imgsz=self.options.image_size,
            max_det=self.options.max_detections,
            quantize=16 if self.options.fp16 and self.device != "cpu" else None,
            device=self.device,
            verbose=False,
        )
        provenance = self.provenance()
        for record, result in zip(records, results, strict=True):
            boxes = result.boxes
            xyxy = boxes.xyxy.float().cpu().numpy()
            scores = boxes.conf.float().cpu().numpy()
            classes = boxes.cls.cpu().numpy().astype(int)
            for box, score, class_id in zip(xyxy, scores, classes, strict=True):
                record.regions.append(
                    Region("object", tuple(box.tolist()), str(result.names[class_id]), provenance, score=float(score))
                )

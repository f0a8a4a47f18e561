"""Object detection with a transformers detector (DETR family: DETR, Conditional/Deformable DETR, RT-DETR).

Any checkpoint that ``AutoModelForObjectDetection`` loads, with its image processor's
``post_process_object_detection``; labels come from the checkpoint's ``id2label``. DETR checkpoints
with a timm backbone (``facebook/detr-resnet-50``) need the ``timm`` package, which is not a
dependency: the default is RT-DETR (native backbone), pretrained on Objects365 like the paper's DINO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.records import ImageRecord, Region
from specialists.hf_model import HfModelOptions, HfSpecialist


@dataclass(frozen=True)
class HfDetectionOptions(HfModelOptions):
    """``min_score``: the detector's own cut (kept low: the confidence filter applies the profile's threshold
    later, and audits see the score distribution). ``max_detections``: best boxes kept per image."""

    model: str = "PekingU/rtdetr_r50vd_coco_o365"
    min_score: Fraction = 0.05
    max_detections: PositiveInt = 100


class HfDetector(HfSpecialist):
    backend: ClassVar[str] = "hf_detection"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = HfDetectionOptions

    def load_model(self, path: str) -> None:
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModelForObjectDetection.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        output = self.infer(self.processor(images=images, return_tensors="pt"))  # pads the batch, with pixel_mask
        output.logits = output.logits.float()
        output.pred_boxes = output.pred_boxes.float()
        sizes = [image.shape[:2] for image in images]
        results = self.processor.post_process_object_detection(
            output, threshold=self.options.min_score, target_sizes=sizes
        )
        labels = self.model.config.id2label
        provenance = self.provenance()
        for record, result in zip(records, results, strict=True):
            scores = result["scores"].cpu().numpy()
            order = np.argsort(-scores, kind="stable")[: self.options.max_detections]
            boxes = result["boxes"].cpu().numpy()[order]
            clip = np.array([record.width, record.height] * 2, dtype=np.float64)
            boxes = np.clip(boxes, 0, clip)
            for box, score, label in zip(boxes, scores[order], result["labels"].cpu().numpy()[order], strict=True):
                if box[2] > box[0] and box[3] > box[1]:
                    text = labels.get(int(label), str(int(label)))
                    record.regions.append(Region("object", tuple(box.tolist()), text, provenance, score=float(score)))

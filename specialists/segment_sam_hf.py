"""Segment Anything through transformers (``SamModel``): one mask per box prompt, with SAM's quality signals.

Every image of a batch is embedded in one vision pass; then all boxes of an image go through the prompt
encoder and mask decoder together. Each object region gets ``mask`` (COCO RLE), ``polygon`` and the two
SA-1B quality measures as metrics: ``predicted_iou`` (the model's IoU head) and ``stability_score``
(IoU of the mask logits thresholded at +1.0 and -1.0, as ``calculate_stability_score`` in
segment-anything). Grounded phrase regions get masks and polygons too (they have no metrics field).
Choosing the prompts and writing the masks are shared with the ultralytics backend (``segment_sam``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import NonNegativeFloat, PositiveInt
from schemas.pixel_limits import PixelLimits
from schemas.records import GroundedRegion, ImageRecord, Region
from specialists.hf_model import HfModelOptions, HfSpecialist
from specialists.segment_sam import SAM_PIXEL_LIMITS, box_prompts, write_masks
from specialists.segment_sam import stability_score as stability_score  # re-exported: its original home


@dataclass(frozen=True)
class SamOptions(HfModelOptions):
    """``kinds``: region kinds whose boxes are prompts. ``phrases``: also segment grounded phrase regions.
    ``max_boxes``: at most this many prompts per image (regions first, in order)."""

    model: str = "facebook/sam-vit-huge"
    kinds: tuple[str, ...] = ("object",)
    phrases: bool = True
    max_boxes: PositiveInt = 64
    stability_offset: NonNegativeFloat = 1.0  # SA-1B: logits thresholded at 0 +/- 1.0
    upscale_chunk: PositiveInt = 8  # boxes whose logits are upscaled to the image size at once


class SamSegmenter(HfSpecialist):
    backend: ClassVar[str] = "sam_hf"
    produces: ClassVar[frozenset[str]] = frozenset({"masks"})
    requires: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = SamOptions
    pixel_limits: ClassVar[PixelLimits] = SAM_PIXEL_LIMITS

    def load_model(self, path: str) -> None:
        from transformers import SamModel, SamProcessor

        self.processor = SamProcessor.from_pretrained(path)
        self.model = SamModel.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def prompts(self, record: ImageRecord) -> list[Region | GroundedRegion]:
        """The annotations to segment in one image: object regions without a mask, then grounded regions."""
        return box_prompts(record, self.options.kinds, self.options.phrases, self.options.max_boxes)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        import torch

        jobs = [(i, self.prompts(record)) for i, record in enumerate(records)]
        jobs = [(i, targets) for i, targets in jobs if targets]
        if not jobs:
            return
        inputs = self.processor(images=[images[i] for i, _ in jobs], return_tensors="pt")
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(inputs["pixel_values"].to(self.device, self.dtype))
            for k, (_, targets) in enumerate(jobs):
                sizes = (inputs["original_sizes"][k : k + 1], inputs["reshaped_input_sizes"][k : k + 1])
                low_res, iou = self.decode(embeddings[k : k + 1], [t.bbox for t in targets], *sizes)
                # Upscaled logits are boxes x H x W floats: upscale a few boxes at a time to bound memory.
                for start in range(0, len(targets), self.options.upscale_chunk):
                    chunk = slice(start, start + self.options.upscale_chunk)
                    (logits,) = self.processor.image_processor.post_process_masks(
                        low_res[:, chunk], *sizes, binarize=False
                    )
                    write_masks(targets[chunk], logits[:, 0], iou[chunk], self.options.stability_offset)

    def decode(
        self, embedding: Any, boxes: list[tuple[float, ...]], original_size: Any, reshaped_size: Any
    ) -> tuple[Any, Any]:
        """Low-resolution mask logits (1, boxes, 1, h, w) and predicted IoUs (boxes,) for one image's boxes.

        Boxes are scaled like the image was (longest side resized), as ``SamProcessor`` does for its prompts.
        """
        import torch

        (height, width), (new_height, new_width) = original_size[0].tolist(), reshaped_size[0].tolist()
        scale = torch.tensor([new_width / width, new_height / height] * 2)
        prompts = (torch.tensor(boxes, dtype=torch.float32) * scale)[None]
        output = self.model(
            image_embeddings=embedding, input_boxes=prompts.to(self.device, self.dtype), multimask_output=False
        )
        return output.pred_masks.float().cpu(), output.iou_scores[0, :, 0].float().cpu()

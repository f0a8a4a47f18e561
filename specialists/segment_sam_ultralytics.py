"""Segment Anything through ultralytics (SAM, MobileSAM, SAM 2 / 2.1) from a local ``.pt`` file.

The alternative to ``sam_hf``, with the same prompts and output (``segment_sam``): every image is embedded
once, then all its object boxes (and grounded phrase boxes) go through the prompt encoder and mask decoder
in one call. Each region gets ``mask`` (COCO RLE), ``polygon``, ``predicted_iou`` (the IoU head's score,
what ultralytics reports as a result's confidence) and ``stability_score``. Ultralytics' public predict
API returns only binary masks (and drops masks whose score is under ``conf``), so this stage calls its
predictor the way ``Predictor.inference_features`` does but stops before the threshold: the mask logits,
scaled to the image exactly as ultralytics scales them, give the stability score and then the mask.

Ultralytics picks the architecture from the end of the file name (``mobile_sam.pt``, ``sam_b.pt``,
``sam2.1_t.pt``, ...), so the name must keep that ending. The file must already be on disk: ultralytics
would download a missing ``mobile_sam.pt`` by name, so the path is checked first and a missing file
fails with :class:`WeightsNotFound` naming it. Ultralytics loads the file with ``torch.load`` and
``weights_only=False`` (a pickle): it loads only with ``trust_pickle_weights: true`` or a matching
``weights_sha256`` pin (``specialists/weights_file.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import NonNegativeFloat, PositiveInt
from schemas.pixel_limits import PixelLimits
from schemas.records import GroundedRegion, ImageRecord, Region
from schemas.stage import Resources
from specialists.segment_sam import SAM_PIXEL_LIMITS, box_prompts, write_masks
from specialists.weights_file import PickledWeightsOptions, WeightsFileSpecialist

# The file name endings ultralytics' ``build_sam`` maps to an architecture (SAM 3 has another predictor).
WEIGHTS_NAMES = (
    "sam_h.pt",
    "sam_l.pt",
    "sam_b.pt",
    "mobile_sam.pt",
    "sam2_t.pt",
    "sam2_s.pt",
    "sam2_b.pt",
    "sam2_l.pt",
    "sam2.1_t.pt",
    "sam2.1_s.pt",
    "sam2.1_b.pt",
    "sam2.1_l.pt",
)


@dataclass(frozen=True)
class UltralyticsSamOptions(PickledWeightsOptions):
    """``weights``: path of a SAM ``.pt`` file whose name ends like one of :data:`WEIGHTS_NAMES`.
    ``kinds``, ``phrases``, ``max_boxes``: the prompts, as for ``sam_hf``. ``image_size``: the square
    input side (SAM's is 1024). ``trust_pickle_weights``, ``weights_sha256``: see :class:`PickledWeightsOptions`."""

    weights: str = "sam_h.pt"  # SAM ViT-H, as FLD-5B used
    kinds: tuple[str, ...] = ("object",)
    phrases: bool = True
    max_boxes: PositiveInt = 64
    image_size: PositiveInt = 1024
    stability_offset: NonNegativeFloat = 1.0  # SA-1B: logits thresholded at 0 +/- 1.0
    upscale_chunk: PositiveInt = 8  # boxes whose logits are upscaled to the image size at once
    fp16: bool = True  # fp16 on GPU (ultralytics' quantize=16); CPU runs fp32

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Path(self.weights).name.endswith(WEIGHTS_NAMES):
            raise ValueError(
                f"weights: {self.weights!r} must end with one of {', '.join(WEIGHTS_NAMES)} "
                "(ultralytics picks the SAM architecture from the file name)"
            )


class UltralyticsSamSegmenter(WeightsFileSpecialist):
    backend: ClassVar[str] = "sam_ultralytics"
    produces: ClassVar[frozenset[str]] = frozenset({"masks"})
    requires: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = UltralyticsSamOptions
    pixel_limits: ClassVar[PixelLimits] = SAM_PIXEL_LIMITS

    def __init__(self, name: str, options: UltralyticsSamOptions, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.predictor: Any = None

    def load(self) -> None:
        self.require_weights()
        import torch
        from ultralytics import SAM

        sam = SAM(str(self.weights_path))  # an existing absolute path: ultralytics loads it, downloads nothing
        # Same rule as torch_device: CUDA only when the stage asked for a GPU and this worker has one.
        device = "cuda:0" if self.resources.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        overrides = dict(
            imgsz=self.options.image_size,
            device=device,
            quantize=16 if self.options.fp16 and device != "cpu" else None,
            conf=0.0,
            save=False,
            verbose=False,
        )
        self.predictor = sam.task_map["segment"]["predictor"](overrides=overrides)  # SAM2Predictor for SAM 2
        self.predictor.setup_model(model=sam.model, verbose=False)

    def prompts(self, record: ImageRecord) -> list[Region | GroundedRegion]:
        """The annotations to segment in one image: object regions without a mask, then grounded regions."""
        return box_prompts(record, self.options.kinds, self.options.phrases, self.options.max_boxes)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        import torch

        for image, record in zip(images, records, strict=True):
            targets = self.prompts(record)
            if not targets:
                continue
            low_res, iou = self.decode(image, [t.bbox for t in targets])
            threshold = float(self.predictor.model.mask_threshold)
            # Upscaled logits are boxes x H x W floats: upscale a few boxes at a time to bound memory.
            for start in range(0, len(targets), self.options.upscale_chunk):
                chunk = slice(start, start + self.options.upscale_chunk)
                with torch.inference_mode():
                    logits = self.upscale(low_res[chunk], image.shape[:2]).cpu()
                write_masks(targets[chunk], logits, iou[chunk], self.options.stability_offset, threshold)

    def decode(self, image: np.ndarray, boxes: list[tuple[float, ...]]) -> tuple[Any, Any]:
        """Low-resolution mask logits (boxes, h, w) in the letterboxed input, on the model's device, and
        predicted IoUs (boxes,) on the CPU for one RGB image: one image-encoder pass, then every box through
        the decoder at once."""
        import torch

        predictor = self.predictor
        predictor.set_image(np.ascontiguousarray(image[:, :, ::-1]))  # ultralytics reads arrays as BGR
        # The body of ``Predictor.inference_features`` up to its threshold. These are ultralytics' internals
        # (SAM 2's predictor overrides both); a test checks the masks still equal ultralytics' own.
        with torch.inference_mode():
            prompts = predictor._prepare_prompts(predictor.imgsz, image.shape[:2], bboxes=np.asarray(boxes))
            logits, iou = predictor._inference_features(predictor.features, *prompts, multimask_output=False)
        predictor.reset_image()  # the features belong to this image only
        return logits.float(), iou.float().cpu()

    def upscale(self, low_res: Any, image_shape: tuple[int, int]) -> Any:
        """Logits at the image size (boxes, H, W), scaled as ``Predictor.inference_features`` scales them
        (the image fills the top left of the square input) but not thresholded."""
        from ultralytics.utils import ops

        input_shape = self.predictor.imgsz
        gain = min(i / o for i, o in zip(input_shape, image_shape, strict=True))
        ratio = [
            round(o * gain) * m / i / o for o, m, i in zip(image_shape, low_res.shape[1:], input_shape, strict=True)
        ]
        return ops.scale_masks(low_res[None], image_shape, (ratio, (0, 0)), padding=False)[0]

"""A tiny random-init Segment Anything model and processor (64-pixel inputs)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

IMAGE_SIZE = 64
PATCH_SIZE = 8


def build_tiny_sam(directory: Path) -> Path:
    """Save a SAM (vision encoder, prompt encoder, mask decoder) and its processor into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = SamConfig(
        vision_config=dict(
            hidden_size=32,
            output_channels=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            window_size=4,
            global_attn_indexes=(1,),
            num_pos_feats=16,
            mlp_dim=64,
        ),
        prompt_encoder_config=dict(hidden_size=32, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )
    torch.manual_seed(0)
    SamModel(config).save_pretrained(directory, safe_serialization=True)
    image_processor = SamImageProcessor(
        size={"longest_edge": IMAGE_SIZE},
        pad_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        mask_size={"longest_edge": IMAGE_SIZE // 4},
        mask_pad_size={"height": IMAGE_SIZE // 4, "width": IMAGE_SIZE // 4},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(directory)
    return directory

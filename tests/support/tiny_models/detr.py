"""A tiny random-init DETR (native ResNet backbone, no timm) with two labels."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

LABELS = {0: "cat", 1: "sofa"}


def build_tiny_detr(directory: Path) -> Path:
    """Save a DETR detector and its image processor (64-96 pixel inputs) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", out_features=["stage2"]
    )
    config = DetrConfig(
        backbone_config=backbone,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    torch.manual_seed(0)
    DetrForObjectDetection(config).save_pretrained(directory, safe_serialization=True)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(directory)
    return directory

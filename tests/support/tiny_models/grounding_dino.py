"""A tiny random-init Grounding DINO (native Swin backbone, BERT text encoder) with an offline WordPiece vocab."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertTokenizer,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SwinConfig,
)

from tests.support.tiny_models.wordpiece import train_wordpiece


def build_tiny_grounding_dino(directory: Path) -> Path:
    """Save a Grounding DINO (2 decoder layers, 10 queries) and its processor (80-128 px inputs) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(str(train_wordpiece(directory / "_wordpiece")))
    backbone = SwinConfig(
        image_size=32,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=2,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,  # the input projections' GroupNorm has 32 groups
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=10,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(directory, safe_serialization=True)
    # 80 pixels a side at least: the last feature level (stride 64) then has more than one value per channel,
    # which its GroupNorm needs for a one-image batch.
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 80, "longest_edge": 128})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory

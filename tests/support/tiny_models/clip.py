"""A tiny random-init CLIP (image and text towers) with an offline-trained BPE tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, GPT2Tokenizer

from tests.support.tiny_models.tokenizer import train_bpe

IMAGE_SIZE = 32


def build_tiny_clip(directory: Path) -> Path:
    """Save a CLIP dual encoder (model, image processor, tokenizer) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_bpe(directory / "_bpe")
    tokenizer = GPT2Tokenizer(str(vocab), str(merges), bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=8,
    )
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return directory

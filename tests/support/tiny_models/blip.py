"""A tiny random-init BLIP captioner with an offline-trained WordPiece tokenizer, saved like a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
)

from tests.support.tiny_models.wordpiece import train_wordpiece

IMAGE_SIZE = 32


def build_tiny_blip(directory: Path) -> Path:
    """Save a BLIP captioning checkpoint (model, image processor, tokenizer) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(str(train_wordpiece(directory / "_vocab")), do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in ("[PAD]", "[SEP]", "[DEC]")}
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        encoder_hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=ids["[PAD]"],
        bos_token_id=ids["[DEC]"],
        eos_token_id=ids["[SEP]"],
        sep_token_id=ids["[SEP]"],
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
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.generation_config.max_length = 12
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return directory

"""A tiny random-init OWLv2 open-vocabulary detector with an offline-trained BPE tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Tokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

from tests.support.tiny_models.tokenizer import train_bpe

IMAGE_SIZE = 32
QUERY_TOKENS = 16


def build_tiny_owlv2(directory: Path) -> Path:
    """Save an OWLv2 (text and vision towers, box and class heads) and its processor into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_bpe(directory / "_bpe")
    tokenizer = GPT2Tokenizer(str(vocab), str(merges), bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=QUERY_TOKENS,
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
    # OWLv2 needs projection_dim equal to the text width (its class head compares them directly).
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32))
    with torch.no_grad():  # random box offsets saturate the sigmoid into zero-width boxes: keep them near each patch
        model.box_head.dense2.weight.mul_(0.01)
        model.box_head.dense2.bias.zero_()
    image_processor = Owlv2ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return directory

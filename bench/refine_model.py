"""A small random-init Florence-2 for the refinement bench, sized by a few numbers, saved like a checkpoint.

Larger than the tests' tiny model (``tests/support/tiny_models/florence.py``) and built the same way: a
byte-level BPE trained offline (on the tests' corpus plus the scene words), the location, markup and task
tokens, DaViT + BART from ``Florence2Config``. One change makes a from-scratch detector learnable in
minutes: the 1,000 location tokens start from sinusoidal embeddings of their bin (nearby bins alike), as a
pretrained Florence-2's have become, instead of 1,000 unrelated random vectors that each need their own
examples. The output layer shares them, so a prediction one bin off costs little more than the right one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    BartTokenizer,
    CLIPImageProcessor,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
)

from bench.scenes import CLASSES, SIGN_WORDS
from tests.support.tiny_models.florence import LOCATION_TOKENS, MARKUP_TOKENS, POST_PROCESSOR_CONFIG, TASK_TOKENS
from tests.support.tiny_models.tokenizer import BASE_CORPUS, train_bpe

SCENE_CORPUS = [
    " ".join(CLASSES),
    "a red square, a green circle, a blue triangle and a yellow diamond on a grey textured background",
    "a white sign that says " + " ".join(SIGN_WORDS),
    "brown teal purple grey",
]


@dataclass(frozen=True)
class ModelSize:
    """Widths and depths of the bench model; ``image_size`` is the processor's input side in pixels."""

    image_size: int = 64
    d_model: int = 96
    layers: int = 2
    heads: int = 4
    vision_dims: tuple[int, int] = (32, 96)
    vision_depths: tuple[int, int] = (1, 1)


SIZES = {
    "tiny": ModelSize(64, 32, 1, 2, (16, 32), (1, 1)),
    "small": ModelSize(),
    "base": ModelSize(96, 192, 3, 6, (48, 192), (1, 2)),
}


def sinusoidal(positions: int, dim: int, scale: float) -> torch.Tensor:
    """``positions`` x ``dim`` sine/cosine features of the position, frequencies from 1 cycle to ``dim / 4``."""
    index = torch.arange(positions, dtype=torch.float32)[:, None] / positions
    freqs = torch.logspace(0, math.log10(max(2.0, dim / 4)), dim // 2)[None, :]
    angles = 2 * math.pi * index * freqs / 2
    return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :dim] * scale


def build_bench_florence2(directory: Path, size: ModelSize = ModelSize(), seed: int = 0) -> Path:
    """Write a random-init Florence-2 of ``size`` (safetensors) and its processor into ``directory``."""
    directory = Path(directory)
    vocab, merges = train_bpe(directory / "bpe", [*BASE_CORPUS, *SCENE_CORPUS])
    tokenizer = BartTokenizer(vocab=str(vocab), merges=str(merges), extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens(LOCATION_TOKENS + MARKUP_TOKENS + TASK_TOKENS)
    torch.manual_seed(seed)
    config = Florence2Config(
        text_config={
            "model_type": "bart",
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 256,
            "encoder_layers": size.layers,
            "decoder_layers": size.layers,
            "encoder_ffn_dim": 4 * size.d_model,
            "decoder_ffn_dim": 4 * size.d_model,
            "encoder_attention_heads": size.heads,
            "decoder_attention_heads": size.heads,
            "d_model": size.d_model,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "decoder_start_token_id": tokenizer.eos_token_id,
            "forced_bos_token_id": tokenizer.bos_token_id,
        },
        vision_config={
            "depths": list(size.vision_depths),
            "patch_size": [7, 3],
            "patch_stride": [4, 2],
            "patch_padding": [3, 1],
            "patch_prenorm": [False, True],
            "embed_dim": list(size.vision_dims),
            "num_heads": [max(1, size.vision_dims[0] // 16), max(1, size.vision_dims[1] // 16)],
            "num_groups": [max(1, size.vision_dims[0] // 16), max(1, size.vision_dims[1] // 16)],
            "window_size": 4,
            "drop_path_rate": 0.0,
            "projection_dim": size.d_model,
        },
        image_token_id=tokenizer.image_token_id,
    )
    model = Florence2ForConditionalGeneration(config).eval()
    embeddings = model.get_input_embeddings()
    first = tokenizer.convert_tokens_to_ids(LOCATION_TOKENS[0])
    with torch.no_grad():
        std = float(embeddings.weight.std())
        embeddings.weight[first : first + len(LOCATION_TOKENS)] = sinusoidal(
            len(LOCATION_TOKENS), embeddings.weight.shape[1], std * math.sqrt(2)
        )
        features = model.get_image_features(torch.zeros(1, 3, size.image_size, size.image_size))
    model.tie_weights()
    features = features.pooler_output if hasattr(features, "pooler_output") else features
    image_processor = CLIPImageProcessor(
        size={"height": size.image_size, "width": size.image_size},
        crop_size={"height": size.image_size, "width": size.image_size},
        do_center_crop=False,
        image_seq_length=int(features.shape[1]),
    )
    processor = Florence2Processor(
        image_processor=image_processor, tokenizer=tokenizer, post_processor_config=POST_PROCESSOR_CONFIG
    )
    model.generation_config.max_new_tokens = 64
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory

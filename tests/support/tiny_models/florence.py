"""A tiny random-init Florence-2 (DaViT + BART) with an offline-trained tokenizer, saved like a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BartTokenizer,
    CLIPImageProcessor,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
)

from tests.support.tiny_models.tokenizer import BASE_CORPUS, train_bpe

IMAGE_SIZE = 64
TASK_TOKENS = [
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OD>",
    "<DENSE_REGION_CAPTION>",
    "<REGION_PROPOSAL>",
    "<CAPTION_TO_PHRASE_GROUNDING>",
    "<REFERRING_EXPRESSION_SEGMENTATION>",
    "<REGION_TO_SEGMENTATION>",
    "<OPEN_VOCABULARY_DETECTION>",
    "<REGION_TO_CATEGORY>",
    "<REGION_TO_DESCRIPTION>",
    "<OCR>",
    "<OCR_WITH_REGION>",
]
MARKUP_TOKENS = [
    "<od>",
    "</od>",
    "<ocr>",
    "</ocr>",
    "<poly>",
    "</poly>",
    "<sep>",
    "<cap>",
    "</cap>",
    "<ncap>",
    "</ncap>",
]
LOCATION_TOKENS = [f"<loc_{i}>" for i in range(1000)]
# As in the processor_config.json of the real checkpoints (the banned list is shortened here).
POST_PROCESSOR_CONFIG = {
    "ocr": {
        "pattern": r"(.+?)<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>",
        "area_threshold": 0.0,
    },
    "phrase_grounding": {"banned_grounding_tokens": ["it", "the image"]},
    "pure_text": {},
    "description_with_bboxes": {},
    "description_with_polygons": {},
    "polygons": {},
    "bboxes": {},
    "description_with_bboxes_or_polygons": {},
}


def build_tiny_florence2(directory: Path, seed: int = 0) -> Path:
    """Write a tiny Florence-2 checkpoint (safetensors) and its processor into ``directory``; return it."""
    directory = Path(directory)
    vocab, merges = train_bpe(directory / "bpe", BASE_CORPUS)
    tokenizer = BartTokenizer(vocab=str(vocab), merges=str(merges), extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens(LOCATION_TOKENS + MARKUP_TOKENS + TASK_TOKENS)

    torch.manual_seed(seed)
    config = Florence2Config(
        text_config={
            "model_type": "bart",
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 512,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "d_model": 32,
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
            "depths": [1, 1],
            "patch_size": [7, 3],
            "patch_stride": [4, 2],
            "patch_padding": [3, 1],
            "patch_prenorm": [False, True],
            "embed_dim": [16, 32],
            "num_heads": [1, 2],
            "num_groups": [1, 2],
            "window_size": 4,
            "drop_path_rate": 0.0,
            "projection_dim": 32,
        },
        image_token_id=tokenizer.image_token_id,
    )
    model = Florence2ForConditionalGeneration(config).eval()
    with torch.no_grad():
        features = model.get_image_features(torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    features = features.pooler_output if hasattr(features, "pooler_output") else features
    image_seq_length = int(features.shape[1])

    image_processor = CLIPImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
        image_seq_length=image_seq_length,
    )
    processor = Florence2Processor(
        image_processor=image_processor, tokenizer=tokenizer, post_processor_config=POST_PROCESSOR_CONFIG
    )
    model.generation_config.max_new_tokens = 20
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory

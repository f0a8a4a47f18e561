"""A tiny random-init Llama-style causal LM with an offline-trained BPE tokenizer and a chat template."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Tokenizer, LlamaConfig, LlamaForCausalLM

from tests.support.tiny_models.tokenizer import train_bpe

CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def build_tiny_causal_lm(directory: Path) -> Path:
    """Save a 2-layer Llama (model, tokenizer with a chat template) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_bpe(directory / "_bpe")
    tokenizer = GPT2Tokenizer(str(vocab), str(merges), bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory, safe_serialization=True)
    return directory

"""Byte-level BPE tokenizers trained offline with the ``tokenizers`` library."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BASE_CORPUS = [
    "a photo of a cat sitting on a red sofa next to a window",
    "a woman rides a red bicycle down the street",
    "the image shows a bus on a city road with people walking",
    "a close up of a coffee cup on a wooden table",
    "an astronaut in a white suit holding a helmet",
    "text reading open monday to friday on a sign",
    "what does the image describe? describe in detail what is shown in the image.",
    "describe with a paragraph what is shown in the image.",
    "locate the objects with category name in the image.",
    "locate the region proposals in the image. locate the phrases in the caption:",
    "what is the text in the image, with regions? what is the polygon mask of region",
    "what does the region describe? what is the region? locate in the image with mask",
    "person car dog face licence plate tree building sky road window door",
    "0123456789 invoice total due thank you for your order city library",
]


def train_bpe(directory: Path, corpus: Iterable[str] = BASE_CORPUS, vocab_size: int = 600) -> tuple[Path, Path]:
    """Train a RoBERTa/BART-style byte-level BPE and write ``vocab.json`` and ``merges.txt`` into ``directory``."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus) * 4, trainer=trainer)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = tokenizer.model.save(str(directory))
    return Path(vocab), Path(merges)

"""A WordPiece vocabulary (BERT-style ``vocab.txt``) trained offline with the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from tests.support.tiny_models.tokenizer import BASE_CORPUS

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def train_wordpiece(directory: Path, vocab_size: int = 400) -> Path:
    """Write ``vocab.txt`` (BERT specials first, ``[PAD]`` at id 0) into ``directory``."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(BASE_CORPUS * 4, trainer=trainer)
    directory.mkdir(parents=True, exist_ok=True)
    (vocab,) = tokenizer.model.save(str(directory))
    return Path(vocab)

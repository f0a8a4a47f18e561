"""Fine-tuning guards the native port's loss-shift bugs: loss falls and a memorised target comes back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Florence2ForConditionalGeneration, Florence2Processor

from refine.train import (
    IGNORE_INDEX,
    TrainExample,
    TrainSettings,
    collate,
    save_checkpoint,
    schedule_factor,
    train_epochs,
)

TARGET = "car<loc_52><loc_333><loc_932><loc_774>"


@pytest.fixture(scope="module")
def tiny(tiny_florence2_dir):
    return (
        Florence2ForConditionalGeneration.from_pretrained(tiny_florence2_dir),
        Florence2Processor.from_pretrained(tiny_florence2_dir),
    )


def examples() -> list[TrainExample]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return [TrainExample(image, "<OD>", TARGET), TrainExample(image, "<CAPTION>", "a red car")]


def test_padded_label_positions_are_masked(tiny) -> None:
    _, processor = tiny
    batch = collate(processor, examples(), 64)
    labels = batch["labels"]
    assert labels.shape[0] == 2 and (labels[1] == IGNORE_INDEX).sum() > 0 and (labels[0] == IGNORE_INDEX).sum() == 0
    assert labels[0, 0] == processor.tokenizer.bos_token_id


def test_schedule_warms_up_then_decays_to_zero() -> None:
    assert schedule_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert schedule_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert schedule_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert schedule_factor(55, 100, 10, "linear") == pytest.approx(0.5)


def test_loss_falls_and_greedy_decoding_reproduces_the_memorised_target(tiny, tmp_path) -> None:
    model, processor = tiny
    batch = examples()
    settings = TrainSettings(learning_rate=1.5e-2, epochs=50, batch_size=2, warmup_fraction=0.0, schedule="linear")
    losses = train_epochs(model, processor, lambda _: [batch], settings, total_steps=50)
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    inputs = processor(images=[Image.fromarray(batch[0].image)], text=["<OD>"], return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**inputs, max_new_tokens=12, num_beams=1, do_sample=False)
    text = processor.batch_decode(generated, skip_special_tokens=False)[0]
    parsed = processor.post_process_generation(text, task="<OD>", image_size=(1000, 1000))["<OD>"]
    assert parsed["labels"] == ["car"] and parsed["bboxes"] == [[52, 333, 932, 774]]
    saved = save_checkpoint(model, processor, tmp_path / "round-1")
    assert (saved / "model.safetensors").is_file() and (saved / "processor_config.json").is_file()
    reloaded = Florence2ForConditionalGeneration.from_pretrained(saved)
    with torch.inference_mode():
        again = reloaded.generate(**inputs, max_new_tokens=12, num_beams=1, do_sample=False)
    assert torch.equal(again, generated)


def test_frozen_vision_tower_keeps_its_weights(tiny_florence2_dir) -> None:
    model = Florence2ForConditionalGeneration.from_pretrained(tiny_florence2_dir)
    processor = Florence2Processor.from_pretrained(tiny_florence2_dir)
    before = {n: p.clone() for n, p in model.named_parameters() if "vision_tower" in n}
    settings = TrainSettings(learning_rate=1e-3, epochs=2, freeze_vision=True)
    train_epochs(model, processor, lambda _: [examples()], settings, total_steps=2)
    after = dict(model.named_parameters())
    assert before and all(torch.equal(before[n], after[n]) for n in before)

"""Detailed texts from a causal language model prompted with the other annotations (the paper's aggregator).

The brief caption, the region texts and the OCR lines of an image fill a versioned prompt file
(``specialists/prompts/<granularity>_<version>.txt``); the model's answer becomes the ``detailed`` or
``more_detailed`` text. Provenance records the model identity and the prompt file used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import NonNegativeInt, PositiveInt
from schemas.records import ImageRecord, Provenance, Text
from schemas.stage import Resources
from specialists.hf_model import HfModelOptions, HfSpecialist

PROMPT_DIR = Path(__file__).parent / "prompts"
REGION_KINDS = ("object", "region_caption", "dense_caption")


@dataclass(frozen=True)
class LlmAggregatorOptions(HfModelOptions):
    """``granularities``: texts to write; ``prompt_version``: suffix of the prompt files used (``detailed_v1.txt``).
    ``max_regions``/``max_ocr_lines`` bound the prompt; ``max_new_tokens`` bounds each answer."""

    model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    granularities: tuple[str, ...] = ("detailed", "more_detailed")
    prompt_version: str = "v1"
    max_new_tokens: PositiveInt = 256
    max_regions: NonNegativeInt = 24
    max_ocr_lines: NonNegativeInt = 12

    def __post_init__(self) -> None:
        super().__post_init__()
        for granularity in self.granularities:
            path = prompt_path(granularity, self.prompt_version)
            if not path.is_file():
                raise ValueError(f"granularities: no prompt file {path} for {granularity!r}")


def prompt_path(granularity: str, version: str) -> Path:
    return PROMPT_DIR / f"{granularity}_{version}.txt"


def build_prompt(template: str, record: ImageRecord, max_regions: int, max_ocr_lines: int) -> str | None:
    """The prompt for one image, or None when it has no brief caption to start from."""
    brief = [t.text for t in record.texts if t.granularity == "brief"]
    if not brief:
        return None
    regions = [r for r in record.regions if r.kind in REGION_KINDS and r.text.strip()][:max_regions]
    ocr = [r.text for r in record.regions if r.kind == "ocr_line" and r.text.strip()][:max_ocr_lines]
    region_lines = [f"- {r.text.strip()} ({', '.join(str(round(v)) for v in r.bbox)})" for r in regions]
    return template.format(
        caption=brief[0],
        width=record.width,
        height=record.height,
        regions="\n".join(region_lines) or "(none)",
        ocr="\n".join(f"- {line}" for line in ocr) or "(none)",
    )


class LlmAggregator(HfSpecialist):
    backend: ClassVar[str] = "llm_aggregator"
    produces: ClassVar[frozenset[str]] = frozenset({"texts"})
    requires: ClassVar[frozenset[str]] = frozenset({"texts"})
    Options: ClassVar[type] = LlmAggregatorOptions
    needs_pixels: ClassVar[bool] = False
    tokenizer: Any = None

    def __init__(self, name: str, options: LlmAggregatorOptions, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.templates = {g: prompt_path(g, options.prompt_version).read_text() for g in options.granularities}

    def prompt_provenance(self, granularity: str) -> Provenance:
        """Model identity plus the prompt file (``...+prompt:detailed_v1``)."""
        prompt = f"{granularity}_{self.options.prompt_version}"
        return Provenance(source=self.name, model=f"{self.model_id}+prompt:{prompt}", round=0)

    def load_model(self, path: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # decoder-only: generation continues from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        self.setup()
        self.annotate([], records)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        for granularity, template in self.templates.items():
            prompts = [build_prompt(template, r, self.options.max_regions, self.options.max_ocr_lines) for r in records]
            ready = [i for i, p in enumerate(prompts) if p is not None]
            answers = self.generate([prompts[i] for i in ready])  # type: ignore[misc]
            provenance = self.prompt_provenance(granularity)
            for i, answer in zip(ready, answers, strict=True):
                if answer:
                    records[i].texts.append(Text(granularity, answer, provenance))  # type: ignore[arg-type]

    def generate(self, prompts: list[str]) -> list[str]:
        """Answers to a batch of user prompts (chat template when the tokenizer has one), greedy."""
        if not prompts:
            return []
        if self.tokenizer.chat_template:
            inputs = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        else:
            inputs = prompts
        encoded = self.tokenizer(inputs, return_tensors="pt", padding=True, add_special_tokens=False)
        generated = self.generate_ids(
            encoded, max_new_tokens=self.options.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id
        )
        answers = self.tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        return [" ".join(a.split()) for a in answers]

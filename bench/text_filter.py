"""Text filter throughput: the spaCy text filter stage against a naive ``nlp(text)`` loop, on one core.

Both sides see the same generated captions. The naive loop is what one would write first: the full
default pipeline (NER included), one ``nlp(text)`` call per caption, and nothing else. The filter
parses in ``nlp.pipe`` batches without NER and also extracts objects, attributes, actions and
complexity, applies every rule and records drops, so the ratio understates the parsing speed-up.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.cluster import pinned
from filters.spacy_model import spacy_model_id, spacy_model_package
from filters.text_rules import TextFilter, TextFilterOptions
from schemas.records import ImageRecord, Provenance, Text

SPEEDUP_TARGET = 3.0
BRIEF_PER_CORE_TARGET = 700.0

VOCABULARY = {
    "subject": "man|woman|child|dog|cat|horse|bird|cyclist|skier|chef|girl|boy|couple|crowd|player",
    "adjective": "red|blue|small|large|old|young|wooden|white|black|green|happy|tall|yellow|striped",
    "verb": "rides|holds|watches|crosses|sits on|stands near|walks along|carries|eats|throws|looks at|pushes",
    "object": "bicycle|ball|street|bench|tree|car|table|umbrella|fence|boat|kite|plate|sign|road|field",
    "place": "in a park|on a beach|in the kitchen|at night|in the snow|next to a river|in a busy city|on a farm",
    "detail": "while people walk by|with mountains in the background|under a cloudy sky|as the sun sets",
}


def generate_captions(count: int, seed: int = 0) -> list[str]:
    """``count`` brief captions from templates, about 8.5 words on average (FLD-5B brief: 7.95 tokens)."""
    rng = random.Random(seed)
    words = {part: choices.split("|") for part, choices in VOCABULARY.items()}

    def pick(part: str) -> str:
        return rng.choice(words[part])

    def maybe(part: str, probability: float) -> str:
        return f" {pick(part)}" if rng.random() < probability else ""

    captions = []
    for _ in range(count):
        caption = (
            f"a{maybe('adjective', 0.5)} {pick('subject')} {pick('verb')} a{maybe('adjective', 0.5)} {pick('object')}"
        )
        caption += maybe("place", 0.6) + maybe("detail", 0.1)
        captions.append(caption[0].upper() + caption[1:])
    return captions


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds, and CPU seconds of this process (what a core spent, whatever else ran)."""

    wall_s: float
    cpu_s: float


@contextmanager
def timed(into: list[Timing]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def naive_loop(captions: list[str]) -> Timing:
    nlp = importlib.import_module(spacy_model_package()).load()  # spaCy as installed: no faster ruler matching
    nlp("warm up")
    timing: list[Timing] = []
    with timed(timing):
        for caption in captions:
            nlp(caption)
    return timing[0]


def filter_stage(captions: list[str], batch_size: int) -> tuple[Timing, dict[str, int]]:
    stage = TextFilter("text", TextFilterOptions(batch_size=batch_size))
    stage.setup()
    source = Provenance("captioner", "bench")
    records = [
        ImageRecord(f"img{i}", f"file:///img{i}.jpg", 640, 480, "jpeg", texts=[Text("brief", caption, source)])
        for i, caption in enumerate(captions)
    ]
    timing: list[Timing] = []
    with timed(timing):
        for start in range(0, len(records), batch_size):
            stage.process(records[start : start + batch_size], None)
    return timing[0], dict(stage.drop_counts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.text_filter", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="captions (default 10000)")
    parser.add_argument("--batch-size", type=int, default=256, help="records per process() call")
    parser.add_argument("--core", type=int, default=0, help="the one core both sides run on")
    args = parser.parse_args(argv)
    captions = generate_captions(args.count)
    with pinned({args.core}):
        naive = naive_loop(captions)
        ours, drops = filter_stage(captions, args.batch_size)
    speedup = naive.cpu_s / ours.cpu_s
    per_core = args.count / ours.cpu_s
    return {
        "model": spacy_model_id(),
        "captions": args.count,
        "mean_words": sum(len(c.split()) for c in captions) / len(captions),
        "note": "rates are texts per CPU-second of one process pinned to one core; wall time shown for reference",
        "naive_nlp_loop": _side(args.count, naive),
        "text_filter": {**_side(args.count, ours), "batch_size": args.batch_size},
        "speedup_vs_naive_cpu": speedup,
        "speedup_vs_naive_wall": naive.wall_s / ours.wall_s,
        "targets": {
            "speedup_vs_naive": SPEEDUP_TARGET,
            "brief_texts_per_s_per_core": BRIEF_PER_CORE_TARGET,
            "met": speedup >= SPEEDUP_TARGET and per_core >= BRIEF_PER_CORE_TARGET,
        },
        "drops": drops,
    }


def _side(count: int, timing: Timing) -> dict[str, float]:
    return {
        "cpu_s": timing.cpu_s,
        "wall_s": timing.wall_s,
        "texts_per_cpu_s": count / timing.cpu_s,
        "texts_per_wall_s": count / timing.wall_s,
    }


if __name__ == "__main__":
    from bench.report import print_table, save

    result = main(sys.argv[1:])
    print_table("text_filter", result)
    print(f"saved {save('text_filter', result)}")

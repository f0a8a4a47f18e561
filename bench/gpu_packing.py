"""GPU packing: real-size, random-init models sharing one GPU through fractional Ray actors.

Models at their published sizes, built from transformers config classes with random weights
(nothing is downloaded): Florence-2-base and -large (DaViT + BART, ``generate`` of a fixed
number of tokens), SAM ViT-B (image encoder + box prompt), Grounding DINO (Swin-T + BERT).
First each model alone on the whole GPU over a sweep of batch sizes (best images/s wins), then
all of them together, one actor each with ``num_gpus = 1 / models``, at their best batch sizes.
Reports images per second per GPU, GPU utilisation and memory (sampled with ``nvidia-smi``).

Runs only where CUDA exists; elsewhere ``skip_reason`` says so and nothing starts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

BATCH_SIZES = (1, 2, 4, 8, 16, 32)
# BART's 51,289 tokens plus the <image> placeholder the processor adds (its id is the last one).
FLORENCE_VOCAB = 51290
FLORENCE_PROMPT_TOKENS = 12
FLORENCE_NEW_TOKENS = 32
# A 768x768 image becomes 24x24 DaViT features plus one global token; the processor puts as many
# image placeholder tokens before the prompt (Florence2Processor image_seq_length).
FLORENCE_IMAGE_TOKENS = 577


def skip_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device on this machine: the GPU packing scenario runs only where CUDA exists"
    return None


def florence2(size: str) -> Any:
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

    if size == "base":
        vision = Florence2VisionConfig()
        text = BartConfig(vocab_size=FLORENCE_VOCAB, d_model=768, encoder_layers=6, decoder_layers=6)
        text.encoder_attention_heads = text.decoder_attention_heads = 12
        text.encoder_ffn_dim = text.decoder_ffn_dim = 3072
    else:
        vision = Florence2VisionConfig(
            embed_dim=(256, 512, 1024, 2048), num_heads=(8, 16, 32, 64), num_groups=(8, 16, 32, 64)
        )
        text = BartConfig(vocab_size=FLORENCE_VOCAB, d_model=1024, encoder_layers=12, decoder_layers=12)
        text.encoder_attention_heads = text.decoder_attention_heads = 16
        text.encoder_ffn_dim = text.decoder_ffn_dim = 4096
    vision.projection_dim = text.d_model
    config = Florence2Config(text_config=text, vision_config=vision, image_token_id=FLORENCE_VOCAB - 1)
    return Florence2ForConditionalGeneration(config)


def sam_vit_b() -> Any:
    from transformers import SamConfig, SamModel

    return SamModel(SamConfig())  # the default vision config is ViT-B (768 wide, 12 layers)


def grounding_dino() -> Any:
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    return GroundingDinoForObjectDetection(GroundingDinoConfig())  # Swin-T image backbone, BERT-base text


MODELS: dict[str, Callable[[], Any]] = {
    "florence2-base": lambda: florence2("base"),
    "florence2-large": lambda: florence2("large"),
    "sam-vit-b": sam_vit_b,
    "grounding-dino-t": grounding_dino,
}


def run_batch(name: str, model: Any, batch: int, device: str, dtype: Any) -> None:
    """One batch of ``batch`` random images through ``model`` the way the engine would call it."""
    import torch

    with torch.inference_mode():
        if name.startswith("florence2"):
            pixels = torch.rand(batch, 3, 768, 768, device=device, dtype=dtype)
            placeholders = torch.full((batch, FLORENCE_IMAGE_TOKENS), model.config.image_token_id, device=device)
            words = torch.randint(4, 50000, (batch, FLORENCE_PROMPT_TOKENS), device=device)
            prompt = torch.cat([placeholders, words], dim=1)
            model.generate(
                input_ids=prompt,
                pixel_values=pixels,
                max_new_tokens=FLORENCE_NEW_TOKENS,
                min_new_tokens=FLORENCE_NEW_TOKENS,
                num_beams=1,
                do_sample=False,
            )
        elif name.startswith("sam"):
            pixels = torch.rand(batch, 3, 1024, 1024, device=device, dtype=dtype)
            boxes = torch.tensor([[[100.0, 100.0, 600.0, 500.0]]], device=device).repeat(batch, 1, 1).to(dtype)
            model(pixel_values=pixels, input_boxes=boxes, multimask_output=False)
        else:
            pixels = torch.rand(batch, 3, 800, 800, device=device, dtype=dtype)
            text = torch.randint(1000, 20000, (batch, 8), device=device)
            model(pixel_values=pixels, input_ids=text, attention_mask=torch.ones_like(text))
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class ModelRunner:
    """Holds one model on the device and times batches of it (a Ray actor in the packed run)."""

    def __init__(self, name: str, device: str = "cuda", dtype: str = "bfloat16") -> None:
        import torch

        self.name, self.device = name, device
        self.dtype = getattr(torch, dtype)
        self.model = MODELS[name]().to(device=device, dtype=self.dtype).eval()
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def throughput(self, batch: int, seconds: float) -> dict[str, Any]:
        """Images per second over about ``seconds`` of back-to-back batches (after one warm-up batch)."""
        import torch

        try:
            run_batch(self.name, self.model, batch, self.device, self.dtype)
            started, images = time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                run_batch(self.name, self.model, batch, self.device, self.dtype)
                images += batch
            elapsed = time.perf_counter() - started
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {"model": self.name, "batch": batch, "images_per_s": 0.0, "oom": True}
        return {"model": self.name, "batch": batch, "images_per_s": images / elapsed, "images": images}


class GpuMonitor:
    """Samples ``nvidia-smi`` utilisation and memory every ``interval`` seconds while running."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.wait(self.interval):
            done = subprocess.run(query, capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.strip():
                utilisation, memory = (float(v) for v in done.stdout.strip().splitlines()[0].split(","))
                self.samples.append((utilisation, memory))

    def __enter__(self) -> GpuMonitor:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        utilisation = [u for u, _ in self.samples]
        return {
            "gpu_util_mean_pct": sum(utilisation) / len(utilisation),
            "gpu_util_max_pct": max(utilisation),
            "gpu_memory_max_mib": max(m for _, m in self.samples),
        }


def sweep(name: str, seconds: float, batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    """One model alone on the GPU: images/s per batch size; stops growing the batch at OOM or a drop."""
    runner = ModelRunner(name)
    results, best = [], None
    with GpuMonitor() as monitor:
        for batch in batch_sizes:
            result = runner.throughput(batch, seconds)
            results.append(result)
            if result.get("oom") or (best and result["images_per_s"] < 0.9 * best["images_per_s"]):
                break
            if best is None or result["images_per_s"] > best["images_per_s"]:
                best = result
    del runner
    import torch

    torch.cuda.empty_cache()
    return {"model": name, "sweep": results, "best_batch": best["batch"] if best else None, **monitor.summary()}


def packed(best: dict[str, int], seconds: float) -> dict[str, Any]:
    """Every model at once on one GPU, one Ray actor each with an equal fraction of the GPU."""
    import ray

    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        fraction = 1.0 / len(best)
        remote = ray.remote(num_gpus=fraction, num_cpus=1)(ModelRunner)
        actors = {name: remote.remote(name) for name in best}
        ray.get([actor.__ray_ready__.remote() for actor in actors.values()])
        with GpuMonitor() as monitor:
            started = time.perf_counter()
            results = ray.get([actors[name].throughput.remote(best[name], seconds) for name in best])
            elapsed = time.perf_counter() - started
    finally:
        ray.shutdown()
    per_model = {r["model"]: r["images_per_s"] for r in results}
    total_images = sum(r.get("images", 0) for r in results)
    return {
        "gpu_fraction_per_actor": fraction,
        "images_per_s_by_model": per_model,
        "images_per_s_per_gpu": total_images / elapsed,
        **monitor.summary(),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per measurement (default 15)")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=list(BATCH_SIZES))
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    reason = skip_reason()
    if reason:
        return {"skipped": reason}
    args = parse(argv)
    import torch

    alone = [sweep(name, args.seconds, tuple(args.batch_sizes)) for name in args.models]
    best = {a["model"]: a["best_batch"] for a in alone if a["best_batch"]}
    return {
        "device": torch.cuda.get_device_name(0),
        "alone": alone,
        "best_batch": best,
        "packed": packed(best, args.seconds) if len(best) > 1 else {},
    }

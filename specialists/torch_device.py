"""Where a model stage runs: chosen inside the actor from the stage's declared resources."""

from __future__ import annotations

from typing import Any

from schemas.stage import Resources


def device_and_dtype(resources: Resources) -> tuple[str, Any]:
    """``("cuda", bf16)`` when the stage asked for a GPU and this worker has one, else ``("cpu", fp32)``.

    Called in the worker (never on the driver), so a CPU-only head node does not decide for GPU workers.
    """
    import torch

    if resources.num_gpus > 0 and torch.cuda.is_available():
        return "cuda", torch.bfloat16
    return "cpu", torch.float32

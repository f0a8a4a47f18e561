"""Where a model stage runs: chosen inside the actor from the stage's declared resources."""

from __future__ import annotations

from typing import Any

from schemas.stage import Resources

DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_dtype(dtype: str) -> None:
    """Reject a ``dtype`` option that is not one of :data:`DTYPES` (called when options are validated)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")


def device_and_dtype(resources: Resources, dtype: str = "auto") -> tuple[str, Any]:
    """The device and torch dtype of a model stage.

    CUDA when the stage asked for a GPU and this worker has one, else CPU; ``auto`` is bf16 on CUDA and
    fp32 on CPU. Called in the worker (never on the driver), so a CPU-only head node does not decide for
    GPU workers.
    """
    import torch

    device = "cuda" if resources.num_gpus > 0 and torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        return device, torch.bfloat16 if device == "cuda" else torch.float32
    return device, getattr(torch, dtype)

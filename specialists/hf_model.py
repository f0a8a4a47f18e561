"""Specialists whose model is a transformers checkpoint, loaded once the way transformers' ``PreTrainedModel`` does.

:class:`HfSpecialist` reads ``options.model`` (a local checkpoint directory or a Hugging Face id already in
the local cache), ``options.revision`` and ``options.dtype`` (:class:`HfModelOptions`); it finds the weights
without downloading, names them for provenance (cached), and loads them once per worker: a backend only
implements :meth:`HfSpecialist.load_model` (processor and model from a directory) and ``annotate``.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.stage import WeightsCheck, WeightsNotFound
from specialists.base import Specialist, file_sha256
from specialists.torch_device import check_dtype, device_and_dtype


@dataclass(frozen=True)
class HfModelOptions:
    """``model``: a local checkpoint directory or a Hugging Face id already in the local cache.
    ``revision``: recorded in provenance for a hub id (default: the cached snapshot's commit).
    ``dtype``: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16 or float16."""

    model: str
    revision: str | None = None
    dtype: str = "auto"

    def __post_init__(self) -> None:
        check_dtype(self.dtype)


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache this process would use."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


def resolve_hf_model(specialist: str, backend: str, model: str) -> WeightsCheck:
    """Find a transformers checkpoint: a local directory, or a hub id already in the local cache.

    Nothing is downloaded; a missing model is reported with every place that was looked in.
    """
    local = Path(model).expanduser()
    looked = [str(local.resolve())]
    if local.is_dir():
        found = (local / "config.json").is_file()
        return WeightsCheck(specialist, backend, model, tuple(looked), found, "" if found else "no config.json")
    cache = hf_cache_dir() / ("models--" + model.replace("/", "--"))
    looked.append(str(cache))
    snapshots = sorted((cache / "snapshots").glob("*/config.json")) if cache.is_dir() else []
    if snapshots:
        return WeightsCheck(specialist, backend, model, tuple(looked), True, str(snapshots[-1].parent))
    return WeightsCheck(specialist, backend, model, tuple(looked), False, "not a local directory nor in the HF cache")


def hf_snapshot_path(check: WeightsCheck) -> str:
    """The directory to load from once :func:`resolve_hf_model` found the model, else raise clearly."""
    if not check.found:
        raise WeightsNotFound(
            f"{check.specialist} ({check.backend}): weights for {check.model!r} not found; looked in "
            + ", ".join(check.looked_in)
        )
    local = Path(check.model).expanduser()
    return str(local) if local.is_dir() else check.detail


def hf_model_identity(check: WeightsCheck, revision: str | None) -> str:
    """``id@revision`` for a hub model (the cached snapshot's commit), ``dir@sha256-prefix`` for a local one."""
    if not check.found:
        return f"{check.model}@missing"
    local = Path(check.model).expanduser()
    if local.is_dir():
        weights = sorted(local.glob("*.safetensors"))
        digest = file_sha256(weights[0], limit=64 * 1024 * 1024)[:12] if weights else "noweights"
        return f"{local.name}@sha256:{digest}"
    return f"{check.model}@{revision or Path(check.detail).name}"


class HfSpecialist(Specialist):
    """A specialist backed by one transformers checkpoint; subclasses implement ``load_model`` and ``annotate``.

    After :meth:`load`, ``self.model`` is on ``self.device`` in ``self.dtype`` and in eval mode.
    """

    model: Any = None
    processor: Any = None
    _model_id: str | None = None

    def model_check(self) -> WeightsCheck:
        """Where ``options.model`` was looked for (this stage's own checkpoint)."""
        return resolve_hf_model(self.name, self.backend, self.options.model)

    def check_weights(self) -> WeightsCheck:
        return self.model_check()

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = hf_model_identity(self.model_check(), self.options.revision)
        return self._model_id

    def load(self) -> None:
        path = hf_snapshot_path(self.model_check())
        self.device, self.dtype = device_and_dtype(self.resources, self.options.dtype)
        self.load_model(path)
        self.model.to(self.device).eval()

    @abstractmethod
    def load_model(self, path: str) -> None:
        """Set ``self.model`` (in ``self.dtype``, safetensors only) and its processor from the directory ``path``."""

    def on_device(self, inputs: Any) -> dict[str, Any]:
        """Processor outputs moved to the model's device, pixel values in the model's dtype."""
        moved = {key: value.to(self.device) for key, value in inputs.items()}
        if "pixel_values" in moved:
            moved["pixel_values"] = moved["pixel_values"].to(self.dtype)
        return moved

    def infer(self, inputs: Any) -> Any:
        """One forward pass of the model over processor outputs, without gradients."""
        import torch

        with torch.inference_mode():
            return self.model(**self.on_device(inputs))

    def generate_ids(self, inputs: Any, **generation: Any) -> Any:
        """Greedy or beam generation over processor outputs (``generation``: ``max_new_tokens``, ``num_beams``, ...)."""
        import torch

        with torch.inference_mode():
            return self.model.generate(**self.on_device(inputs), do_sample=False, **generation)

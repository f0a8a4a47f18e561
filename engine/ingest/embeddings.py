"""Image embeddings for semantic near-duplicates: a CLIP / SigLIP image tower over work table rows' pixels.

:class:`ImageEmbedder` is a callable stage in the Ray Data batch-inference shape (load once in
``__init__``, one batch of decoded images per call): a run whose work is on Ray embeds as a ``map_batches``
actor pool (``engine/execute/semantic_stage.py``), a run planned in process calls it here, a partition at a
time. Either way each partition's images become :data:`EMBEDDED` rows (:func:`embedded_table`). Weights are
found as every Hugging Face specialist's are (a local directory or the local hub cache, safetensors only,
never downloaded).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from engine.ingest.decode import BadImage, decode_image
from engine.ingest.locator import Locator, read_images
from filters.curation.semantic import simhash
from schemas.stage import WeightsCheck
from specialists.hf_model import hf_snapshot_path, resolve_hf_model

STAGE = "curation.semantic"
# One work table row's embedding: its ``position`` in its partition, the SimHash of the embedding (the key its
# candidate pairs are searched by) and the embedding itself (L2-normalised float32).
EMBEDDED = pa.schema([("position", pa.int64()), ("simhash", pa.uint64()), ("embedding", pa.list_(pa.float32()))])


def find_embedding_model(model: str) -> WeightsCheck:
    """Where ``model``'s weights are (or every place looked in), without loading them."""
    return resolve_hf_model(STAGE, "clip", model)


class ImageEmbedder:
    """L2-normalised image embeddings (float32, one row per image) from a CLIP-style checkpoint."""

    def __init__(self, check: WeightsCheck) -> None:
        import torch
        from transformers import AutoModel, AutoProcessor

        path = hf_snapshot_path(check)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"  # computed where it runs, never planned
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(self.device).eval()

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = self.processor(images=list(images), return_tensors="pt")
            features = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
        features = features if hasattr(features, "norm") else features.pooler_output
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


def work_pixels(work: pa.Table, max_pixels: int, batch_size: int) -> Iterator[list[np.ndarray | None]]:
    """The decoded pixels of ``work`` (work table rows: ``source_uri`` and ``locator``), ``batch_size`` at a
    time (None for an image that cannot be read or decoded again: it is left out of the semantic grouping
    and annotated)."""
    for batch in work.select(["source_uri", "locator"]).to_batches(max_chunksize=batch_size):
        uris = batch.column("source_uri").to_pylist()
        locators = [Locator.from_dict(found) for found in batch.column("locator").to_pylist()]
        pixels: list[np.ndarray | None] = []
        for content in read_images(uris, locators):
            try:
                pixels.append(None if isinstance(content, OSError) else decode_image(content, max_pixels)[0])
            except BadImage:
                pixels.append(None)
        yield pixels


def embed_work(
    work: pa.Table, embedder: ImageEmbedder, max_pixels: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the embedded work rows, their embeddings)."""
    positions, rows = [], []
    offset = 0
    for pixels in work_pixels(work, max_pixels, batch_size):
        readable = [i for i, p in enumerate(pixels) if p is not None]
        if readable:
            rows.append(embedder([pixels[i] for i in readable]))
            positions += [offset + i for i in readable]
        offset += len(pixels)
    embeddings = np.concatenate(rows) if rows else np.zeros((0, 1), np.float32)
    return np.array(positions, dtype=np.int64), embeddings


def embedded_table(positions: np.ndarray, embeddings: np.ndarray, seed: int) -> pa.Table:
    """:data:`EMBEDDED` rows of the work rows at ``positions`` and their ``embeddings`` (N, D), SimHashed with
    ``seed``."""
    vectors = embeddings.astype(np.float32)
    offsets = pa.array(np.arange(len(positions) + 1, dtype=np.int32) * vectors.shape[1])
    listed = pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel(), pa.float32()))
    hashes = pa.array(simhash(vectors, seed), pa.uint64())
    return pa.Table.from_arrays([pa.array(positions, pa.int64()), hashes, listed], schema=EMBEDDED)


def embedding_matrix(rows: pa.Table) -> np.ndarray:
    """The ``embedding`` column of :data:`EMBEDDED` rows as one (N, D) float32 array."""
    listed = rows.column("embedding").combine_chunks()
    if not len(listed):
        return np.zeros((0, 1), np.float32)
    flat = listed.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(len(listed), -1)

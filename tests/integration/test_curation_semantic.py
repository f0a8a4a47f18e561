"""Semantic near-duplicates in a run: CLIP image embeddings (a tiny random-init CLIP) skip a copy the hashes
are told not to look for; without the model's weights the run says so and goes on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from skimage import data

from engine.config.profile import parse_config
from engine.ingest.curation import SEMANTIC_DUPLICATE, curate, skip_semantic_copies
from engine.ingest.embeddings import ImageEmbedder, embed_work, find_embedding_model
from engine.ingest.probe import as_work_table
from engine.run import RunRequest, run_pipeline
from engine.store.reader import read_shard
from filters.curation.settings import CurationSettings, SemanticSettings
from tests.support.local_ray import local_ray

IMAGES = {
    "astronaut.png": data.astronaut(),
    "astronaut_half.png": np.ascontiguousarray(data.astronaut()[::2, ::2]),
    "chelsea.png": data.chelsea(),
    "coffee.png": data.coffee(),
}
# The tiny CLIP sees 32 x 32 pixels: the half-size copy is at cosine 1.0000 of the original, the other
# photographs below 0.99.
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from tests.support.tiny_models.clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    for name, pixels in IMAGES.items():
        Image.fromarray(pixels).save(folder / name)
    return folder


def _work(folder: Path) -> pa.Table:
    rows = []
    for name, pixels in IMAGES.items():
        image_id = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        height, width = pixels.shape[:2]
        uri = str(folder / name)
        rows.append({"image_id": image_id, "source_uri": uri, "source_uris": [uri], "width": width, "height": height})
    return as_work_table(pa.Table.from_pylist(rows))


def test_the_embedded_copy_is_skipped_with_its_cosine(tiny_clip, inputs) -> None:
    work = _work(inputs)
    embedder = ImageEmbedder(find_embedding_model(str(tiny_clip)))

    def embed(items):
        return embed_work(items, embedder, max_pixels=10**8, batch_size=3)

    settings = SemanticSettings(enabled=True, model=str(tiny_clip), min_cosine=MIN_COSINE)
    unjudged = curate(work, CurationSettings())  # no measures: nothing gated or grouped
    curated = skip_semantic_copies(unjudged, settings, embed)
    assert [Path(uri).name for uri in curated.work.gather().column("source_uri").to_pylist()] == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
    ]
    (row,) = curated.skipped.gather().to_pylist()
    assert (Path(row["source_uri"]).name, row["rule"], row["threshold"]) == (
        "astronaut_half.png",
        SEMANTIC_DUPLICATE,
        MIN_COSINE,
    )
    ids = work.column("image_id").to_pylist()
    assert row["value"] >= MIN_COSINE and row["duplicate_of"] == ids[0]
    preferred = skip_semantic_copies(unjudged, settings, embed, annotated_ids={ids[1]})
    assert preferred.skipped.gather().column("duplicate_of").to_pylist() == [ids[1]]


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def _run(inputs: Path, output: Path, model: str, messages: list[str]):
    profile = {
        "specialists": [{"name": "haar", "backend": "haar"}],
        "curation": {
            "dedup": {"enabled": False},
            "semantic": {"enabled": True, "model": model, "min_cosine": MIN_COSINE},
        },
        "ray": {"num_cpus": 2},
    }
    request = RunRequest((str(inputs),), output, parse_config(profile), progress_bars=False)
    return run_pipeline(request, progress=messages.append)


@pytest.mark.slow
def test_a_run_skips_semantic_copies_when_the_model_is_present_and_says_when_it_is_not(
    ray_local, tiny_clip, inputs, tmp_path
) -> None:
    messages: list[str] = []
    result = _run(inputs, tmp_path / "with", str(tiny_clip), messages)
    assert (result.annotated, result.skipped, result.near_duplicate_groups) == (3, 1, 1)
    rows = [row for shard in result.manifest.skipped for row in read_shard(tmp_path / "with", shard).to_pylist()]
    assert [(Path(r["source_uri"]).name, r["rule"]) for r in rows] == [("astronaut_half.png", SEMANTIC_DUPLICATE)]
    assert result.manifest.counts["skipped"] == {"total": 1, SEMANTIC_DUPLICATE: 1}

    messages.clear()
    missing = str(tmp_path / "no-such-clip")
    result = _run(inputs, tmp_path / "without", missing, messages)
    assert (result.annotated, result.skipped) == (4, 0)
    assert any(f"curation.semantic: weights for {missing!r} not found" in m for m in messages)

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
from engine.execute.semantic_stage import embedded_on_ray
from engine.ingest.curation import curate, curate_parts
from engine.ingest.embeddings import ImageEmbedder, embed_work, embedding_matrix, find_embedding_model
from engine.ingest.probe import as_work_table
from engine.ingest.semantic_parts import embedded_in_tasks, skip_semantic_copies
from engine.ingest.skipped_parts import SEMANTIC_DUPLICATE
from engine.partitions.keys import split_by_id
from engine.partitions.parts import Parts, in_process
from engine.partitions.tasks import ON_RAY
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
    embedded = embedded_in_tasks(unjudged.work, embed, settings.seed)
    curated = skip_semantic_copies(unjudged, settings, embedded)
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
    preferred = skip_semantic_copies(unjudged, settings, embedded, annotated_ids={ids[1]})
    assert preferred.skipped.gather().column("duplicate_of").to_pylist() == [ids[1]]


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def test_the_ray_data_stage_embeds_each_partition_as_the_driver_does(ray_local, tiny_clip, inputs) -> None:
    import ray

    work = _work(inputs)
    check = find_embedding_model(str(tiny_clip))
    settings = SemanticSettings(enabled=True, model=str(tiny_clip), min_cosine=MIN_COSINE, batch_size=1, pool_size=2)
    tables = split_by_id(work, 2)
    parts = Parts([ray.put(t) for t in tables], ON_RAY, [t.num_rows for t in tables], work.schema)
    on_ray = embedded_on_ray(parts, check, settings, max_pixels=10**8, block_rows=3)
    embedder = ImageEmbedder(check)

    def embed(rows):
        return embed_work(rows, embedder, max_pixels=10**8, batch_size=2)

    here = [embedded_in_tasks(in_process(table), embed, settings.seed).gather() for table in tables]
    assert on_ray.counts == tuple(t.num_rows for t in tables) and sum(on_ray.counts) == 4
    for found, expected in zip(on_ray.each(), here, strict=True):
        found = found.sort_by("position")
        assert found.column("position").equals(expected.column("position"))
        assert found.column("simhash").equals(expected.column("simhash"))
        np.testing.assert_allclose(embedding_matrix(found), embedding_matrix(expected), atol=1e-5)

    curated = skip_semantic_copies(curate_parts(parts, CurationSettings()), settings, on_ray)  # Ray tasks throughout
    (row,) = curated.skipped.gather().to_pylist()
    assert Path(row["source_uri"]).name == "astronaut_half.png" and row["rule"] == SEMANTIC_DUPLICATE
    assert curated.work.tasks.on_ray and curated.work.rows == 3


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
